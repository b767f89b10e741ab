"""The ROS side of `dgslrm bench --soak`: a camera that never stops, and an ear on the node's outputs.

`SoakDriver` publishes a synthetic scene as `image`, `camera_info` and `camera_pose` at a fixed rate,
forever: the frames play forwards then backwards (ping-pong), so the camera and the objects move
continuously without the teleport of a plain loop, and every stamp is the wall-clock time of
publishing, so the stream never restarts as far as the node can tell. It listens to `rendered`
(published once per window, with the window's newest frame stamp: its arrival minus its stamp is the
end-to-end latency, stamp to publish plus one loopback DDS hop) and to `/diagnostics` (the node's
drop counters, queue sizes and its own memory figures).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from dgslrm_ros.bags.reader import diagnostic_values
from dgslrm_ros.ros import messages
from dgslrm_ros.ros.qos import DIAGNOSTICS_QOS, INPUT_PUBLISHER_QOS, RECORDER_QOS


def ping_pong_index(i: int, count: int) -> int:
    """Frame of the scene shown at step i: 0, 1, ..., count-1, count-2, ..., 1, 0, 1, ..."""
    if count < 2:
        return 0
    period = 2 * (count - 1)
    step = i % period
    return step if step < count else period - step


@dataclass(frozen=True)
class WindowArrival:
    received: float  # wall-clock seconds
    latency_s: float  # received - stamp of the window's newest frame


class SoakDriver(Node):
    """Publishes the scene at `rate_hz` and records window arrivals and the latest diagnostics."""

    def __init__(self, frames: np.ndarray, K_opencv: np.ndarray, world_T_cam: np.ndarray, rate_hz: float,
                 world_frame: str = "world") -> None:
        """frames uint8 [T, H, W, 3], K_opencv [3, 3] (CameraInfo convention), world_T_cam [T, 4, 4]."""
        super().__init__("dgslrm_soak_driver")
        if frames.ndim != 4 or frames.shape[3] != 3 or world_T_cam.shape != (frames.shape[0], 4, 4):
            raise ValueError(f"expected frames [T, H, W, 3] and world_T_cam [T, 4, 4], got {frames.shape} and "
                             f"{world_T_cam.shape}")
        self._frames, self._K, self._poses = frames, np.asarray(K_opencv, np.float64), world_T_cam
        self._world_frame = world_frame
        self._lock = threading.Lock()
        self._arrivals: list[WindowArrival] = []
        self._diagnostics: dict[str, str] = {}
        self._diagnostics_at = 0.0
        self.published = 0
        self._streaming = False
        self._pub_image = self.create_publisher(Image, "image", INPUT_PUBLISHER_QOS)
        self._pub_info = self.create_publisher(CameraInfo, "camera_info", INPUT_PUBLISHER_QOS)
        self._pub_pose = self.create_publisher(PoseStamped, "camera_pose", INPUT_PUBLISHER_QOS)
        self.create_subscription(Image, "rendered", self._on_rendered, RECORDER_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, DIAGNOSTICS_QOS)
        self.create_timer(1.0 / rate_hz, self._tick)

    # ------------------------------------------------------------------ publishing
    def node_subscribed(self) -> bool:
        """True once the node's three input subscriptions are matched."""
        return min(p.get_subscription_count() for p in (self._pub_image, self._pub_info, self._pub_pose)) >= 1

    def start_streaming(self) -> None:
        """Intrinsics first (on its own topic the first image could overtake it), then frames on the timer."""
        height, width = self._frames.shape[1:3]
        self._pub_info.publish(messages.camera_info_msg(self._K, width, height,
                                                        messages.header(time.time(), self._world_frame)))
        time.sleep(0.2)
        self._streaming = True

    def stop_streaming(self) -> None:
        self._streaming = False

    def _tick(self) -> None:
        if not self._streaming:
            return
        index = ping_pong_index(self.published, self._frames.shape[0])
        hdr = messages.header(time.time(), self._world_frame)
        height, width = self._frames.shape[1:3]
        self._pub_pose.publish(messages.pose_msg(self._poses[index], hdr))
        self._pub_info.publish(messages.camera_info_msg(self._K, width, height, hdr))
        self._pub_image.publish(messages.image_msg(self._frames[index], hdr))
        self.published += 1

    # ------------------------------------------------------------------ listening
    def _on_rendered(self, msg: Image) -> None:
        now = time.time()
        arrival = WindowArrival(now, now - messages.stamp_seconds(msg.header.stamp))
        with self._lock:
            self._arrivals.append(arrival)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg)
        if values:
            with self._lock:
                self._diagnostics = values
                self._diagnostics_at = time.time()

    def take_arrivals(self) -> list[WindowArrival]:
        """Window arrivals since the last call (the driver keeps none: a soak may run for hours)."""
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        return arrivals

    def diagnostics(self) -> tuple[dict[str, Any], float]:
        """(latest diagnostics values as sent, as strings; wall time they came, 0 if never)."""
        with self._lock:
            return dict(self._diagnostics), self._diagnostics_at
