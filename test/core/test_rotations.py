"""Quaternion helpers: matrix and axis-angle round trips, slerp, the numpy twins."""
import math

import numpy as np
import torch

from dgslrm_ros.core.rotations import (
    axis_angle_to_quat, matrix_to_quat, quat_multiply, quat_normalize, quat_to_axis_angle, quat_to_matrix,
    rotation_angle_between, slerp,
)
from dgslrm_ros.core.rotations_np import matrix_to_quat_wxyz, quat_wxyz_to_matrix

DT = torch.float64


def random_quats(n, seed=0):
    return quat_normalize(torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=DT))


def test_matrix_round_trip_including_near_180_degrees():
    quats = random_quats(64)
    near_pi = axis_angle_to_quat(torch.nn.functional.normalize(torch.randn(8, 3, dtype=DT), dim=-1) * (math.pi - 1e-7))
    quats = torch.cat([quats, quat_normalize(near_pi)])
    matrices = quat_to_matrix(quats)
    torch.testing.assert_close(matrices @ matrices.transpose(-1, -2), torch.eye(3, dtype=DT).expand(72, 3, 3))
    back = matrix_to_quat(matrices)
    assert float(rotation_angle_between(back, quats).max()) < 1e-6
    torch.testing.assert_close(quat_to_matrix(back), matrices)


def test_multiply_matches_matrix_product():
    a, b = random_quats(16, 1), random_quats(16, 2)
    torch.testing.assert_close(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b))


def test_axis_angle_round_trip_and_small_angles():
    vectors = torch.randn(32, 3, generator=torch.Generator().manual_seed(3), dtype=DT)
    vectors = vectors / vectors.norm(dim=-1, keepdim=True) * torch.rand(32, 1, dtype=DT) * 3.0  # angle < pi
    torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(vectors)), vectors)
    tiny = torch.tensor([[1e-9, -2e-9, 0.0], [0.0, 0.0, 0.0]], dtype=DT)
    torch.testing.assert_close(quat_to_axis_angle(axis_angle_to_quat(tiny)), tiny)
    # 90 degrees about z maps x to y
    q = axis_angle_to_quat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=DT))
    torch.testing.assert_close(quat_to_matrix(q) @ torch.tensor([1.0, 0, 0], dtype=DT),
                               torch.tensor([0.0, 1.0, 0.0], dtype=DT))


def test_rotation_angle_between_is_precise_for_small_angles():
    q0 = axis_angle_to_quat(torch.tensor([0.1, 0.2, 0.3]))
    q1 = quat_multiply(q0, axis_angle_to_quat(torch.tensor([0.0, 1e-4, 0.0])))
    assert abs(float(rotation_angle_between(q0, q1)) - 1e-4) < 1e-6  # float32
    assert float(rotation_angle_between(q0, -q0)) < 1e-6  # sign-invariant


def test_slerp_constant_angular_speed():
    axis = torch.tensor([0.0, 1.0, 0.0], dtype=DT)
    q0, q1 = axis_angle_to_quat(axis * 0.1), axis_angle_to_quat(axis * 1.7)
    for alpha in (0.0, 0.25, 0.5, 1.0):
        expected = axis_angle_to_quat(axis * (0.1 + 1.6 * alpha))
        assert float(rotation_angle_between(slerp(q0, q1, alpha), expected)) < 1e-9


def test_numpy_twins_agree_with_torch_near_180_degrees():
    for axis in np.eye(3):
        angle = np.pi - 1e-6
        R = quat_to_matrix(torch.tensor(np.r_[np.cos(angle / 2), np.sin(angle / 2) * axis])).numpy()
        ours = matrix_to_quat_wxyz(R)
        ref = matrix_to_quat(torch.tensor(R)).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-9)
        np.testing.assert_allclose(quat_wxyz_to_matrix(ours), R, atol=1e-9)
