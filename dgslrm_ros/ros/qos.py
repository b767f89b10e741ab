"""The QoS of every topic of dgslrm_node, chosen on purpose and kept in one place.

- `image`: sensor data (best effort, keep last 5): a late frame is worth less than the next one, and a
  best-effort reader matches both reliable and best-effort camera drivers.
- `camera_info`, `camera_pose`: best effort, volatile, keep last 50, so the reader matches every
  publisher: a reliable reader never connects to a best-effort writer (camera drivers that publish
  camera_info with the sensor-data profile, mocap pose streams), and a transient-local reader never
  connects to a volatile one. Nothing is lost by it that matters: drivers re-send camera_info with
  every frame and poses are interpolated. Depth 50 absorbs a pose stream several times faster than
  the camera while the executor is busy.
- outputs (`gaussians`, `trajectories`, `tracks_markers`, `rendered`): reliable, transient local, keep
  last 2: each is the latest state of the scene, so RViz or a planner that joins late still gets it,
  and volatile readers (RViz's default) match a transient-local writer.
- `/diagnostics`: reliable, volatile, keep last 10 (what diagnostic_aggregator expects).
"""
from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

IMAGE_QOS: QoSProfile = qos_profile_sensor_data
CALIBRATION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
)
OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=2,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
DIAGNOSTICS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
# Readers of the outputs (recorder, tests): reliable + transient local, deep enough to keep every window.
RECORDER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# What the demo / test publisher uses for the inputs: reliable so nothing is lost on loopback.
INPUT_PUBLISHER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
