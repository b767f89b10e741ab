"""Read a ROS 2 bag (mcap or sqlite3) as a time-ordered stream of typed records, with `rosbags`.

Input topics (names as options, a leading slash optional) become ImageRecord / CameraInfoRecord /
PoseRecord with view 0; the image topic may hold sensor_msgs/Image or CompressedImage (jpeg, png),
and where the bag has no `<image>` but `<image>/compressed` (image_transport's name), that is read; the synthetic ground truth (`gt/views/<k>/...`, `gt/trajectories`) becomes
the same records with view k, and TrajectoriesRecord. A truncated or corrupt bag yields every
message that could be read, then raises BagReadError saying where it broke off.
"""
from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys.store import Typestore

from dgslrm_ros.bags import messages, topics
from dgslrm_ros.bags.mcap_stream import McapTruncatedError, scan_mcap
from dgslrm_ros.convert.camera_info import CameraIntrinsics, camera_info_to_intrinsics, opencv_to_library_K
from dgslrm_ros.convert.compressed import compressed_to_rgb
from dgslrm_ros.convert.errors import CompressedImageError, ConversionError
from dgslrm_ros.convert.image import image_to_rgb
from dgslrm_ros.convert.pointcloud import TrajectoryCloud, unpack_trajectories
from dgslrm_ros.convert.pose import pose_to_matrix
from dgslrm_ros.convert.stamps import header_stamp_ns
from dgslrm_ros.core.errors import DgslrmError


class BagReadError(DgslrmError, RuntimeError):
    """The bag cannot be opened, lacks a required topic, or breaks off (truncated / corrupt)."""

    def __init__(self, message: str, records_read: int = 0) -> None:
        self.records_read = records_read
        super().__init__(message)


@dataclass(frozen=True)
class BagRecord:
    topic: str  # relative name, e.g. "image" or "gt/views/2/pose"
    stamp_ns: int  # header stamp
    log_time_ns: int  # bag receive time
    frame_id: str


@dataclass(frozen=True)
class ImageRecord(BagRecord):
    rgb: np.ndarray  # [H, W, 3] uint8
    view: int = 0  # 0 = input camera, k = held-out ground-truth view k


@dataclass(frozen=True)
class CameraInfoRecord(BagRecord):
    intrinsics: CameraIntrinsics
    view: int = 0


@dataclass(frozen=True)
class PoseRecord(BagRecord):
    world_T_cam: np.ndarray  # [4, 4] float64, camera optical frame -> frame_id
    view: int = 0


@dataclass(frozen=True)
class TrajectoriesRecord(BagRecord):
    trajectories: TrajectoryCloud


def _storage_file(path: Path) -> Path:
    """The storage file inside a bag directory, for scanning when metadata or the index is broken."""
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.mcap")) + sorted(path.glob("*.db3"))
    if not candidates:
        raise BagReadError(f"{path}: no .mcap or .db3 file in the bag directory")
    return candidates[0]


