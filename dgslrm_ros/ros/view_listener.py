"""Live input of `dgslrm view --live`: subscribes to the node's outputs and inputs over DDS.

Pairs each `gaussians` cloud with the `trajectories` cloud of the same stamp (the node publishes both
per window) and hands the pair, with the input cameras of the window's frames, the latest node
diagnostics and the receive latency, to a callback as plain arrays (`LiveWindow`): the viewer package
never sees a ROS type, and this module never imports the viewer (`cli/view.py` joins them).
Callbacks only convert and store; a cloud whose tracks do not come within PAIR_TIMEOUT_S is shown
without them. Bad messages are logged (throttled) and skipped.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from dgslrm_ros.bags.reader import diagnostic_values
from dgslrm_ros.convert.camera_info import camera_info_to_intrinsics
from dgslrm_ros.convert.errors import ConversionError
from dgslrm_ros.convert.image import image_to_rgb, thumbnail
from dgslrm_ros.convert.pointcloud import GaussianCloud, TrajectoryCloud, unpack_gaussians, unpack_trajectories
from dgslrm_ros.convert.pose import pose_to_matrix
from dgslrm_ros.convert.stamps import header_stamp_ns, nearest_stamped
from dgslrm_ros.ros.qos import CALIBRATION_QOS, DIAGNOSTICS_QOS, IMAGE_QOS, OUTPUT_QOS

PAIR_TIMEOUT_S = 1.0
KEEP_INPUT_FRAMES = 64  # input images/poses kept to texture the frusta of the next window


@dataclass(frozen=True)
class LiveCamera:
    stamp_ns: int
    world_T_cam: np.ndarray  # [4, 4] float64
    K: np.ndarray  # [3, 3] as in CameraInfo (OpenCV convention)
    width: int
    height: int
    rgb: np.ndarray | None  # [h, w, 3] uint8 thumbnail


@dataclass(frozen=True)
class LiveWindow:
    stamp_ns: int
    gaussians: GaussianCloud
    trajectories: TrajectoryCloud | None
    cameras: tuple[LiveCamera, ...] = ()
    diagnostics: dict[str, str] = field(default_factory=dict)
    latency_s: float | None = None  # receive wall time - stamp (meaningful when stamps are wall-clock)


class ViewListener(Node):
    """Subscriber node; `on_window(LiveWindow)` is called from the executor's thread."""

    def __init__(self, on_window: Callable[[LiveWindow], None], topic_names: dict[str, str],
                 node_name: str = "dgslrm_view") -> None:
        """`topic_names`: what is read -> topic, for the keys gaussians, trajectories, diagnostics, image,
        camera_info, camera_pose (cli/view.py's LIVE_TOPICS holds the node's names)."""
        super().__init__(node_name)
        expected = {"gaussians", "trajectories", "diagnostics", "image", "camera_info", "camera_pose"}
        if set(topic_names) != expected:
            raise ValueError(f"ViewListener: topic_names has keys {sorted(topic_names)}, expected {sorted(expected)}")
        names = topic_names
        self._on_window = on_window
        self._clouds: OrderedDict[int, tuple[GaussianCloud, float]] = OrderedDict()  # stamp -> (cloud, received)
        self._tracks: OrderedDict[int, TrajectoryCloud] = OrderedDict()
        self._poses: OrderedDict[int, np.ndarray] = OrderedDict()
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._intrinsics: Any = None
        self._diagnostics: dict[str, str] = {}
        self.windows = 0
        self.create_subscription(PointCloud2, names["gaussians"], self._on_gaussians, OUTPUT_QOS)
        self.create_subscription(PointCloud2, names["trajectories"], self._on_trajectories, OUTPUT_QOS)
        self.create_subscription(DiagnosticArray, names["diagnostics"], self._on_diagnostics, DIAGNOSTICS_QOS)
        self.create_subscription(Image, names["image"], self._on_image, IMAGE_QOS)
        self.create_subscription(CameraInfo, names["camera_info"], self._on_camera_info, CALIBRATION_QOS)
        self.create_subscription(PoseStamped, names["camera_pose"], self._on_pose, CALIBRATION_QOS)
        self.create_timer(0.25, self._flush_unpaired)

    # ------------------------------------------------------------------ callbacks
    def _warn(self, what: str, error: Exception) -> None:
        self.get_logger().warn(f"skipping a {what} message: {error}", throttle_duration_sec=5.0)

    def _on_gaussians(self, msg: PointCloud2) -> None:
        try:
            cloud = unpack_gaussians(msg)
        except ConversionError as error:
            return self._warn("gaussians", error)
        stamp = header_stamp_ns(msg)
        self._clouds[stamp] = (cloud, time.time())
        self._emit_ready()

    def _on_trajectories(self, msg: PointCloud2) -> None:
        try:
            self._tracks[header_stamp_ns(msg)] = unpack_trajectories(msg)
        except ConversionError as error:
            return self._warn("trajectories", error)
        _trim(self._tracks, 8)
        self._emit_ready()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self._diagnostics = diagnostic_values(msg) or self._diagnostics

    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except ConversionError as error:
            return self._warn("image", error)
        self._images[header_stamp_ns(msg)] = thumbnail(rgb)
        _trim(self._images, KEEP_INPUT_FRAMES)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._intrinsics = camera_info_to_intrinsics(msg)
        except ConversionError as error:
            self._warn("camera_info", error)

    def _on_pose(self, msg: PoseStamped) -> None:
        try:
            self._poses[header_stamp_ns(msg)] = pose_to_matrix(msg.pose)
        except ConversionError as error:
            return self._warn("camera_pose", error)
        _trim(self._poses, KEEP_INPUT_FRAMES * 4)

    # ------------------------------------------------------------------ pairing
    def _emit_ready(self) -> None:
        for stamp in [s for s in self._clouds if s in self._tracks]:
            cloud, received = self._clouds.pop(stamp)
            self._emit(stamp, cloud, self._tracks.pop(stamp), received)

    def _flush_unpaired(self) -> None:
        now = time.time()
        for stamp in [s for s, (_, received) in self._clouds.items() if now - received > PAIR_TIMEOUT_S]:
            cloud, received = self._clouds.pop(stamp)
            self._emit(stamp, cloud, None, received)

    def _emit(self, stamp_ns: int, cloud: GaussianCloud, tracks: TrajectoryCloud | None, received: float) -> None:
        frames = [stamp_ns] if tracks is None or tracks.t.size == 0 else \
            [stamp_ns + int(round(float(t) * 1e9)) for t in tracks.t[0]]
        cameras = []
        if self._intrinsics is not None:
            for frame in frames:
                pose = nearest_stamped(self._poses, frame)
                if pose is not None:
                    cameras.append(LiveCamera(frame, pose, np.asarray(self._intrinsics.K), self._intrinsics.width,
                                              self._intrinsics.height, nearest_stamped(self._images, frame)))
        latency = received - stamp_ns / 1e9
        self.windows += 1
        self._on_window(LiveWindow(stamp_ns, cloud, tracks, tuple(cameras), dict(self._diagnostics),
                                   latency if latency > 0 else None))


def _trim(store: OrderedDict, keep: int) -> None:
    while len(store) > keep:
        store.popitem(last=False)
