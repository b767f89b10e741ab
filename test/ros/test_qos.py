"""Every input subscription connects to every common publisher profile, and every output reaches
RViz's and a planner's default readers (a QoS mismatch is silent: the topic just stays empty)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros


def test_inputs_match_reliable_and_best_effort_publishers_and_outputs_reach_default_readers() -> None:
    from rclpy.qos import (
        DurabilityPolicy,
        QoSCompatibility,
        QoSProfile,
        ReliabilityPolicy,
        qos_check_compatible,
        qos_profile_sensor_data,
    )

    from dgslrm_ros.ros.qos import CALIBRATION_QOS, IMAGE_QOS, OUTPUT_QOS

    publishers = {
        "sensor data (best effort)": qos_profile_sensor_data,
        "default (reliable, volatile)": QoSProfile(depth=10),
        "latched (reliable, transient local)": QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    }
    for topic, reader in {"image": IMAGE_QOS, "camera_info / camera_pose": CALIBRATION_QOS}.items():
        for name, writer in publishers.items():
            compatibility, reason = qos_check_compatible(writer, reader)
            assert compatibility != QoSCompatibility.ERROR, f"{topic} reader vs {name} writer: {reason}"
    readers = {
        "RViz default (reliable, volatile)": QoSProfile(depth=5),
        "best effort": QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
        "latched (reliable, transient local)": QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    }
    for name, reader in readers.items():
        compatibility, reason = qos_check_compatible(OUTPUT_QOS, reader)
        assert compatibility != QoSCompatibility.ERROR, f"outputs vs {name} reader: {reason}"


def test_input_qos_profiles_match_what_they_promise() -> None:
    """sensor_data (the default) is today's profiles and matches every publisher; reliable refuses a
    best-effort publisher (the node then logs the mismatch); system_default keeps our queue depths."""
    from rclpy.qos import QoSCompatibility, QoSProfile, ReliabilityPolicy, qos_check_compatible, qos_profile_sensor_data

    from dgslrm_ros.ros.qos import CALIBRATION_QOS, IMAGE_QOS, describe, input_profiles

    assert input_profiles("sensor_data") == (IMAGE_QOS, CALIBRATION_QOS)
    best_effort, reliable = qos_profile_sensor_data, QoSProfile(depth=10)
    for name in ("sensor_data", "system_default", "reliable"):
        for reader in input_profiles(name):
            assert qos_check_compatible(reliable, reader)[0] != QoSCompatibility.ERROR, name
            assert reader.depth in (IMAGE_QOS.depth, CALIBRATION_QOS.depth), name
    for reader in input_profiles("reliable"):
        assert reader.reliability == ReliabilityPolicy.RELIABLE
        assert qos_check_compatible(best_effort, reader)[0] == QoSCompatibility.ERROR
    assert "reliability=best_effort" in describe(best_effort) and "reliability=reliable" in describe(reliable)
    with pytest.raises(ValueError, match="input_qos"):
        input_profiles("fast")
