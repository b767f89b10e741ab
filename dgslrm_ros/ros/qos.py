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

The input profiles above are `input_qos: sensor_data` (the default). `system_default` takes the RMW's
default reliability and durability (reliable and volatile on Fast DDS and Cyclone) and `reliable`
asks for reliable, volatile delivery: for a pipeline that must not lose a frame on a good link, at the
price of matching reliable publishers only (an incompatibility is logged with both profiles). Both
keep the depths above: the RMW's default history (keep last 1 on Fast DDS) would lose a pose or an
image whenever the executor is a moment late.
"""
from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
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


def input_profiles(input_qos: str) -> tuple[QoSProfile, QoSProfile]:
    """`input_qos` parameter -> (image profile, camera_info + camera_pose profile)."""
    if input_qos == "sensor_data":
        return IMAGE_QOS, CALIBRATION_QOS
    if input_qos == "system_default":
        rmw = dict(history=HistoryPolicy.KEEP_LAST, reliability=qos_profile_system_default.reliability,
                   durability=qos_profile_system_default.durability)
        return QoSProfile(depth=IMAGE_QOS.depth, **rmw), QoSProfile(depth=CALIBRATION_QOS.depth, **rmw)
    if input_qos == "reliable":
        reliable = dict(history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
        return QoSProfile(depth=IMAGE_QOS.depth, **reliable), QoSProfile(depth=CALIBRATION_QOS.depth, **reliable)
    raise ValueError(f"parameter 'input_qos': expected sensor_data, system_default or reliable, got {input_qos!r}")


def describe(profile: object) -> str:
    """A QoS profile (ours or a discovered publisher's) in one short line for logs."""
    def name(policy: object) -> str:
        return getattr(policy, "name", str(policy)).lower()

    parts = [f"reliability={name(getattr(profile, 'reliability', '?'))}",
             f"durability={name(getattr(profile, 'durability', '?'))}",
             f"history={name(getattr(profile, 'history', '?'))}/{getattr(profile, 'depth', '?')}"]
    return ", ".join(parts)
