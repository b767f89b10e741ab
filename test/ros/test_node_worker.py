"""The node's worker in-process (real rclpy, real DDS to a listener node): a window that fails is
logged and counted, the next window is still published (stamped with its newest image's exact
stamp), and destroy_node() joins the worker."""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def test_a_failed_window_is_counted_and_the_next_one_published(
    tiny_checkpoint: Path, scene_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import Header

    from dgslrm_ros.ros import messages
    from dgslrm_ros.ros.node import DgslrmNode
    from dgslrm_ros.ros.qos import RECORDER_QOS
    from dgslrm_ros.stream.reconstruction import ReconstructionError

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=random.randint(100, 200))
    overrides = {"checkpoint": str(tiny_checkpoint), "device": "cpu", "renderer": "torch", "window_frames": 8,
                 "window_stride": 4, "image_width": 32, "image_height": 32, "track_grid": 8}
    node = DgslrmNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    listener = rclpy.create_node("listener", context=context)
    try:
        real = node._reconstructor.reconstruct
        calls: list[float] = []

        def flaky(window):  # noqa: ANN001, ANN202 - the first window fails, as a bad one would
            calls.append(window.stamp)
            if len(calls) == 1:
                raise ReconstructionError("injected failure")
            return real(window)

        node._reconstructor.reconstruct = flaky
        received: list[PointCloud2] = []
        listener.create_subscription(PointCloud2, "gaussians", received.append, RECORDER_QOS)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(listener)

        scene = np.load(scene_file)
        K, height, width = scene["K"], scene["frames"].shape[1], scene["frames"].shape[2]
        # Camera-driver stamps at epoch magnitude with arbitrary nanoseconds: a float64 cannot hold
        # them, and the outputs must still carry the newest image's stamp to the nanosecond.
        stamps_ns = [1_700_000_000_123_456_789 + round(float(scene["timestamps"][i]) * 1e9) + 7 * i
                     for i in range(12)]
        for i in range(12):  # windows end at frames 7 and 11
            sec, nanosec = divmod(stamps_ns[i], 1_000_000_000)
            header = Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id="world")
            node._on_camera_info(messages.camera_info_msg(K, width, height, header))
            node._on_pose(messages.pose_msg(scene["world_T_cam"][i], header))
            node._on_image(messages.image_msg(scene["frames"][i], header))
        deadline = time.monotonic() + 60
        # the worker counts a window once all four outputs are out, just after `gaussians` arrives here
        while (len(received) < 1 or node.status()["windows_published"] < 1) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)

        assert len(calls) == 2 and len(received) == 1
        out = received[0].header.stamp
        assert out.sec * 1_000_000_000 + out.nanosec == stamps_ns[11]
        status = node.status()
        assert status["windows_failed"] == 1 and status["windows_published"] == 1
        assert "injected failure" in status["last_error"]
    finally:
        node.destroy_node()  # joins the worker
        listener.destroy_node()
        rclpy.shutdown(context=context)
    assert not any(t.name == "dgslrm-worker" and t.is_alive() for t in threading.enumerate())
