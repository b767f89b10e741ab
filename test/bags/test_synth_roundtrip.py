"""issue 3 item 5: a synthetic scene survives bag writing and reading, field by field."""
import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import Reader

from dgslrm_ros.bags.reader import (
    BagReader,
    CameraInfoRecord,
    ImageRecord,
    PoseRecord,
    TrajectoriesRecord,
    load_sequence,
)
from dgslrm_ros.bags.synth import DEFAULT_START_NS, write_sequence_bag
from dgslrm_ros.convert.image import frames_to_rgb8

EXPECTED_TOPICS = {
    "/image": "sensor_msgs/msg/Image",
    "/camera_info": "sensor_msgs/msg/CameraInfo",
    "/camera_pose": "geometry_msgs/msg/PoseStamped",
    "/gt/trajectories": "sensor_msgs/msg/PointCloud2",
    **{f"/gt/views/{k}/image": "sensor_msgs/msg/Image" for k in (1, 2)},
    **{f"/gt/views/{k}/pose": "geometry_msgs/msg/PoseStamped" for k in (1, 2)},
    **{f"/gt/views/{k}/camera_info": "sensor_msgs/msg/CameraInfo" for k in (1, 2)},
}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_field_survives(tmp_path, sequence, storage):
    path = write_sequence_bag(sequence, tmp_path / "bag", storage=storage)
    V, T = 3, 5
    stamps = DEFAULT_START_NS + np.arange(T) * 100_000_000  # exact 100 ms despite float32 timestamps

    # topics, types, counts and QoS as the contract says, straight from rosbags
    with Reader(path) as raw:
        assert {c.topic: c.msgtype for c in raw.connections} == EXPECTED_TOPICS
        assert all(c.msgcount == T for c in raw.connections)
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8 and meta["storage_identifier"] == storage and meta["message_count"] == T * len(EXPECTED_TOPICS)
    qos = yaml.safe_load(meta["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"])
    assert qos[0]["reliability"] == 1 and qos[0]["durability"] == 2  # reliable, volatile

    records = list(BagReader(path))
    assert len(records) == T * len(EXPECTED_TOPICS)
    assert [r.log_time_ns for r in records] == sorted(r.log_time_ns for r in records)
    assert all(r.stamp_ns == r.log_time_ns for r in records)

    rgb = frames_to_rgb8(sequence.frames)
    images = [r for r in records if isinstance(r, ImageRecord)]
    assert len(images) == V * T
    for r in images:
        n = int(np.flatnonzero(stamps == r.stamp_ns)[0])
        np.testing.assert_array_equal(r.rgb, rgb[r.view, n])  # bit-exact
        assert r.frame_id == ("camera_optical" if r.view == 0 else f"gt_view_{r.view}_optical")
    for r in (r for r in records if isinstance(r, PoseRecord)):
        n = int(np.flatnonzero(stamps == r.stamp_ns)[0])
        np.testing.assert_allclose(r.world_T_cam, sequence.world_T_cam[r.view, n], atol=1e-12)
        assert r.frame_id == "world"
    for r in (r for r in records if isinstance(r, CameraInfoRecord)):
        K_opencv = np.asarray(sequence.K[r.view], dtype=np.float64).copy()
        K_opencv[:2, 2] -= 0.5  # CameraInfo is OpenCV: pixel centres at integers, ours at +0.5
        np.testing.assert_allclose(r.intrinsics.K, K_opencv, atol=1e-12)
        assert (r.intrinsics.width, r.intrinsics.height) == (8, 6)

    trajs = [r for r in records if isinstance(r, TrajectoriesRecord)]
    assert [r.stamp_ns for r in trajs] == stamps.tolist()
    for n, r in enumerate(trajs):
        cloud = r.trajectories
        assert cloud.tracks.shape == (4, n + 1, 3) and r.frame_id == "world"
        np.testing.assert_array_equal(cloud.tracks, sequence.track_points[:, : n + 1])  # NaN included
        np.testing.assert_array_equal(cloud.track_ids, np.arange(4))
        np.testing.assert_array_equal(cloud.visible, sequence.track_visible[:, : n + 1].astype(np.float32))
        np.testing.assert_allclose(cloud.t[0], (stamps[: n + 1] - stamps[n]) / 1e9, atol=1e-7)
        assert cloud.t.max() <= 0 and cloud.t[0, -1] == 0
    assert np.isnan(trajs[-1].trajectories.tracks[1, 2]).all()


def test_load_sequence_gathers_arrays(tmp_path, sequence):
    path = write_sequence_bag(sequence, tmp_path / "bag")
    loaded = load_sequence(path)
    np.testing.assert_array_equal(loaded.rgb, frames_to_rgb8(sequence.frames))
    np.testing.assert_allclose(loaded.world_T_cam, sequence.world_T_cam, atol=1e-12)
    np.testing.assert_allclose(loaded.K, sequence.K, atol=1e-12)
    assert loaded.stamps_ns.tolist() == (DEFAULT_START_NS + np.arange(5) * 100_000_000).tolist()
    np.testing.assert_array_equal(loaded.trajectories.tracks, sequence.track_points)
    assert loaded.trajectories_stamp_ns == loaded.stamps_ns[-1]


def test_ground_truth_can_be_left_out(tmp_path, sequence):
    path = write_sequence_bag(sequence, tmp_path / "bag")
    names = {r.topic for r in BagReader(path, ground_truth=False)}
    assert names == {"image", "camera_info", "camera_pose"}


def test_refuses_inconsistent_sequences(tmp_path, sequence):
    sequence.K = sequence.K[:2]
    with pytest.raises(ValueError, match="K"):
        write_sequence_bag(sequence, tmp_path / "bag")
