"""Scene normalisation of a window: reference camera, scale choice, and round trips."""
import pytest
import torch

from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.normalization import SceneNormalization, normalize_window
from dgslrm_ros.core.poses import pose_from_translation_quat
from dgslrm_ros.core.rotations import axis_angle_to_quat, quat_to_matrix, rotation_angle_between

DT = torch.float64


def window_poses(t=5, step=0.1, seed=0):
    """Cameras moving along a line with slowly turning heading, far from the world origin."""
    g = torch.Generator().manual_seed(seed)
    positions = torch.tensor([10.0, -3.0, 1.5], dtype=DT) + torch.arange(t, dtype=DT)[:, None] * torch.tensor(
        [step, 0.0, step / 2], dtype=DT)
    rotations = axis_angle_to_quat(torch.randn(1, 3, generator=g, dtype=DT) + 0.05 * torch.arange(t, dtype=DT)[:, None])
    return pose_from_translation_quat(positions, rotations)


def test_middle_camera_becomes_the_identity():
    poses = window_poses(t=5)
    norm_T_cam, normalization = normalize_window(poses, scene_scale=2.0)
    torch.testing.assert_close(norm_T_cam[2], torch.eye(4, dtype=DT))
    assert normalization.scale == 2.0  # travel 0.22 m from the middle < 2 m prior
    # relative poses are preserved up to the scale of translations
    rel_world = torch.linalg.inv(poses[0]) @ poses[4]
    rel_norm = torch.linalg.inv(norm_T_cam[0]) @ norm_T_cam[4]
    torch.testing.assert_close(rel_norm[:3, :3], rel_world[:3, :3])
    torch.testing.assert_close(rel_norm[:3, 3] * normalization.scale, rel_world[:3, 3])


def test_fast_travel_raises_the_scale_to_keep_cameras_in_the_unit_ball():
    poses = window_poses(t=7, step=1.0)
    norm_T_cam, normalization = normalize_window(poses, scene_scale=0.5, max_travel_units=1.0)
    travel = float((poses[:, :3, 3] - poses[3, :3, 3]).norm(dim=-1).max())
    assert normalization.scale == pytest.approx(travel)
    assert float(norm_T_cam[:, :3, 3].norm(dim=-1).max()) == pytest.approx(1.0)


def test_points_and_poses_round_trip():
    poses = window_poses()
    norm_T_cam, normalization = normalize_window(poses, scene_scale=3.0)
    torch.testing.assert_close(normalization.poses_to_world(norm_T_cam), poses)
    points = torch.randn(10, 3, dtype=DT) * 5
    torch.testing.assert_close(normalization.points_to_world(normalization.points_to_norm(points)), points)
    # a point seen by a camera keeps its camera-frame direction, its depth shrinks by the scale
    p_cam = torch.tensor([0.3, -0.2, 4.0], dtype=DT)
    p_world = poses[1, :3, :3] @ p_cam + poses[1, :3, 3]
    p_norm = normalization.points_to_norm(p_world)
    p_cam_norm = norm_T_cam[1, :3, :3].T @ (p_norm - norm_T_cam[1, :3, 3])
    torch.testing.assert_close(p_cam_norm, p_cam / 3.0)
    velocity = torch.tensor([[1.0, 2.0, -0.5]], dtype=DT)
    torch.testing.assert_close(normalization.vectors_to_norm(normalization.vectors_to_world(velocity)), velocity)


def test_gaussians_round_trip_and_metric_velocities():
    _, normalization = normalize_window(window_poses(), scene_scale=4.0)
    n, t = 6, 3
    g = torch.Generator().manual_seed(1)
    velocity_norm = torch.randn(n, 3, generator=g, dtype=DT)
    stamps = torch.tensor([0.0, 0.1, 0.2], dtype=DT)
    gaussians = DeformableGaussians(
        means=torch.randn(n, 3, generator=g, dtype=DT),
        quats=axis_angle_to_quat(torch.randn(n, 3, generator=g, dtype=DT)),
        scales=torch.rand(n, 3, generator=g, dtype=DT) * 0.1 + 0.01,
        opacities=torch.rand(n, generator=g, dtype=DT),
        colors=torch.rand(n, 3, generator=g, dtype=DT),
        offsets=velocity_norm[:, None] * stamps[None, :, None],
        timestamps=stamps,
        keyframe_index=torch.zeros(n, dtype=torch.long),
    )
    world = normalization.gaussians_to_world(gaussians)
    torch.testing.assert_close(world.positions(2), normalization.points_to_world(gaussians.positions(2)))
    torch.testing.assert_close(world.velocities(1), normalization.vectors_to_world(velocity_norm))
    torch.testing.assert_close(world.scales, gaussians.scales * 4.0)
    back = normalization.gaussians_to_norm(world)
    for name in ("means", "offsets", "scales"):
        torch.testing.assert_close(getattr(back, name), getattr(gaussians, name))
    assert float(rotation_angle_between(back.quats, gaussians.quats).max()) < 1e-7
    # static sets work too
    torch.testing.assert_close(normalization.gaussians_to_world(gaussians.at(1)).means, world.positions(1))


def test_as_matrix_and_validation():
    rotation = quat_to_matrix(axis_angle_to_quat(torch.tensor([0.0, 0.5, 0.0], dtype=DT)))
    pose = torch.eye(4, dtype=DT)
    pose[:3, :3] = rotation
    pose[:3, 3] = torch.tensor([1.0, 2.0, 3.0], dtype=DT)
    normalization = SceneNormalization(scale=2.0, world_T_norm=pose)
    point = torch.tensor([0.1, 0.2, 0.3], dtype=DT)
    torch.testing.assert_close((normalization.as_matrix() @ torch.cat([point, point.new_ones(1)]))[:3],
                               normalization.points_to_world(point))
    identity = SceneNormalization()
    torch.testing.assert_close(identity.points_to_world(point), point)
    with pytest.raises(ValueError, match="positive metres-per-unit"):
        SceneNormalization(scale=0.0)
    with pytest.raises(ValueError, match="not a proper rotation"):
        SceneNormalization(scale=1.0, world_T_norm=torch.diag(torch.tensor([1.0, 1.0, -1.0, 1.0])))
    with pytest.raises(ValueError, match=r"expected world_T_cam \[T, 4, 4\]"):
        normalize_window(torch.eye(4), scene_scale=1.0)
    with pytest.raises(ValueError, match="positive scene_scale"):
        normalize_window(window_poses(), scene_scale=-1.0)
