"""The geometry and Gaussian helpers give the same answers on CUDA as on the CPU."""
import pytest
import torch

from dgslrm_ros.core.cameras import camera_rays, plucker_rays, project_points, resize_crop_frames
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.normalization import normalize_window
from dgslrm_ros.core.poses import interpolate_poses, pose_from_translation_quat
from dgslrm_ros.core.rotations import axis_angle_to_quat

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    n, t = 50, 4
    poses = pose_from_translation_quat(torch.randn(t, 3, generator=g), axis_angle_to_quat(torch.randn(t, 3, generator=g)))
    K = torch.tensor([[40.0, 0, 16], [0, 40.0, 12], [0, 0, 1]]).expand(t, 3, 3)
    stamps = torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64)
    gaussians = DeformableGaussians(
        means=torch.randn(n, 3, generator=g), quats=axis_angle_to_quat(torch.randn(n, 3, generator=g)),
        scales=torch.rand(n, 3, generator=g), opacities=torch.rand(n, generator=g),
        colors=torch.rand(n, 3, generator=g), offsets=torch.randn(n, t, 3, generator=g),
        timestamps=stamps, keyframe_index=torch.zeros(n, dtype=torch.long),
    )
    on_gpu = DeformableGaussians(**{**gaussians.to("cuda").__dict__, "timestamps": stamps})  # CPU stamps follow
    assert on_gpu.timestamps.is_cuda and on_gpu.keyframe_index.is_cuda
    torch.testing.assert_close(on_gpu.prune(0.5).velocities(1.5).cpu(), gaussians.prune(0.5).velocities(1.5))
    norm_T_cam, normalization = normalize_window(poses.cuda(), scene_scale=1.0)
    torch.testing.assert_close(normalization.gaussians_to_world(on_gpu).positions(2).cpu(),
                               normalization.gaussians_to_world(gaussians).positions(2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plucker_rays(K.cuda(), poses.cuda(), 6, 8).cpu(), plucker_rays(K, poses, 6, 8),
                               atol=1e-5, rtol=1e-5)
    origins, dirs = camera_rays(K.cuda(), poses.cuda(), 6, 8)
    uv, _ = project_points((origins + 2 * dirs).reshape(t, -1, 3), K.cuda(), poses.cuda())
    assert uv.is_cuda
    frames, K_out = resize_crop_frames(torch.rand(t, 3, 24, 32, device="cuda"), K.cuda(), (12, 12))
    assert frames.shape == (t, 3, 12, 12) and K_out.is_cuda
    out = interpolate_poses(stamps.cuda(), poses.cuda().double(), torch.tensor([0.05], dtype=torch.float64).cuda())
    assert out.is_cuda
