import numpy as np
import pytest
import torch

from dgslrm_ros.convert.errors import PoseError
from dgslrm_ros.convert.pose import matrix_to_pose_fields, pose_fields_to_matrix, pose_to_matrix
from dgslrm_ros.core.rotations import quat_to_matrix


def _random_pose(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(torch.tensor(q)).numpy()
    T[:3, 3] = rng.normal(size=3) * 5
    return T


def _msg(msgs, fields):
    Point, Quat = msgs["geometry_msgs/msg/Point"], msgs["geometry_msgs/msg/Quaternion"]
    x, y, z, w = fields.orientation_xyzw
    return msgs["geometry_msgs/msg/Pose"](position=Point(*fields.position), orientation=Quat(x=x, y=y, z=z, w=w))


def test_round_trip_via_rosbags_pose(msgs):
    rng = np.random.default_rng(0)
    for _ in range(20):
        T = _random_pose(rng)
        out = pose_to_matrix(_msg(msgs, matrix_to_pose_fields(T)))
        np.testing.assert_allclose(out, T, atol=1e-12)


def test_ros_xyzw_order_is_reordered():
    # 90 degrees about z: ROS (x, y, z, w) = (0, 0, s, s)
    s = np.sqrt(0.5)
    T = pose_fields_to_matrix([1, 2, 3], [0, 0, s, s])
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert T[:3, 3].tolist() == [1, 2, 3]
    np.testing.assert_allclose(matrix_to_pose_fields(T).orientation_xyzw, [0, 0, s, s], atol=1e-12)


@pytest.mark.parametrize(
    "quat, match",
    [([0, 0, 0, 0], "all zero"), ([0, 0, 0, 2.0], "unit quaternion"), ([np.nan, 0, 0, 1], "NaN")],
)
def test_bad_quaternions_are_rejected(quat, match):
    with pytest.raises(PoseError, match=match):
        pose_fields_to_matrix([0, 0, 0], quat)


def test_float32_noise_in_quaternion_is_accepted():
    T = pose_fields_to_matrix([0, 0, 0], np.array([0, 0, 0, 1 + 2e-7]))
    np.testing.assert_allclose(T, np.eye(4))


def test_non_rigid_matrix_is_rejected():
    with pytest.raises(PoseError, match="rigid"):
        matrix_to_pose_fields(np.diag([2.0, 1, 1, 1]))
    with pytest.raises(PoseError, match="rigid"):
        matrix_to_pose_fields(np.diag([-1.0, -1, -1, 1]))  # a reflection, det -1


def test_body_odometry_with_extrinsic_gives_the_camera_pose() -> None:
    """world_T_body (what a VIO publishes) + camera_T_body (camera_from_body) -> world_T_cam."""
    from dgslrm_ros.convert.pose import body_to_camera, extrinsic_to_matrix
    from dgslrm_ros.core.rotations_np import quat_wxyz_to_matrix

    rng = np.random.default_rng(4)
    q = rng.normal(size=4)
    world_T_cam = np.eye(4)
    world_T_cam[:3, :3] = quat_wxyz_to_matrix(q / np.linalg.norm(q))
    world_T_cam[:3, 3] = rng.normal(size=3)
    camera_T_body = extrinsic_to_matrix([0.0, 0.05, -0.1, 0.5, -0.5, 0.5, 0.5])
    # body x forward, y left, z up (REP 103) -> camera z forward, x right, y down
    np.testing.assert_allclose(camera_T_body[:3, :3], [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(body_to_camera(np.eye(4), camera_T_body)[:3, 3], [0.1, 0, 0.05], atol=1e-12)
    world_T_body = world_T_cam @ camera_T_body
    np.testing.assert_allclose(body_to_camera(world_T_body, camera_T_body), world_T_cam, atol=1e-12)
    with pytest.raises(ValueError, match="7 values"):
        extrinsic_to_matrix([0, 0, 0, 1])
