"""Fixtures: `rosbags` message classes, so conversions are tested on real message objects without rclpy."""
from __future__ import annotations

import pytest
from rosbags.typesys import Stores, get_typestore


@pytest.fixture(scope="session")
def typestore():
    return get_typestore(Stores.ROS2_JAZZY)


@pytest.fixture(scope="session")
def msgs(typestore):
    """Namespace-like access: msgs["sensor_msgs/msg/Image"](...)."""
    return typestore.types


@pytest.fixture(scope="session")
def header(msgs):
    def make(sec: int = 12, nanosec: int = 345, frame_id: str = "camera_optical"):
        Time = msgs["builtin_interfaces/msg/Time"]
        return msgs["std_msgs/msg/Header"](stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    return make
