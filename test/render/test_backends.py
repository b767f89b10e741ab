"""Backend selection, input checks at the public entry, and the lazy gsplat import."""

import pytest
import torch

from dgslrm_ros.render import GsplatUnavailableError, render, resolve_backend

DT = torch.float64


def small_scene(scenes):
    g = scenes.random_gaussians(30, seed=7)
    return g, scenes.identity_poses(), scenes.pinhole(40.0, 24, 20)


def test_auto_picks_torch_on_cpu_and_renders_the_same(scenes):
    g, world_T_cam, K = small_scene(scenes)
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    auto = render(g, world_T_cam, K, 24, 20)
    explicit = render(g, world_T_cam, K, 24, 20, backend="torch")
    assert auto.alpha.max() > 0.5
    assert torch.equal(auto.rgb, explicit.rgb) and torch.equal(auto.alpha, explicit.alpha)


def test_gsplat_backend_refuses_cpu_tensors_with_a_clear_error(scenes):
    g, world_T_cam, K = small_scene(scenes)
    with pytest.raises(GsplatUnavailableError, match=r"expected CUDA tensors.*backend='torch'"):
        render(g, world_T_cam, K, 24, 20, backend="gsplat")


def test_unknown_backend_is_refused_by_name(scenes):
    g, world_T_cam, K = small_scene(scenes)
    with pytest.raises(ValueError, match="'vulkan'"):
        render(g, world_T_cam, K, 24, 20, backend="vulkan")


@pytest.mark.parametrize(
    "world_T_cam, K, background, message",
    [
        (torch.eye(4, dtype=DT), torch.eye(3, dtype=DT)[None], None, r"world_T_cam \[C, 4, 4\]"),
        (torch.eye(4, dtype=DT)[None], torch.eye(3, dtype=DT)[None].expand(2, 3, 3), None, r"K \[C=1, 3, 3\]"),
        (torch.eye(4, dtype=DT)[None], torch.eye(3, dtype=DT)[None], torch.zeros(2, 3), r"background \[3\] or \[C=1, 3\]"),
    ],
)
def test_bad_camera_and_background_shapes_are_refused(scenes, world_T_cam, K, background, message):
    g, _, _ = small_scene(scenes)
    with pytest.raises(ValueError, match=message):
        render(g, world_T_cam, K, 24, 20, background=background, backend="torch")


def test_float32_render_matches_float64(scenes):
    g, world_T_cam, K = small_scene(scenes)
    out64 = render(g, world_T_cam, K, 24, 20, backend="torch")
    out32 = render(g.to(dtype=torch.float32), world_T_cam.float(), K.float(), 24, 20, backend="torch")
    assert out32.rgb.dtype == torch.float32
    torch.testing.assert_close(out32.rgb.double(), out64.rgb, atol=1e-5, rtol=0)
    torch.testing.assert_close(out32.alpha.double(), out64.alpha, atol=1e-5, rtol=0)


def test_importing_and_using_the_renderer_on_cpu_loads_no_gsplat(modules_loaded_after):
    code = (
        "import torch\n"
        "from dgslrm_ros.core.gaussians import Gaussians\n"
        "from dgslrm_ros.render import render\n"
        "g = Gaussians(means=torch.tensor([[0., 0., 3.]]), quats=torch.tensor([[1., 0., 0., 0.]]),\n"
        "              scales=torch.full((1, 3), 0.1), opacities=torch.tensor([0.5]), colors=torch.ones(1, 3))\n"
        "render(g, torch.eye(4)[None], torch.tensor([[[20., 0, 8], [0, 20., 8], [0, 0, 1]]]), 16, 16)\n"
    )
    assert "gsplat" not in modules_loaded_after(code)
