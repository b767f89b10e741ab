"""ros/messages.py: rclpy message objects built from convert/ data and read back."""
from __future__ import annotations

import numpy as np
import pytest

from dgslrm_ros.convert.pointcloud import TRAJECTORY_DTYPE, gaussians_to_array
from dgslrm_ros.convert.tracks import tracks_to_strips
from dgslrm_ros.ros import messages


def test_clouds_round_trip_with_contract_fields() -> None:
    rng = np.random.default_rng(0)
    n = 5
    quats = rng.normal(size=(n, 4))
    points = gaussians_to_array(rng.normal(size=(n, 3)), rng.random((n, 3)), rng.random(n), rng.random((n, 3)) + 0.1,
                                quats / np.linalg.norm(quats, axis=1, keepdims=True), rng.normal(size=(n, 3)))
    msg = messages.structured_to_cloud(points, messages.header(12.5, "world"))
    assert (msg.height, msg.width, msg.point_step) == (1, n, 60) and msg.is_dense
    assert msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 500_000_000
    np.testing.assert_array_equal(messages.cloud_to_array(msg)[0], points)

    tracks = np.zeros((3, 4), dtype=TRAJECTORY_DTYPE)
    tracks["x"][1, 2] = np.nan
    organised = messages.structured_to_cloud(tracks, messages.header(1.0, "world"))
    assert (organised.height, organised.width, organised.row_step) == (3, 4, 96) and not organised.is_dense


def test_marker_array_deletes_first_and_keeps_track_ids() -> None:
    tracks = np.cumsum(np.ones((2, 4, 3), np.float32), axis=1)
    strips = tracks_to_strips(tracks, np.arange(4) * 0.1, np.array([7, 2**32 - 1]), np.ones((2, 4)))
    msg = messages.marker_array(strips, messages.header(3.0, "world"))
    assert msg.markers[0].action == msg.markers[0].DELETEALL
    assert [m.id for m in msg.markers[1:]] == [7, 2**31 - 1]  # int32 marker ids
    assert all(len(m.points) == 4 == len(m.colors) and m.header.frame_id == "world" for m in msg.markers[1:])


def test_image_round_trip_and_rgb8() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = messages.rgb_to_image(rgb, messages.header(0.0, "world"))
    assert (msg.encoding, msg.step) == ("rgb8", 9)
    np.testing.assert_array_equal(messages.image_to_rgb(msg), rgb)
    bgr = messages.image_msg(rgb, messages.header(0.0, "cam"), "bgr8")
    np.testing.assert_array_equal(messages.image_to_rgb(bgr), rgb)


def test_pose_round_trip() -> None:
    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [1, 2, 3]
    msg = messages.pose_msg(T, messages.header(0.0, "world"))
    np.testing.assert_allclose(messages.pose_to_matrix(msg.pose), T, atol=1e-12)


@pytest.mark.parametrize(
    ("values", "failed", "level", "text"),
    [
        ({"weights": "checkpoint x", "dropped_frames_total": 0}, False, 0, "ok"),
        ({"weights": "untrained"}, False, 1, "weights untrained"),
        ({"weights": "checkpoint x", "dropped_frames_total": 3, "rejected_bad_pose": 1}, False, 1,
         "3 frames dropped, 1 messages rejected"),
        ({"weights": "checkpoint x", "last_error": "boom"}, True, 2, "boom"),
    ],
)
def test_diagnostics_level_and_message(values: dict, failed: bool, level: int, text: str) -> None:
    msg = messages.diagnostics(values, messages.header(0.0, "").stamp, "dgslrm: pipeline", "cpu", failed)
    status = msg.status[0]
    assert status.level == bytes([level]) or status.level == level
    assert text in status.message
    assert {kv.key for kv in status.values} == set(values)
