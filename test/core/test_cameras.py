"""Pinhole cameras: pixel centres, rays, Plücker maps, projection, and K under resize/crop."""
import pytest
import torch

from dgslrm_ros.core.cameras import (
    camera_rays, center_crop_box, crop_intrinsics, intrinsics_from_opencv, intrinsics_to_opencv,
    pixel_centers, plucker_rays, project_points, resize_crop_frames, scale_intrinsics, unproject_depth,
)
from dgslrm_ros.core.poses import pose_from_translation_quat
from dgslrm_ros.core.rotations import axis_angle_to_quat

DT = torch.float64


def intrinsics(fx=60.0, fy=55.0, cx=33.0, cy=22.5):
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=DT)


def random_poses(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    quats = axis_angle_to_quat(torch.randn(n, 3, generator=g, dtype=DT))
    return pose_from_translation_quat(torch.randn(n, 3, generator=g, dtype=DT) * 2, quats)


def test_pixel_centers_are_at_half_pixels():
    centers = pixel_centers(2, 3, dtype=DT)
    assert centers.shape == (2, 3, 2)
    assert centers[0, 0].tolist() == [0.5, 0.5]
    assert centers[1, 2].tolist() == [2.5, 1.5]  # (u + 0.5, v + 0.5), column first


def test_rays_hit_unprojected_depth_and_reproject_to_pixel_centres():
    K = intrinsics()
    poses = random_poses(2)
    origins, dirs = camera_rays(K, poses, 6, 8)
    assert origins.shape == dirs.shape == (2, 6, 8, 3)
    # camera-frame z of every direction is 1 (z-depth convention)
    dirs_cam = dirs @ poses[:, None, :3, :3]
    torch.testing.assert_close(dirs_cam[..., 2], torch.ones(2, 6, 8, dtype=DT))
    depth = torch.rand(2, 1, 6, 8, dtype=DT) * 4 + 0.5
    points = unproject_depth(depth, K, poses)  # [2, 6, 8, 3]
    uv, z = project_points(points.reshape(2, -1, 3), K, poses)
    torch.testing.assert_close(z, depth.reshape(2, -1))
    torch.testing.assert_close(uv, pixel_centers(6, 8, dtype=DT).reshape(1, -1, 2).expand(2, -1, -1))


def test_plucker_identities():
    K = intrinsics()
    poses = random_poses(3, seed=1)
    rays = plucker_rays(K, poses, 5, 7)
    assert rays.shape == (3, 6, 5, 7)
    d, m = rays[:, :3], rays[:, 3:]
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3, 5, 7, dtype=DT))
    torch.testing.assert_close((d * m).sum(1), torch.zeros(3, 5, 7, dtype=DT))
    # the moment is the same for any point on the ray: p x d with p = o + s d
    origins, dirs = camera_rays(K, poses, 5, 7)
    for s in (0.0, 0.7, 3.0):
        points = origins + s * dirs
        moment = torch.linalg.cross(points, dirs / dirs.norm(dim=-1, keepdim=True), dim=-1)
        torch.testing.assert_close(moment.movedim(-1, 1), m)
    # a different ray has a different moment: d, m determine the line
    assert not torch.allclose(m[:, :, 0, 0], m[:, :, 4, 6])


def test_project_points_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"points: expected shape \[\.\.\., N, 3\]"):
        project_points(torch.zeros(4, 2), intrinsics(), torch.eye(4, dtype=DT))
    with pytest.raises(ValueError, match=r"K: expected shape \[\.\.\., 3, 3\]"):
        camera_rays(torch.eye(4), torch.eye(4), 2, 2)


def relative_location(K, points, pose, height, width):
    uv, _ = project_points(points, K, pose)
    return uv / torch.tensor([width, height], dtype=DT)


def test_scale_and_crop_keep_projections_consistent():
    K = intrinsics()
    pose = random_poses(1, seed=2)[0]
    points = unproject_depth(torch.full((1, 4, 4), 3.0, dtype=DT), K, pose).reshape(-1, 3)
    before = relative_location(K, points, pose, 45, 66)
    after = relative_location(scale_intrinsics(K, 0.5, 2 / 3), points, pose, 30, 33)
    torch.testing.assert_close(after, before)
    uv, _ = project_points(points, K, pose)
    uv_crop, _ = project_points(points, crop_intrinsics(K, top=5, left=7), pose)
    torch.testing.assert_close(uv_crop, uv - torch.tensor([7.0, 5.0], dtype=DT))


def test_opencv_intrinsics_round_trip():
    K = intrinsics()
    cv = intrinsics_to_opencv(K)
    assert cv[0, 2] == K[0, 2] - 0.5 and cv[1, 2] == K[1, 2] - 0.5
    torch.testing.assert_close(intrinsics_from_opencv(cv), K)


def test_center_crop_box():
    assert center_crop_box(48, 64, (32, 32)) == (0, 8, 48, 48)
    assert center_crop_box(60, 40, (30, 40)) == (15, 0, 30, 40)


def splat_frame(K, pose, point, height, width, sigma):
    """A Gaussian blob at the projection of `point`, rendered analytically at pixel centres."""
    uv, _ = project_points(point[None], K, pose)
    centers = pixel_centers(height, width, dtype=DT)
    blob = torch.exp(-((centers - uv[0]) ** 2).sum(-1) / (2 * sigma**2))
    return torch.stack([blob, 1 - blob, 0.5 * blob])  # [3, H, W]


def intensity_centroid(channel):
    centers = pixel_centers(*channel.shape, dtype=DT)
    weights = channel / channel.sum()
    return (centers * weights[..., None]).sum((0, 1))


def test_resize_crop_frames_keeps_a_points_pixel():
    """Crop + downscale a frame; the blob's centroid lands where the new K projects the point."""
    height, width = 96, 128
    K = intrinsics(fx=90.0, fy=90.0, cx=64.0, cy=48.0)
    pose = torch.eye(4, dtype=DT)
    point = torch.tensor([0.35, -0.2, 2.0], dtype=DT)
    frame = splat_frame(K, pose, point, height, width, sigma=6.0)
    frames = torch.stack([frame, frame])  # [2, 3, H, W] batched
    out, K_out = resize_crop_frames(frames, K.expand(2, 3, 3), (30, 30))
    assert out.shape == (2, 3, 30, 30) and K_out.shape == (2, 3, 3)
    uv_new, _ = project_points(point[None], K_out[0], pose)
    torch.testing.assert_close(intensity_centroid(out[0, 0]), uv_new[0], atol=0.05, rtol=0)
    # and a non-square upscale of a crop
    out_up, K_up = resize_crop_frames(frame, K, (150, 100))
    uv_up, _ = project_points(point[None], K_up, pose)
    torch.testing.assert_close(intensity_centroid(out_up[0]), uv_up[0], atol=0.1, rtol=0)
    # antialiasing: a one-pixel checkerboard averages to grey instead of aliasing
    checker = ((torch.arange(96)[:, None] + torch.arange(128)[None]) % 2).to(torch.float32)
    small, _ = resize_crop_frames(checker.expand(3, -1, -1), K.float(), (24, 24))
    assert float((small - 0.5).abs().max()) < 0.05


def test_resize_crop_rejects_integer_frames():
    with pytest.raises(ValueError, match="float images"):
        resize_crop_frames(torch.zeros(3, 8, 8, dtype=torch.uint8), intrinsics(), (4, 4))
