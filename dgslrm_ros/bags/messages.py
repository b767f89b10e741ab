"""Build `rosbags` message objects from our numpy data (the bags/ twin of ros/messages.py).

Conversions come from `convert/`; this module only copies their fields into message classes of a
rosbags typestore. `default_message` fills every field a message type has, so builders name only
what they set and stay valid when a distro adds fields (e.g. Marker.texture in Iron+).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from dgslrm_ros.bags import topics
from dgslrm_ros.convert.camera_info import intrinsics_to_camera_info_fields
from dgslrm_ros.convert.image import rgb_to_image_fields
from dgslrm_ros.convert.pointcloud import PointCloudFields
from dgslrm_ros.convert.pose import matrix_to_pose_fields
from dgslrm_ros.convert.stamps import ns_to_stamp
from dgslrm_ros.convert.tracks import TRACK_LINE_WIDTH_M, TRACKS_NAMESPACE, TrackStrip

_NUMERIC = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
    "uint64": np.uint64, "float32": np.float32, "float64": np.float64,
}
# rosbags Nodetype values
_BASE, _NAME, _ARRAY, _SEQUENCE = 1, 2, 3, 4


@functools.lru_cache(maxsize=1)
def default_typestore() -> Typestore:
    """ROS 2 Jazzy message definitions (identical for our types in Kilted), else rosbags' newest.

    Cached: building a typestore takes ~1 s, and message classes of one store compare equal."""
    store = getattr(Stores, "ROS2_JAZZY", None) or Stores.LATEST
    return get_typestore(store)


def _default_value(typestore: Typestore, node: tuple) -> Any:
    kind, spec = node
    if kind == _BASE:
        name = spec[0]
        if name in ("string", "wstring"):
            return ""
        return False if name == "bool" else (0.0 if name in ("float32", "float64") else 0)
    if kind == _NAME:
        return default_message(typestore, spec)
    inner, length = spec
    if kind == _ARRAY:
        if inner[0] == _BASE and inner[1][0] in _NUMERIC:
            return np.zeros(length, dtype=_NUMERIC[inner[1][0]])
        return [_default_value(typestore, inner) for _ in range(length)]
    if inner[0] == _BASE and inner[1][0] in _NUMERIC:  # sequence of numbers
        return np.zeros(0, dtype=_NUMERIC[inner[1][0]])
    return []


def default_message(typestore: Typestore, msgtype: str, **values: Any) -> Any:
    """A message of `msgtype` with every field zero/empty except `values`."""
    _, fields = typestore.fielddefs[msgtype]
    kwargs = {name: values[name] if name in values else _default_value(typestore, node) for name, node in fields}
    unknown = set(values) - set(kwargs)
    if unknown:
        raise TypeError(f"{msgtype} has no fields {sorted(unknown)}")
    return typestore.types[msgtype](**kwargs)


def header(typestore: Typestore, stamp_ns: int, frame_id: str) -> Any:
    sec, nanosec = ns_to_stamp(stamp_ns)
    stamp = typestore.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return typestore.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def image_msg(typestore: Typestore, stamp_ns: int, rgb: np.ndarray, frame_id: str = topics.CAMERA_FRAME,
              encoding: str = "rgb8") -> Any:
    """uint8 [H, W, 3] RGB -> sensor_msgs/Image."""
    fields = rgb_to_image_fields(rgb, encoding)
    values = fields._asdict() | {"data": np.ascontiguousarray(fields.data)}
    return default_message(typestore, topics.IMAGE_TYPE, header=header(typestore, stamp_ns, frame_id), **values)


def camera_info_msg(typestore: Typestore, stamp_ns: int, K: np.ndarray, width: int, height: int,
                    frame_id: str = topics.CAMERA_FRAME, D: Sequence[float] | None = None,
                    distortion_model: str = "plumb_bob") -> Any:
    """K [3, 3] -> sensor_msgs/CameraInfo."""
    fields = intrinsics_to_camera_info_fields(K, width, height, D, distortion_model)
    return default_message(typestore, topics.CAMERA_INFO_TYPE, header=header(typestore, stamp_ns, frame_id),
                           **fields._asdict())


def pose_stamped_msg(typestore: Typestore, stamp_ns: int, world_T_cam: np.ndarray,
                     frame_id: str = topics.WORLD_FRAME) -> Any:
    """world_T_cam [4, 4] -> geometry_msgs/PoseStamped (pose of the camera in `frame_id`)."""
    fields = matrix_to_pose_fields(world_T_cam)
    t = typestore.types
    x, y, z, w = (float(v) for v in fields.orientation_xyzw)
    pose = t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](*(float(v) for v in fields.position)),
        orientation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
    )
    return t[topics.POSE_STAMPED_TYPE](header=header(typestore, stamp_ns, frame_id), pose=pose)


def pointcloud_msg(typestore: Typestore, stamp_ns: int, cloud: PointCloudFields,
                   frame_id: str = topics.WORLD_FRAME) -> Any:
    """PointCloudFields (convert.pointcloud.pack_*) -> sensor_msgs/PointCloud2."""
    point_field = typestore.types["sensor_msgs/msg/PointField"]
    fields = [point_field(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in cloud.fields]
    values = cloud._asdict() | {"fields": fields, "data": np.ascontiguousarray(cloud.data).view(np.uint8)}
    return typestore.types[topics.POINTCLOUD2_TYPE](header=header(typestore, stamp_ns, frame_id), **values)


def marker_array_msg(typestore: Typestore, stamp_ns: int, strips: Sequence[TrackStrip],
                     frame_id: str = topics.WORLD_FRAME) -> Any:
    """TrackStrips -> MarkerArray (the rule of convert/tracks.py), per-vertex speed colours."""
    t = typestore.types
    hdr = header(typestore, stamp_ns, frame_id)
    identity = t["geometry_msgs/msg/Pose"](
        position=t["geometry_msgs/msg/Point"](0.0, 0.0, 0.0),
        orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
    )
    markers = [default_message(typestore, "visualization_msgs/msg/Marker", header=hdr, ns=TRACKS_NAMESPACE, action=3,
                               pose=identity)]
    for strip in strips:
        points = [t["geometry_msgs/msg/Point"](*map(float, p)) for p in strip.points]
        colors = [t["std_msgs/msg/ColorRGBA"](*map(float, c)) for c in strip.colors]
        markers.append(default_message(
            typestore, "visualization_msgs/msg/Marker", header=hdr, ns=TRACKS_NAMESPACE, id=strip.marker_id,
            type=4, action=0, pose=identity, scale=t["geometry_msgs/msg/Vector3"](TRACK_LINE_WIDTH_M, 0.0, 0.0),
            color=t["std_msgs/msg/ColorRGBA"](1.0, 1.0, 1.0, 1.0), points=points, colors=colors,
        ))
    return t[topics.MARKER_ARRAY_TYPE](markers=markers)


@dataclass(frozen=True)
class DiagnosticEntry:
    """One diagnostic_msgs/DiagnosticStatus: level 0 OK, 1 WARN, 2 ERROR, 3 STALE."""

    name: str
    message: str
    level: int = 0
    hardware_id: str = ""
    values: dict[str, str] = field(default_factory=dict)


def diagnostic_array_msg(typestore: Typestore, stamp_ns: int, entries: Sequence[DiagnosticEntry]) -> Any:
    t = typestore.types
    status = [
        t["diagnostic_msgs/msg/DiagnosticStatus"](
            level=int(e.level), name=e.name, message=e.message, hardware_id=e.hardware_id,
            values=[t["diagnostic_msgs/msg/KeyValue"](key=str(k), value=str(v)) for k, v in e.values.items()],
        )
        for e in entries
    ]
    return t[topics.DIAGNOSTIC_ARRAY_TYPE](header=header(typestore, stamp_ns, ""), status=status)
