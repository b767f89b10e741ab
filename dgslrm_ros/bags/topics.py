"""Topic names and message types of the contract (docs: shared/interface.md), for bags.

Names are the node's relative names; bags store them fully qualified in the root namespace
(`/image`), as `ros2 bag record` does, and readers accept either form.
"""
from __future__ import annotations

import re

IMAGE = "image"
CAMERA_INFO = "camera_info"
CAMERA_POSE = "camera_pose"
GAUSSIANS = "gaussians"
TRAJECTORIES = "trajectories"
TRACKS_MARKERS = "tracks_markers"
RENDERED = "rendered"
CAMERA_PATH = "camera_path"
DIAGNOSTICS = "/diagnostics"
GT_TRAJECTORIES = "gt/trajectories"

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
POSE_STAMPED_TYPE = "geometry_msgs/msg/PoseStamped"
POINTCLOUD2_TYPE = "sensor_msgs/msg/PointCloud2"
MARKER_ARRAY_TYPE = "visualization_msgs/msg/MarkerArray"
DIAGNOSTIC_ARRAY_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
PATH_TYPE = "nav_msgs/msg/Path"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"

WORLD_FRAME = "world"
CAMERA_FRAME = "camera_optical"

_GT_VIEW = re.compile(r"^gt/views/(\d+)/(image|pose|camera_info)$")


def gt_view_image(k: int) -> str:
    return f"gt/views/{int(k)}/image"


def gt_view_pose(k: int) -> str:
    return f"gt/views/{int(k)}/pose"


def gt_view_camera_info(k: int) -> str:
    return f"gt/views/{int(k)}/camera_info"


def relative(topic: str) -> str:
    """'/image' and 'image' -> 'image' (how topics are compared)."""
    return topic.lstrip("/")


def qualified(topic: str) -> str:
    """'image' -> '/image' (how topics are written to bags)."""
    return "/" + topic.lstrip("/")


def parse_gt_view(topic: str) -> tuple[int, str] | None:
    """'/gt/views/3/pose' -> (3, 'pose'); None for other topics."""
    match = _GT_VIEW.match(relative(topic))
    return (int(match.group(1)), match.group(2)) if match else None
