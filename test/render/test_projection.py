"""EWA projection: analytic cases, culling, footprints, and agreement with gsplat's own torch twin."""
import math

import pytest
import torch

from dgslrm_ros.render.projection import ALPHA_THRESHOLD, covariances_from_quats_scales, project_gaussians

DT = torch.float64
W, H, F = 64, 48, 50.0


def project(scenes, gaussians, num_cameras=1, width=W, height=H, **kwargs):
    K = scenes.pinhole(F, width, height, num_cameras)
    cam_T_world = torch.linalg.inv(scenes.identity_poses(num_cameras))
    return project_gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
                             cam_T_world, K, width, height, **kwargs)


def test_isotropic_gaussian_projects_to_analytic_mean_conic_and_radius(scenes):
    z, s, opacity = 4.0, 0.1, 0.6
    g = scenes.make_gaussians([[0.4, -0.2, z]], s, opacity, [[1, 0, 0]])
    p = project(scenes, g)
    variance = (F * s / z) ** 2 + 0.3  # EWA: (f s / z)^2 plus the 0.3 px^2 low-pass
    assert torch.allclose(p.means2d[0, 0], torch.tensor([F * 0.4 / z + W / 2, F * -0.2 / z + H / 2], dtype=DT))
    # Off-axis, the Jacobian's third column mixes the z variance in: conic is not exactly 1/variance.
    centred = project(scenes, scenes.make_gaussians([[0.0, 0.0, z]], s, opacity, [[1, 0, 0]]))
    assert torch.allclose(centred.conics[0, 0], torch.tensor([1 / variance, 0.0, 1 / variance], dtype=DT))
    assert centred.depths[0, 0].item() == pytest.approx(z)
    extend = min(3.33, math.sqrt(2 * math.log(opacity / ALPHA_THRESHOLD)))
    assert centred.radii[0, 0].tolist() == [math.ceil(extend * math.sqrt(variance))] * 2


def test_anisotropic_rotated_gaussian_covariance_follows_rotation():
    # 90 degrees about z swaps the x and y scales.
    quat = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]], dtype=DT)
    cov = covariances_from_quats_scales(quat, torch.tensor([[0.3, 0.1, 0.2]], dtype=DT))[0]
    assert torch.allclose(cov, torch.diag(torch.tensor([0.01, 0.09, 0.04], dtype=DT)), atol=1e-12)


def test_culling_behind_camera_near_plane_off_screen_and_transparent(scenes):
    means = [[0, 0, 4.0],  # visible
             [0, 0, -4.0],  # behind the camera
             [0, 0, 0.005],  # in front of the 0.01 near plane
             [40.0, 0, 4.0],  # far off to the right
             [0, 0, 4.0]]  # too transparent (opacity < 1/255)
    g = scenes.make_gaussians(means, 0.05, [0.5, 0.5, 0.5, 0.5, 0.003], [[1, 1, 1]] * 5)
    p = project(scenes, g)
    assert p.visible[0].tolist() == [True, False, False, False, False]
    assert (p.radii[0, 1:] == 0).all()
    assert torch.isfinite(p.means2d).all() and torch.isfinite(p.conics).all()


def test_far_plane_culls(scenes):
    g = scenes.make_gaussians([[0, 0, 4.0], [0, 0, 30.0]], 0.1, 0.5, [[1, 1, 1]] * 2)
    assert project(scenes, g, far_plane=10.0).visible[0].tolist() == [True, False]


def test_opacity_aware_footprint_shrinks_with_opacity(scenes):
    g = scenes.make_gaussians([[0, 0, 4.0]] * 3, 0.2, [0.99, 0.1, 0.01], [[1, 1, 1]] * 3)
    radii = project(scenes, g).radii[0, :, 0].tolist()
    assert radii[0] > radii[1] > radii[2] > 0


def test_culled_gaussians_get_zero_not_nan_gradients(scenes):
    g = scenes.make_gaussians([[0, 0, 4.0], [0, 0, 0.0], [0, 0, -1.0]], 0.1, 0.5, [[1, 1, 1]] * 3)
    means = g.means.clone().requires_grad_(True)
    p = project_gaussians(means, g.quats, g.scales, g.opacities, scenes.identity_poses(), scenes.pinhole(F, W, H), W, H)
    (p.means2d.sum() + p.conics.sum() + torch.where(p.visible, p.depths, 0).sum()).backward()
    assert torch.isfinite(means.grad).all()
    assert means.grad[0].abs().sum() > 0


def test_matches_gsplat_pure_torch_projection(scenes):
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g = scenes.random_gaussians(200, seed=3, spread=2.5)  # many near or beyond the image border
    K = torch.tensor([[[F, 0, 30.0], [0, 55.0, 20.0], [0, 0, 1]], [[70.0, 0, 33.0], [0, 70.0, 25.0], [0, 0, 1]]], dtype=DT)
    world_T_cam = scenes.identity_poses(2)
    world_T_cam[1, :3, 3] = torch.tensor([0.3, -0.2, 0.5], dtype=DT)
    cam_T_world = torch.linalg.inv(world_T_cam)
    ours = project_gaussians(g.means, g.quats, g.scales, g.opacities, cam_T_world, K, W, H)
    covars = covariances_from_quats_scales(g.quats, g.scales)
    radii, means2d, depths, conics, _ = torch_impl._fully_fused_projection(g.means, covars, cam_T_world, K, W, H)
    both = ours.visible & (radii > 0).all(-1)
    assert both.sum() > 150
    assert torch.allclose(ours.means2d[both], means2d[both], atol=1e-9)
    assert torch.allclose(ours.conics[both], conics[both], rtol=1e-9, atol=1e-12)
    assert torch.allclose(ours.depths, depths)
    # gsplat's torch twin lacks the opacity-aware extent of its CUDA kernel: ours is never larger.
    assert (ours.radii[both] <= radii[both]).all()


def test_rejects_bad_shapes(scenes):
    g = scenes.make_gaussians([[0, 0, 4.0]], 0.1, 0.5, [[1, 1, 1]])
    with pytest.raises(ValueError, match=r"K \[C, 3, 3\]"):
        project_gaussians(g.means, g.quats, g.scales, g.opacities, scenes.identity_poses(), torch.eye(3), W, H)
