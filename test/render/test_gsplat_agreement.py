"""Our torch rasterizer against gsplat 1.5.3 on CUDA: images and gradients of random scenes agree.

Both follow the same rules (projection.py, rasterize_torch.py), so the differences left are float32
rounding and gsplat's atomic gradient sums.
"""
import math

import pytest
import torch

from dgslrm_ros.core.gaussians import Gaussians
from dgslrm_ros.render import render, resolve_backend

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (gsplat backend)"),
]

WIDTH, HEIGHT = 96, 72
FIELDS = ("means", "quats", "scales", "opacities", "colors")


def random_scene(seed: int, n: int = 3000) -> tuple[Gaussians, torch.Tensor, torch.Tensor]:
    """A cloud in front of two cameras, some Gaussians off-screen or behind the second camera."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * torch.tensor([1.5, 1.2, 1.0])
    means[:, 2] += 4.0
    gaussians = Gaussians(
        means=means,
        quats=torch.randn(n, 4, generator=gen),
        scales=torch.exp(torch.empty(n, 3).uniform_(math.log(0.01), math.log(0.15), generator=gen)),
        opacities=torch.empty(n).uniform_(0.05, 0.95, generator=gen),
        colors=torch.rand(n, 3, generator=gen),
    ).to(device="cuda")
    world_T_cam = torch.eye(4).repeat(2, 1, 1)
    world_T_cam[1, :3, :3] = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # looks along -x
    world_T_cam[1, :3, 3] = torch.tensor([3.0, 0.2, 4.0])
    K = torch.tensor([[80.0, 0.0, 47.3], [0.0, 82.0, 36.1], [0.0, 0.0, 1.0]]).repeat(2, 1, 1)
    return gaussians, world_T_cam.cuda(), K.cuda()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean().clamp_min(1e-20)))


def test_auto_picks_gsplat_for_cuda_tensors():
    assert resolve_backend("auto", torch.device("cuda")) == "gsplat"


def test_empty_scene_gives_the_background():
    empty = Gaussians(means=torch.zeros(0, 3), quats=torch.zeros(0, 4), scales=torch.zeros(0, 3),
                      opacities=torch.zeros(0), colors=torch.zeros(0, 3)).to(device="cuda")
    _, world_T_cam, K = random_scene(0, n=1)
    background = torch.tensor([0.2, 0.3, 0.4], device="cuda")
    out = render(empty, world_T_cam, K, WIDTH, HEIGHT, background=background, backend="gsplat")
    assert (out.alpha == 0).all() and (out.depth == 0).all()
    assert torch.equal(out.rgb, background[None, :, None, None].expand(2, 3, HEIGHT, WIDTH))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_images_agree(seed):
    gaussians, world_T_cam, K = random_scene(seed)
    background = torch.tensor([0.2, 0.3, 0.4], device="cuda")
    ours = render(gaussians, world_T_cam, K, WIDTH, HEIGHT, background=background, backend="torch")
    theirs = render(gaussians, world_T_cam, K, WIDTH, HEIGHT, background=background, backend="gsplat")
    assert ours.rgb.shape == theirs.rgb.shape == (2, 3, HEIGHT, WIDTH)
    assert 0.2 < float(theirs.alpha.mean()) < 0.99  # a scene with content and holes
    assert psnr(ours.rgb, theirs.rgb) >= 40.0
    assert float((ours.alpha - theirs.alpha).abs().max()) < 1e-2
    covered = theirs.alpha > 0.5
    relative_depth_error = ((ours.depth - theirs.depth).abs() / theirs.depth.clamp_min(1e-6))[covered]
    assert float(relative_depth_error.quantile(0.99)) < 1e-2


@pytest.mark.parametrize("seed", [3, 4])
def test_gradients_agree(seed):
    gaussians, world_T_cam, K = random_scene(seed, n=1500)
    gen = torch.Generator(device="cuda").manual_seed(seed)
    rgb_weights = torch.randn(2, 3, HEIGHT, WIDTH, generator=gen, device="cuda")
    alpha_weights = torch.randn(2, 1, HEIGHT, WIDTH, generator=gen, device="cuda")
    grads = {}
    for backend in ("torch", "gsplat"):
        leaves = {name: getattr(gaussians, name).detach().clone().requires_grad_(True) for name in FIELDS}
        out = render(Gaussians(**leaves), world_T_cam, K, WIDTH, HEIGHT, backend=backend)
        ((out.rgb * rgb_weights).sum() + (out.alpha * alpha_weights).sum()).backward()
        grads[backend] = {name: leaf.grad for name, leaf in leaves.items()}
    for name in FIELDS:
        ours, theirs = grads["torch"][name].flatten(), grads["gsplat"][name].flatten()
        assert float(theirs.norm()) > 0, name
        relative = float((ours - theirs).norm() / theirs.norm())
        cosine = float(torch.nn.functional.cosine_similarity(ours, theirs, dim=0))
        assert relative < 2e-2 and cosine > 0.999, f"{name}: relative error {relative:.2e}, cosine {cosine:.5f}"
