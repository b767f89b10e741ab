"""ros/messages.py: rclpy message objects built from convert/ data and read back."""
from __future__ import annotations

import numpy as np
import pytest

from dgslrm_ros.convert.pointcloud import gaussians_to_array, pack_gaussians, pack_trajectories, pointcloud_to_array
from dgslrm_ros.convert.tracks import tracks_to_strips
from dgslrm_ros.ros import messages


def test_clouds_round_trip_with_contract_fields() -> None:
    rng = np.random.default_rng(0)
    n = 5
    quats = rng.normal(size=(n, 4))
    values = (rng.normal(size=(n, 3)), rng.random((n, 3)), rng.random(n), rng.random((n, 3)) + 0.1,
              quats / np.linalg.norm(quats, axis=1, keepdims=True), rng.normal(size=(n, 3)))
    points = gaussians_to_array(*values)
    msg = messages.cloud_msg(pack_gaussians(*values), messages.header(12.5, "world"))
    assert (msg.height, msg.width, msg.point_step) == (1, n, 60) and msg.is_dense
    assert msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 500_000_000
    np.testing.assert_array_equal(pointcloud_to_array(msg)[0], points)

    tracks = np.zeros((3, 4, 3))
    tracks[1, 2, 0] = np.nan
    organised = messages.cloud_msg(pack_trajectories(tracks, np.zeros(4), np.arange(3), np.ones((3, 4))),
                                   messages.header(1.0, "world"))
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
    msg = messages.image_msg(rgb, messages.header(0.0, "world"))  # `rendered`: rgb8
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


def test_diagnostics_carry_every_value_and_the_given_level() -> None:
    values = {"weights": "checkpoint x", "dropped_frames_total": 3, "latency_last_s": 0.25}
    msg = messages.diagnostics(values, messages.header(0.0, "").stamp, "dgslrm: pipeline", "cpu", 1, "3 frames dropped")
    status = msg.status[0]
    assert status.level in (1, b"\x01") and status.message == "3 frames dropped"
    assert {kv.key: kv.value for kv in status.values} == {"weights": "checkpoint x", "dropped_frames_total": "3",
                                                         "latency_last_s": "0.25"}


def test_path_odometry_transform_and_compressed_messages_round_trip() -> None:
    from dgslrm_ros.convert.compressed import compressed_to_rgb
    from dgslrm_ros.convert.pose import odometry_to_matrix, transform_to_matrix

    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [1, 2, 3]
    hdr = messages.header(5.0, "world")
    np.testing.assert_allclose(odometry_to_matrix(messages.odometry_msg(T, hdr)), T, atol=1e-12)
    np.testing.assert_allclose(transform_to_matrix(messages.transform_msg(T, hdr)), T, atol=1e-12)
    path = messages.path_msg(np.stack([T, T]), np.array([4.9, 5.0]), hdr)
    assert [messages.stamp_seconds(p.header.stamp) for p in path.poses] == pytest.approx([4.9, 5.0])
    assert path.header.frame_id == "world" and path.poses[1].header.frame_id == "world"
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    msg = messages.compressed_image_msg(rgb, hdr, "png")
    assert msg.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
