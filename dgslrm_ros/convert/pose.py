"""geometry_msgs/Pose <-> world_T_cam [4, 4].

ROS orders quaternions (x, y, z, w); the library uses (w, x, y, z). The reorder happens here and
nowhere else. Numpy (`core.rotations_np`, not torch) so the conversion costs microseconds per message.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from dgslrm_ros.convert.errors import PoseError
from dgslrm_ros.core.rotations_np import matrix_to_quat_wxyz, quat_wxyz_to_matrix

# A publisher's float32 quaternion is unit to ~1e-7; anything further off is a bug upstream
# (un-normalised interpolation, a zero-initialised message), which we refuse instead of guessing.
QUAT_NORM_TOLERANCE = 1e-3
ROTATION_TOLERANCE = 1e-4


class PoseLike(Protocol):
    position: Any  # .x .y .z
    orientation: Any  # .x .y .z .w


class PoseFields(NamedTuple):
    """geometry_msgs/Pose as arrays: position (x, y, z), orientation ROS order (x, y, z, w)."""

    position: np.ndarray  # [3] float64
    orientation_xyzw: np.ndarray  # [4] float64


def pose_fields_to_matrix(position: Any, orientation_xyzw: Any, what: str = "pose") -> np.ndarray:
    """position (x, y, z) + ROS quaternion (x, y, z, w) -> world_T_cam [4, 4] float64."""
    t = np.asarray(position, dtype=np.float64).reshape(-1)
    q = np.asarray(orientation_xyzw, dtype=np.float64).reshape(-1)
    if t.size != 3 or q.size != 4:
        raise PoseError(f"{what}: expected 3 position and 4 orientation values, got {t.size} and {q.size}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise PoseError(f"{what}: NaN or infinite values in position {t.tolist()} / orientation {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        hint = " (all zero: the orientation was never filled in)" if norm == 0 else ""
        raise PoseError(
            f"{what}: expected a unit quaternion (x, y, z, w), got {q.tolist()} with norm {norm:.6g}{hint}; "
            "normalise the orientation before publishing"
        )
    x, y, z, w = q / norm
    T = np.eye(4)
    T[:3, :3] = quat_wxyz_to_matrix(np.array([w, x, y, z]))
    T[:3, 3] = t
    return T


def pose_to_matrix(pose: PoseLike, what: str = "pose") -> np.ndarray:
    """geometry_msgs/Pose (any object with .position/.orientation) -> world_T_cam [4, 4] float64."""
    p, o = pose.position, pose.orientation
    return pose_fields_to_matrix((p.x, p.y, p.z), (o.x, o.y, o.z, o.w), what)


def matrix_to_pose_fields(world_T_cam: np.ndarray, what: str = "world_T_cam") -> PoseFields:
    """world_T_cam [4, 4] (rigid) -> PoseFields with the ROS (x, y, z, w) quaternion."""
    T = np.asarray(world_T_cam, dtype=np.float64)
    if T.shape != (4, 4):
        raise PoseError(f"{what}: expected a [4, 4] matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise PoseError(f"{what}: contains NaN or infinite values")
    R = T[:3, :3]
    rigid = (
        np.allclose(T[3], [0, 0, 0, 1], atol=ROTATION_TOLERANCE)
        and np.allclose(R @ R.T, np.eye(3), atol=ROTATION_TOLERANCE)
        and np.linalg.det(R) > 0
    )
    if not rigid:
        raise PoseError(
            f"{what}: expected a rigid transform (orthonormal rotation, det +1, last row 0 0 0 1), got "
            f"{T.tolist()}; re-orthonormalise it (e.g. via a quaternion) first"
        )
    w, x, y, z = matrix_to_quat_wxyz(R)
    return PoseFields(position=T[:3, 3].copy(), orientation_xyzw=np.array([x, y, z, w]))


def odometry_to_matrix(odometry: Any, what: str = "odometry") -> np.ndarray:
    """nav_msgs/Odometry -> world_T_child [4, 4]: the pose of `child_frame_id` in the header frame.

    The twist and both covariances are ignored: poses are interpolated between messages instead.
    """
    return pose_to_matrix(odometry.pose.pose, what)


def transform_to_matrix(transform: Any, what: str = "transform") -> np.ndarray:
    """geometry_msgs/TransformStamped -> parent_T_child [4, 4] (header frame <- child_frame_id)."""
    t, r = transform.transform.translation, transform.transform.rotation
    return pose_fields_to_matrix((t.x, t.y, t.z), (r.x, r.y, r.z, r.w), what)


def extrinsic_to_matrix(xyz_qxyzw: Any, what: str = "camera_from_body") -> np.ndarray:
    """[x, y, z, qx, qy, qz, qw] (a parameter's layout, ROS quaternion order) -> [4, 4]."""
    values = np.asarray(xyz_qxyzw, dtype=np.float64).reshape(-1)
    if values.size != 7:
        raise PoseError(f"{what}: expected 7 values [x, y, z, qx, qy, qz, qw], got {values.size}")
    return pose_fields_to_matrix(values[:3], values[3:], what)


def body_to_camera(world_T_body: np.ndarray, camera_T_body: np.ndarray) -> np.ndarray:
    """world_T_body [4, 4] (odometry of a body/IMU frame) -> world_T_cam [4, 4] of the rigidly mounted camera.

    world_T_cam = world_T_body @ body_T_cam, with body_T_cam the rigid inverse of camera_T_body.
    """
    R, t = camera_T_body[:3, :3], camera_T_body[:3, 3]
    body_T_cam = np.eye(4)
    body_T_cam[:3, :3] = R.T
    body_T_cam[:3, 3] = -R.T @ t
    return np.asarray(world_T_body, dtype=np.float64) @ body_T_cam
