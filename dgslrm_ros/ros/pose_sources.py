"""The pose message types `camera_pose` can carry (`pose_type`), each turned into world_T_cam.

Robots publish their localisation as PoseStamped (mocap, some SLAM), nav_msgs/Odometry (VIO, wheel +
IMU fusion) or TransformStamped (a TF bridge); most of them localise a body or IMU frame, not the
camera's optical frame, hence the fixed extrinsic `camera_from_body` (camera_T_body). After this
every source is the same stream of stamped camera poses: interpolation and `sync_tolerance` apply alike.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry

from dgslrm_ros.convert.pose import (
    body_to_camera,
    extrinsic_to_matrix,
    odometry_to_matrix,
    pose_to_matrix,
    transform_to_matrix,
)
from dgslrm_ros.convert.stamps import stamp_to_seconds

# pose_type -> (message class, msg -> pose of the message's child frame in its header frame)
POSE_SOURCES: dict[str, tuple[type, Callable[[Any], np.ndarray]]] = {
    "pose_stamped": (PoseStamped, lambda msg: pose_to_matrix(msg.pose, "camera_pose (PoseStamped)")),
    "odometry": (Odometry, lambda msg: odometry_to_matrix(msg, "camera_pose (Odometry)")),
    "transform_stamped": (TransformStamped, lambda msg: transform_to_matrix(msg, "camera_pose (TransformStamped)")),
}


class PoseSource:
    """One `pose_type` + extrinsic: `convert(msg)` -> (stamp s, world_T_cam [4, 4], world frame id)."""

    def __init__(self, pose_type: str, camera_from_body: tuple[float, ...]) -> None:
        if pose_type not in POSE_SOURCES:
            raise ValueError(f"parameter 'pose_type': expected one of {', '.join(POSE_SOURCES)}, got {pose_type!r}")
        self.pose_type = pose_type
        self.message_type, self._to_matrix = POSE_SOURCES[pose_type]
        camera_T_body = extrinsic_to_matrix(camera_from_body)
        # identity: skip the product so a camera-frame pose passes through bit for bit
        self._camera_T_body = None if np.allclose(camera_T_body, np.eye(4), atol=0.0) else camera_T_body

    def convert(self, msg: Any) -> tuple[float, np.ndarray, str]:
        """Raises ValueError (PoseError, StampError) on NaN, a non-unit quaternion or a bad stamp."""
        stamp = stamp_to_seconds(msg.header.stamp.sec, msg.header.stamp.nanosec)
        world_T_frame = self._to_matrix(msg)
        if self._camera_T_body is not None:
            world_T_frame = body_to_camera(world_T_frame, self._camera_T_body)
        return stamp, world_T_frame, msg.header.frame_id
