"""Rigid poses: inversion, translation+quaternion packing, interpolation between samples."""
import math

import pytest
import torch

from dgslrm_ros.core.poses import (
    interpolate_poses, invert_pose, pose_from_translation_quat, translation_quat_from_pose,
)
from dgslrm_ros.core.rotations import axis_angle_to_quat, quat_to_matrix, rotation_angle_between

DT = torch.float64


def random_poses(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return pose_from_translation_quat(
        torch.randn(n, 3, generator=g, dtype=DT), axis_angle_to_quat(torch.randn(n, 3, generator=g, dtype=DT))
    )


def test_invert_pose():
    poses = random_poses(4)
    eye = torch.eye(4, dtype=DT).expand(4, 4, 4)
    torch.testing.assert_close(invert_pose(poses) @ poses, eye)
    torch.testing.assert_close(poses @ invert_pose(poses), eye)


def test_translation_quat_round_trip():
    poses = random_poses(5, seed=1)
    translation, quat = translation_quat_from_pose(poses)
    assert bool((quat[:, 0] >= 0).all())
    torch.testing.assert_close(pose_from_translation_quat(translation, quat), poses)
    with pytest.raises(ValueError, match=r"translation \[\.\.\., 3\] and quat \[\.\.\., 4\]"):
        pose_from_translation_quat(torch.zeros(3), torch.zeros(3))


def test_interpolation_endpoints_are_exact():
    stamps = torch.tensor([10.0, 10.5, 11.0], dtype=DT)
    poses = random_poses(3, seed=2)
    out = interpolate_poses(stamps, poses, stamps)
    assert torch.equal(out, poses)


def test_interpolation_midpoint_of_known_rotation():
    stamps = torch.tensor([0.0, 2.0], dtype=DT)
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=DT)
    q0 = axis_angle_to_quat(axis * 0.2)
    q1 = axis_angle_to_quat(axis * 1.4)
    poses = pose_from_translation_quat(torch.tensor([[0.0, 0.0, 0.0], [2.0, -4.0, 6.0]], dtype=DT),
                                       torch.stack([q0, q1]))
    out = interpolate_poses(stamps, poses, torch.tensor([1.0, 0.5], dtype=DT))
    torch.testing.assert_close(out[0, :3, 3], torch.tensor([1.0, -2.0, 3.0], dtype=DT))
    torch.testing.assert_close(out[0, :3, :3], quat_to_matrix(axis_angle_to_quat(axis * 0.8)))
    torch.testing.assert_close(out[1, :3, :3], quat_to_matrix(axis_angle_to_quat(axis * 0.5)))
    # the rotation is proper after interpolation
    torch.testing.assert_close(torch.linalg.det(out[:, :3, :3]), torch.ones(2, dtype=DT))


def test_interpolation_takes_the_short_arc_between_many_samples():
    axis = torch.tensor([1.0, 0.0, 0.0], dtype=DT)
    angles = torch.tensor([0.0, 3.0, 3.0 + 0.5], dtype=DT)  # 3.0 -> 3.5 rad crosses pi
    poses = pose_from_translation_quat(torch.zeros(3, 3, dtype=DT), axis_angle_to_quat(axis * angles[:, None]))
    stamps = torch.tensor([0.0, 1.0, 2.0], dtype=DT)
    out = interpolate_poses(stamps, poses, torch.tensor([1.5], dtype=DT))
    _, quat = translation_quat_from_pose(out)
    expected = axis_angle_to_quat(axis * 3.25)
    assert float(rotation_angle_between(quat, expected[None])) < 1e-9


def test_interpolation_rejects_out_of_range_and_unsorted():
    stamps = torch.tensor([1.0, 2.0], dtype=DT)
    poses = random_poses(2)
    with pytest.raises(ValueError, match="outside the pose samples"):
        interpolate_poses(stamps, poses, torch.tensor([1.5, 2.1], dtype=DT))
    with pytest.raises(ValueError, match="outside the pose samples"):
        interpolate_poses(stamps, poses, torch.tensor([0.99], dtype=DT))
    # within the tolerance the end sample is used
    out = interpolate_poses(stamps, poses, torch.tensor([2.004], dtype=DT), tolerance=0.005)
    assert torch.equal(out[0], poses[1])
    with pytest.raises(ValueError, match="strictly increasing"):
        interpolate_poses(stamps.flip(0), poses, torch.tensor([1.5], dtype=DT))
    with pytest.raises(ValueError, match=r"stamps \[M\] and world_T_cam \[M, 4, 4\]"):
        interpolate_poses(stamps, poses[:1], torch.tensor([1.5], dtype=DT))


def test_single_sample_only_answers_its_own_stamp():
    poses = random_poses(1)
    out = interpolate_poses(torch.tensor([3.0], dtype=DT), poses, torch.tensor([3.0, 3.0], dtype=DT))
    assert out.shape == (2, 4, 4) and torch.equal(out[1], poses[0])
    with pytest.raises(ValueError):
        interpolate_poses(torch.tensor([3.0], dtype=DT), poses, torch.tensor([3.1], dtype=DT))


def test_absolute_ros_stamps_in_float64():
    base = 1_700_000_000.0
    stamps = torch.tensor([base, base + 0.1], dtype=DT)
    poses = pose_from_translation_quat(torch.tensor([[0.0, 0, 0], [1.0, 0, 0]], dtype=DT),
                                       torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=DT))
    out = interpolate_poses(stamps, poses, torch.tensor([base + 0.025], dtype=DT))
    assert math.isclose(float(out[0, 0, 3]), 0.25, abs_tol=1e-5)
