"""rclpy message objects <-> the pure-numpy conversions of `dgslrm_ros.convert` (thin on purpose).

All layout knowledge (field lists, encodings, quaternion order) lives in `convert/`; this module only
copies plain values into and out of message classes, which is why it is the one place they appear.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from dgslrm_ros.convert.camera_info import (
    CameraIntrinsics,
    camera_info_to_intrinsics,
    intrinsics_to_camera_info_fields,
)
from dgslrm_ros.convert.compressed import rgb_to_compressed_fields
from dgslrm_ros.convert.image import image_to_rgb, rgb_to_image_fields
from dgslrm_ros.convert.pointcloud import PointCloudFields
from dgslrm_ros.convert.pose import matrix_to_pose_fields, pose_to_matrix
from dgslrm_ros.convert.stamps import seconds_to_stamp, stamp_to_seconds
from dgslrm_ros.convert.tracks import TRACK_LINE_WIDTH_M, TRACKS_NAMESPACE
from dgslrm_ros.convert.window import diagnostic_strings

__all__ = [
    "camera_info_msg", "camera_info_to_intrinsics", "CameraIntrinsics", "cloud_msg",
    "compressed_image_msg", "diagnostics", "header", "image_msg", "image_to_rgb", "marker_array", "odometry_msg",
    "path_msg", "pose_msg", "pose_to_matrix", "stamp_seconds", "transform_msg",
]


def stamp_seconds(stamp: Time) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp_to_seconds(stamp.sec, stamp.nanosec)


def header(seconds: float, frame_id: str) -> Header:
    sec, nanosec = seconds_to_stamp(float(seconds))
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_msg(rgb: np.ndarray, hdr: Header, encoding: str = "rgb8") -> Image:
    """uint8 [H, W, 3] RGB -> sensor_msgs/Image in `encoding`."""
    f = rgb_to_image_fields(rgb, encoding)
    return Image(header=hdr, height=f.height, width=f.width, encoding=f.encoding,
                 is_bigendian=f.is_bigendian, step=f.step, data=f.data.tobytes())


def camera_info_msg(K: np.ndarray, width: int, height: int, hdr: Header,
                    D: Iterable[float] | None = None, distortion_model: str = "plumb_bob") -> CameraInfo:
    f = intrinsics_to_camera_info_fields(K, width, height, None if D is None else np.asarray(list(D)),
                                         distortion_model)
    return CameraInfo(header=hdr, height=f.height, width=f.width, distortion_model=f.distortion_model,
                      d=f.d.tolist(), k=f.k.tolist(), r=f.r.tolist(), p=f.p.tolist())


def pose_msg(world_T_cam: np.ndarray, hdr: Header) -> PoseStamped:
    f = matrix_to_pose_fields(world_T_cam)
    msg = PoseStamped(header=hdr)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, f.position)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = map(float, f.orientation_xyzw)
    return msg


def cloud_msg(f: PointCloudFields, hdr: Header) -> PointCloud2:
    """convert.pointcloud's fields (pack_gaussians, pack_trajectories, array_to_pointcloud_fields) -> PointCloud2."""
    return PointCloud2(
        header=hdr, height=f.height, width=f.width,
        fields=[PointField(name=s.name, offset=s.offset, datatype=s.datatype, count=s.count) for s in f.fields],
        is_bigendian=f.is_bigendian, point_step=f.point_step, row_step=f.row_step,
        data=f.data.tobytes(), is_dense=f.is_dense,
    )


def marker_array(strips: Iterable[Any], hdr: Header) -> MarkerArray:
    """convert.tracks.TrackStrip list -> DELETEALL, then one LINE_STRIP per track (id = track_id).

    DELETEALL first so tracks that ended in this window vanish in RViz instead of freezing there.
    """
    markers = [Marker(header=hdr, ns=TRACKS_NAMESPACE, action=Marker.DELETEALL)]
    for strip in strips:
        marker = Marker(header=hdr, ns=TRACKS_NAMESPACE, id=strip.marker_id,
                        type=Marker.LINE_STRIP, action=Marker.ADD)
        marker.pose.orientation.w = 1.0
        marker.scale.x = TRACK_LINE_WIDTH_M
        marker.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(strip.points)]
        marker.colors = [ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))
                         for r, g, b, a in np.asarray(strip.colors)]
        marker.color = marker.colors[-1] if marker.colors else ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        markers.append(marker)
    return MarkerArray(markers=markers)


def diagnostics(values: Mapping[str, Any], stamp_msg: Time, name: str, hardware_id: str,
                level: int, message: str) -> DiagnosticArray:
    """One DiagnosticStatus holding every value as a KeyValue; the level and its reason are judged by
    `stream.health.StreamHealth` (0 OK, 1 WARN, 2 ERROR)."""
    status = DiagnosticStatus(level=bytes([int(level)]), name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in diagnostic_strings(values).items()])
    return DiagnosticArray(header=Header(stamp=stamp_msg), status=[status])


def path_msg(world_T_cam: np.ndarray, stamps: np.ndarray, hdr: Header) -> Path:
    """Camera poses [T, 4, 4] at stamps [T] s -> nav_msgs/Path in hdr's frame (oldest first)."""
    poses = []
    for pose, stamp in zip(np.asarray(world_T_cam), np.asarray(stamps, dtype=np.float64)):
        poses.append(pose_msg(pose, header(float(stamp), hdr.frame_id)))
    return Path(header=hdr, poses=poses)


def compressed_image_msg(rgb: np.ndarray, hdr: Header, fmt: str = "jpeg", quality: int = 90) -> CompressedImage:
    """uint8 [H, W, 3] RGB -> sensor_msgs/CompressedImage (jpeg or png), as image_transport sends it."""
    f = rgb_to_compressed_fields(rgb, fmt, quality)
    return CompressedImage(header=hdr, format=f.format, data=f.data)


def odometry_msg(world_T_body: np.ndarray, hdr: Header, child_frame_id: str = "body") -> Odometry:
    """world_T_body [4, 4] -> nav_msgs/Odometry (pose only; twist zero), as a VIO publishes it."""
    msg = Odometry(header=hdr, child_frame_id=child_frame_id)
    msg.pose.pose = pose_msg(world_T_body, hdr).pose
    return msg


def transform_msg(parent_T_child: np.ndarray, hdr: Header, child_frame_id: str = "camera_optical") -> TransformStamped:
    """parent_T_child [4, 4] -> geometry_msgs/TransformStamped."""
    f = matrix_to_pose_fields(parent_T_child)
    msg = TransformStamped(header=hdr, child_frame_id=child_frame_id)
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = map(float, f.position)
    r.x, r.y, r.z, r.w = map(float, f.orientation_xyzw)
    return msg
