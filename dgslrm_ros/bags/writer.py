"""Write ROS 2 bags (mcap by default, sqlite3 optional) with `rosbags`, never rclpy.

Bags are rosbag2 metadata version 8 (what Jazzy's `ros2 bag` reads; Kilted reads it too), CDR
serialised with Jazzy message definitions and type hashes, each topic recorded with the offered
QoS a live publisher of it would have (reliable, volatile, keep-last), so `ros2 bag play`
republishes them in a way the node's subscriptions match.
"""
from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer, WriterError
from rosbags.typesys.store import Typestore

from dgslrm_ros.bags import messages, topics
from dgslrm_ros.convert.pointcloud import PointCloudFields
from dgslrm_ros.convert.stamps import header_stamp_ns
from dgslrm_ros.convert.tracks import TrackStrip
from dgslrm_ros.core.errors import DgslrmError

BAG_VERSION = 8
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}

_INFINITE = QosTime(sec=0, nsec=0)  # rosbag2 writes "0 = default / infinite"
RELIABLE_VOLATILE = Qos(
    history=QosHistory.KEEP_LAST, depth=10, reliability=QosReliability.RELIABLE,
    durability=QosDurability.VOLATILE, deadline=_INFINITE, lifespan=_INFINITE,
    liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_INFINITE,
    avoid_ros_namespace_conventions=False,
)


class BagWriteError(DgslrmError, RuntimeError):
    """The bag cannot be created or written (path exists, unknown storage, type clash on a topic)."""


class BagWriter:
    """Context manager writing one ROS 2 bag directory.

    `write_*` helpers take our numpy data and a stamp in integer ns; the stamp is both the header
    stamp and the bag's log time, so readers see messages in stamp order.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", typestore: Typestore | None = None,
                 compress: bool = False) -> None:
        if storage not in STORAGES:
            raise BagWriteError(f"unknown bag storage {storage!r}: expected one of {sorted(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f"{self.path} exists already; rosbag2 bags are written into a new directory, "
                                "remove it or choose another --out")
        self.storage = storage
        self.typestore = typestore or messages.default_typestore()
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        if compress:
            # zstd per chunk inside mcap, per message in sqlite3 (its only mode); readers decompress
            mode = CompressionMode.STORAGE if storage == "mcap" else CompressionMode.MESSAGE
            self._writer.set_compression(mode, CompressionFormat.ZSTD)
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self._open = False

    def open(self) -> "BagWriter":
        self._writer.open()
        self._open = True
        return self

    def close(self) -> None:
        if self._open:
            self._writer.close()
            self._open = False

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Close (index + metadata) even on error, so what was written stays readable.
        self.close()

    def set_custom_data(self, key: str, value: str) -> None:
        """A key/value pair in metadata.yaml's custom_data (e.g. how a bag was made)."""
        self._writer.set_custom_data(key, value)

    # --- generic --------------------------------------------------------------------------------

    def _connection(self, topic: str, msgtype: str) -> Any:
        name = topics.qualified(topic)
        connection = self._connections.get(name)
        if connection is None:
            try:
                connection = self._writer.add_connection(
                    name, msgtype, typestore=self.typestore, offered_qos_profiles=[RELIABLE_VOLATILE])
            except WriterError as error:
                raise BagWriteError(f"cannot add topic {name} ({msgtype}) to {self.path}: {error}") from error
            self._connections[name] = connection
        elif connection.msgtype != msgtype:
            raise BagWriteError(f"topic {name} already carries {connection.msgtype}, cannot also write {msgtype}")
        return connection

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Write an already CDR-serialised message (e.g. received with rclpy `raw=True`)."""
        if not self._open:
            raise BagWriteError("BagWriter is not open; use it as a context manager (with BagWriter(...) as bag)")
        self._writer.write(self._connection(topic, msgtype), int(log_time_ns), data)
        name = topics.qualified(topic)
        self.counts[name] = self.counts.get(name, 0) + 1

    def write_message(self, topic: str, msg: Any, log_time_ns: int | None = None) -> None:
        """Write a rosbags message object; log time defaults to its header stamp."""
        msgtype = msg.__msgtype__
        if log_time_ns is None:
            log_time_ns = header_stamp_ns(msg)
        self.write_raw(topic, msgtype, self.typestore.serialize_cdr(msg, msgtype), log_time_ns)

    # --- our data ---------------------------------------------------------------------------------

    def write_image(self, topic: str, stamp_ns: int, rgb: np.ndarray, frame_id: str = topics.CAMERA_FRAME,
                    encoding: str = "rgb8") -> None:
        """uint8 [H, W, 3] RGB."""
        self.write_message(topic, messages.image_msg(self.typestore, stamp_ns, rgb, frame_id, encoding))

    def write_camera_info(self, topic: str, stamp_ns: int, K: np.ndarray, width: int, height: int,
                          frame_id: str = topics.CAMERA_FRAME, D: Sequence[float] | None = None,
                          distortion_model: str = "plumb_bob") -> None:
        """K [3, 3]."""
        self.write_message(topic, messages.camera_info_msg(
            self.typestore, stamp_ns, K, width, height, frame_id, D, distortion_model))

    def write_pose(self, topic: str, stamp_ns: int, world_T_cam: np.ndarray,
                   frame_id: str = topics.WORLD_FRAME) -> None:
        """world_T_cam [4, 4] as PoseStamped."""
        self.write_message(topic, messages.pose_stamped_msg(self.typestore, stamp_ns, world_T_cam, frame_id))

    def write_pointcloud(self, topic: str, stamp_ns: int, cloud: PointCloudFields,
                         frame_id: str = topics.WORLD_FRAME) -> None:
        """PointCloudFields from convert.pointcloud (pack_gaussians / pack_trajectories / any)."""
        self.write_message(topic, messages.pointcloud_msg(self.typestore, stamp_ns, cloud, frame_id))

    def write_markers(self, topic: str, stamp_ns: int, strips: Sequence[TrackStrip],
                      frame_id: str = topics.WORLD_FRAME) -> None:
        """Track strips as a MarkerArray of LINE_STRIPs."""
        msg = messages.marker_array_msg(self.typestore, stamp_ns, strips, frame_id)
        self.write_message(topic, msg, stamp_ns)

    def write_diagnostics(self, topic: str, stamp_ns: int, entries: Sequence[messages.DiagnosticEntry]) -> None:
        self.write_message(topic, messages.diagnostic_array_msg(self.typestore, stamp_ns, entries))

