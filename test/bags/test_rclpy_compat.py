"""Bag messages are what real ROS 2 reads: rosbags' CDR (Jazzy definitions) parsed by rclpy's own
deserializer, then converted from the rclpy objects by the same convert/ functions."""
import numpy as np
import pytest

serialization = pytest.importorskip("rclpy.serialization")
sensor_msgs = pytest.importorskip("sensor_msgs.msg")
geometry_msgs = pytest.importorskip("geometry_msgs.msg")
visualization_msgs = pytest.importorskip("visualization_msgs.msg")

from dgslrm_ros.bags import messages  # noqa: E402
from dgslrm_ros.convert.camera_info import camera_info_to_intrinsics  # noqa: E402
from dgslrm_ros.convert.image import image_to_rgb  # noqa: E402
from dgslrm_ros.convert.pointcloud import pack_trajectories, unpack_trajectories  # noqa: E402
from dgslrm_ros.convert.pose import pose_to_matrix  # noqa: E402
from dgslrm_ros.convert.tracks import tracks_to_strips  # noqa: E402


def _to_rclpy(msg, cls):
    ts = messages.default_typestore()
    return serialization.deserialize_message(bytes(ts.serialize_cdr(msg, msg.__msgtype__)), cls)


def test_rosbags_cdr_is_read_by_rclpy():
    ts = messages.default_typestore()
    stamp = 1_700_000_000_123_456_789
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = _to_rclpy(messages.image_msg(ts, stamp, rgb, encoding="bgra8"), sensor_msgs.Image)
    assert (image.header.stamp.sec, image.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    np.testing.assert_array_equal(image_to_rgb(image), rgb)  # rclpy's array.array data

    K = np.array([[40.0, 0, 3.5], [0, 41, 2.5], [0, 0, 1]])
    info = _to_rclpy(messages.camera_info_msg(ts, stamp, K, 7, 5), sensor_msgs.CameraInfo)
    np.testing.assert_array_equal(camera_info_to_intrinsics(info).K, K)

    T = np.eye(4)
    T[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    T[:3, 3] = [1, 2, 3]
    pose = _to_rclpy(messages.pose_stamped_msg(ts, stamp, T), geometry_msgs.PoseStamped)
    np.testing.assert_allclose(pose_to_matrix(pose.pose), T, atol=1e-12)

    tracks = np.random.default_rng(1).normal(size=(3, 4, 3)).astype(np.float32)
    tracks[0, 1] = np.nan
    cloud = pack_trajectories(tracks, [-0.3, -0.2, -0.1, 0.0], [4, 5, 6], np.ones((3, 4)))
    out = unpack_trajectories(_to_rclpy(messages.pointcloud_msg(ts, stamp, cloud), sensor_msgs.PointCloud2))
    np.testing.assert_array_equal(out.tracks, tracks)
    np.testing.assert_array_equal(out.track_ids, [4, 5, 6])

    strips = tracks_to_strips(np.nan_to_num(tracks), np.arange(4) * 0.1, [4, 5, 6])
    markers = _to_rclpy(messages.marker_array_msg(ts, stamp, strips), visualization_msgs.MarkerArray)
    assert [m.type for m in markers.markers] == [0, 4, 4, 4] and markers.markers[0].action == 3