class BagReader:
    """Iterate typed records of one bag: `for record in BagReader(path): ...`.

    `strict=False` skips messages that fail to convert (unsupported encoding, bad pose...) and
    counts them in `skipped` by reason, as the node does with live topics.
    """

    def __init__(self, path: str | Path, image_topic: str = topics.IMAGE,
                 camera_info_topic: str = topics.CAMERA_INFO, pose_topic: str = topics.CAMERA_POSE,
                 ground_truth: bool = True, strict: bool = True, typestore: Typestore | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagReadError(f"bag {self.path} does not exist")
        self.image_topic = topics.relative(image_topic)
        self.camera_info_topic = topics.relative(camera_info_topic)
        self.pose_topic = topics.relative(pose_topic)
        self.ground_truth = ground_truth
        self.strict = strict
        self.typestore = typestore or messages.default_typestore()
        self.skipped: Counter[str] = Counter()
        self.records_read = 0

    # --- topic routing ---------------------------------------------------------------------------

    def _kind(self, topic: str) -> tuple[str, int] | None:
        """relative topic -> (kind, view) for the topics we read, None for others."""
        if topic == self.image_topic:
            return ("image", 0)
        if topic == self.camera_info_topic:
            return ("camera_info", 0)
        if topic == self.pose_topic:
            return ("pose", 0)
        if self.ground_truth:
            if topic == topics.GT_TRAJECTORIES:
                return ("trajectories", 0)
            parsed = topics.parse_gt_view(topic)
            if parsed:
                return (parsed[1], parsed[0])
        return None

    def _record(self, topic: str, msgtype: str, log_time: int, raw: bytes) -> BagRecord | None:
        kind = self._kind(topics.relative(topic))
        if kind is None:
            return None
        name, view = kind
        try:
            msg = self.typestore.deserialize_cdr(raw, msgtype)
        except Exception as error:  # damaged CDR raises struct/index/value errors from generated code
            if self.strict:
                raise BagReadError(
                    f"{self.path}: bag is corrupt: the message on {topic} at {log_time} ns is not a valid "
                    f"{msgtype} ({type(error).__name__}: {error}); {self.records_read} records were read before",
                    self.records_read,
                ) from error
            self.skipped[f"{topics.relative(topic)}: corrupt message"] += 1
            return None
        try:  # the stamp too: a nanosec field >= 1e9 is one bad message, not the end of the bag
            base = dict(topic=topics.relative(topic), stamp_ns=header_stamp_ns(msg), log_time_ns=int(log_time),
                        frame_id=msg.header.frame_id)
            if name == "image":
                rgb = compressed_to_rgb(msg) if msgtype == topics.COMPRESSED_IMAGE_TYPE else image_to_rgb(msg)
                return ImageRecord(**base, rgb=rgb, view=view)
            if name == "camera_info":
                return CameraInfoRecord(**base, intrinsics=camera_info_to_intrinsics(msg), view=view)
            if name == "pose":
                return PoseRecord(**base, world_T_cam=pose_to_matrix(msg.pose, f"{topic} pose"), view=view)
            return TrajectoriesRecord(**base, trajectories=unpack_trajectories(msg))
        except ConversionError as error:
            if self.strict:
                raise BagReadError(f"{self.path}: message on {topic} at {log_time} ns: {error}",
                                   self.records_read) from error
            reason = error.reason if isinstance(error, CompressedImageError) else type(error).__name__
            self.skipped[f"{topics.relative(topic)}: {reason}"] += 1
            return None

    # --- iteration -------------------------------------------------------------------------------

    def _target(self) -> Path:
        """A bag directory, or its storage file directly when metadata.yaml is missing."""
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            return _storage_file(self.path)
        return self.path

    def topics(self) -> dict[str, str]:
        """Relative topic name -> message type of every topic in the bag."""
        try:
            with Reader(self._target()) as reader:
                return {topics.relative(c.topic): c.msgtype for c in reader.connections}
        except (ReaderError, OSError, sqlite3.Error, ValueError, KeyError) as error:
            raise BagReadError(f"{self.path}: cannot open bag: {error}") from error

    def __iter__(self) -> Iterator[BagRecord]:
        self.records_read = 0
        try:
            reader = Reader(self._target())
            reader.open()
        except (ReaderError, OSError, sqlite3.Error, ValueError, KeyError, AssertionError) as error:
            yield from self._scan_damaged(error)
            return
        try:
            found = {topics.relative(c.topic) for c in reader.connections}
            self._check_required(found)
            # a topic may have several connections (publishers with different QoS): keep them all
            wanted = [c for c in reader.connections if self._kind(topics.relative(c.topic)) is not None]
            try:
                for connection, log_time, raw in reader.messages(connections=wanted):
                    record = self._record(connection.topic, connection.msgtype, log_time, raw)
                    if record is not None:
                        self.records_read += 1
                        yield record
            except BagReadError:
                raise
            except Exception as error:  # rosbags/sqlite3/struct raise many kinds on damaged data
                raise BagReadError(
                    f"{self.path}: bag is corrupt or truncated after {self.records_read} records "
                    f"({type(error).__name__}: {error}); the records before were read",
                    self.records_read,
                ) from error
        finally:
            try:
                reader.close()
            except Exception:  # closing a damaged storage must not hide the real error
                pass

    def _check_required(self, found: set[str]) -> None:
        compressed = f"{self.image_topic}/compressed"
        if self.image_topic not in found and compressed in found:  # image_transport's compressed stream
            self.image_topic = compressed
        if self.image_topic not in found:
            raise BagReadError(
                f"{self.path}: no image topic {self.image_topic!r} in the bag; it has {sorted(found)}; "
                "pass the right name (e.g. --image-topic)"
            )

    def _scan_damaged(self, open_error: Exception) -> Iterator[BagRecord]:
        """The index/metadata could not be read: recover messages by scanning the mcap file."""
        storage = _storage_file(self.path)
        if storage.suffix != ".mcap":
            raise BagReadError(f"{self.path}: cannot open bag ({type(open_error).__name__}: {open_error})")
        try:
            for message in scan_mcap(storage):
                record = self._record(message.topic, message.msgtype, message.log_time_ns, message.data)
                if record is not None:
                    self.records_read += 1
                    yield record
        except McapTruncatedError as error:
            raise BagReadError(
                f"{self.path}: bag is truncated or corrupt ({error}; the index could not be opened: "
                f"{open_error}); read {self.records_read} records before that point",
                self.records_read,
            ) from error
        raise BagReadError(
            f"{self.path}: the bag's index is unreadable ({open_error}) but its data section is complete; "
            f"read all {self.records_read} records by scanning; re-index it with `ros2 bag reindex`",
            self.records_read,
        )


def read_bag(path: str | Path, **options: Any) -> Iterator[BagRecord]:
    """Records of a bag in log-time order (see BagReader for options)."""
    yield from BagReader(path, **options)


@dataclass(frozen=True)
class BagSequence:
    """A synthetic bag gathered into arrays (views by index: 0 = input, k = gt/views/k)."""

    stamps_ns: np.ndarray  # [T] int64, stamps of the input images
    rgb: np.ndarray  # [V, T, H, W, 3] uint8
    K: np.ndarray  # [V, 3, 3] float64, the library's convention (pixel centres at +0.5), from the last camera_info of each view
    world_T_cam: np.ndarray  # [V, T, 4, 4] float64
    trajectories: TrajectoryCloud | None  # the last gt/trajectories cloud (whole history), if any
    trajectories_stamp_ns: int | None


def load_sequence(path: str | Path, **options: Any) -> BagSequence:
    """Read a whole (synthetic) bag into arrays, matching every view's image and pose by exact stamp.

    For recorded bags whose poses are not on the image stamps use the streaming BagReader and
    interpolate (stream/ does); this helper is for bags written by `dgslrm synth` and the like.
    """
    images: dict[int, dict[int, np.ndarray]] = {}
    poses: dict[int, dict[int, np.ndarray]] = {}
    intrinsics: dict[int, np.ndarray] = {}
    last_traj: TrajectoriesRecord | None = None
    for record in read_bag(path, **options):
        if isinstance(record, ImageRecord):
            images.setdefault(record.view, {})[record.stamp_ns] = record.rgb
        elif isinstance(record, PoseRecord):
            poses.setdefault(record.view, {})[record.stamp_ns] = record.world_T_cam
        elif isinstance(record, CameraInfoRecord):
            intrinsics[record.view] = record.intrinsics.K
        elif isinstance(record, TrajectoriesRecord):
            if last_traj is None or record.stamp_ns >= last_traj.stamp_ns:
                last_traj = record
    if 0 not in images:
        raise BagReadError(f"{path}: no input images")
    stamps = np.array(sorted(images[0]), dtype=np.int64)
    views = sorted(images)
    if views != list(range(len(views))):
        raise BagReadError(f"{path}: ground-truth views must be numbered 1..V-1 without gaps, got {views[1:]}")
    if 0 not in intrinsics:
        raise BagReadError(f"{path}: no camera_info for the input camera")
    rgb, world_T_cam, K = [], [], []
    for view in views:
        missing = [int(s) for s in stamps if s not in images[view] or s not in poses.get(view, {})]
        if missing:
            raise BagReadError(f"{path}: view {view} lacks an image or pose at stamps {missing[:5]} (ns); "
                               "load_sequence needs them on the input stamps")
        rgb.append(np.stack([images[view][s] for s in stamps]))
        world_T_cam.append(np.stack([poses[view][s] for s in stamps]))
        K.append(intrinsics.get(view, intrinsics[0]))  # contract: same camera_info unless the view has its own
    return BagSequence(
        stamps_ns=stamps, rgb=np.stack(rgb), K=opencv_to_library_K(np.stack(K)), world_T_cam=np.stack(world_T_cam),
        trajectories=last_traj.trajectories if last_traj else None,
        trajectories_stamp_ns=last_traj.stamp_ns if last_traj else None,
    )


def diagnostic_values(msg: Any) -> dict[str, str]:
    """The node's status in a DiagnosticArray (name starting 'dgslrm') as key -> value; {} without one."""
    for status in msg.status:
        if str(status.name).startswith("dgslrm"):
            return {kv.key: kv.value for kv in status.values}
    return {}


def read_messages(path: str | Path, names: list[str] | None = None,
                  typestore: Typestore | None = None) -> Iterator[tuple[str, int, Any]]:
    """(relative topic, log time ns, rosbags message) of any topics (all when `names` is None), in
    log-time order: for output bags (`gaussians`, `tracks_markers`, `/diagnostics`...), whose
    records BagReader does not type. Convert them with convert/ (e.g. unpack_gaussians)."""
    path = Path(path)
    store = typestore or messages.default_typestore()
    wanted = None if names is None else {topics.relative(n) for n in names}
    target = _storage_file(path) if path.is_dir() and not (path / "metadata.yaml").exists() else path
    count = 0
    try:
        with Reader(target) as reader:
            connections = [c for c in reader.connections if wanted is None or topics.relative(c.topic) in wanted]
            if wanted is not None and not connections:
                found = sorted(topics.relative(c.topic) for c in reader.connections)
                raise BagReadError(f"{path}: none of the topics {sorted(wanted)} is in the bag; it has {found}")
            for connection, log_time, raw in reader.messages(connections=connections):
                yield topics.relative(connection.topic), int(log_time), store.deserialize_cdr(raw, connection.msgtype)
                count += 1
    except BagReadError:
        raise
    except Exception as error:  # rosbags/sqlite3/struct raise many kinds on damaged data
        raise BagReadError(f"{path}: cannot read the bag after {count} messages ({type(error).__name__}: {error})",
                           count) from error
