import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from dgslrm_ros.bags.messages import DiagnosticEntry, default_typestore
from dgslrm_ros.bags.writer import BagWriteError, BagWriter
from dgslrm_ros.convert.pointcloud import pack_gaussians, unpack_gaussians
from dgslrm_ros.convert.tracks import tracks_to_strips


def _read_all(path):
    ts = default_typestore()
    with Reader(path) as reader:
        return [(c.topic, c.msgtype, t, ts.deserialize_cdr(raw, c.msgtype)) for c, t, raw in reader.messages()]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_output_topics_round_trip(tmp_path, storage):
    rng = np.random.default_rng(0)
    n = 30
    q = rng.normal(size=(n, 4)).astype(np.float32)
    gaussians = dict(
        means=rng.normal(size=(n, 3)).astype(np.float32), colors=np.full((n, 3), 0.2, np.float32),
        opacities=rng.random(n).astype(np.float32), scales=rng.random((n, 3)).astype(np.float32),
        quats=q / np.linalg.norm(q, axis=1, keepdims=True), velocities=rng.normal(size=(n, 3)).astype(np.float32),
    )
    tracks = np.cumsum(rng.normal(size=(3, 4, 3)), axis=1).astype(np.float32)
    strips = tracks_to_strips(tracks, np.arange(4) * 0.1, np.array([5, 6, 7]))
    stamp = 1_700_000_000_500_000_000
    with BagWriter(tmp_path / "out", storage=storage) as bag:
        bag.write_pointcloud("gaussians", stamp, pack_gaussians(**gaussians))
        bag.write_markers("tracks_markers", stamp, strips)
        bag.write_image("rendered", stamp, np.full((4, 4, 3), 9, np.uint8))
        bag.write_diagnostics("/diagnostics", stamp, [
            DiagnosticEntry("dgslrm: buffer", "ok", 0, "cpu", {"fill": "3/8", "dropped_frames": "0"}),
            DiagnosticEntry("dgslrm: reconstruction", "slow", 1),
        ])
    assert bag.counts == {"/gaussians": 1, "/tracks_markers": 1, "/rendered": 1, "/diagnostics": 1}
    msgs = {topic: (msgtype, t, msg) for topic, msgtype, t, msg in _read_all(tmp_path / "out")}
    assert {k: v[0] for k, v in msgs.items()} == {
        "/gaussians": "sensor_msgs/msg/PointCloud2", "/tracks_markers": "visualization_msgs/msg/MarkerArray",
        "/rendered": "sensor_msgs/msg/Image", "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    }
    assert all(t == stamp for _, t, _ in msgs.values())

    cloud_msg = msgs["/gaussians"][2]
    assert cloud_msg.header.frame_id == "world" and cloud_msg.header.stamp.sec == 1_700_000_000
    out = unpack_gaussians(cloud_msg)
    np.testing.assert_array_equal(out.means, gaussians["means"])
    np.testing.assert_array_equal(out.velocities, gaussians["velocities"])

    markers = msgs["/tracks_markers"][2].markers
    assert markers[0].action == 3  # DELETEALL clears tracks of the previous window
    assert [(m.id, m.type, m.action) for m in markers[1:]] == [(5, 4, 0), (6, 4, 0), (7, 4, 0)]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in markers[1].points], tracks[0], rtol=1e-6)
    assert len(markers[1].colors) == 4 and markers[1].scale.x > 0 and markers[1].pose.orientation.w == 1

    diag = msgs["/diagnostics"][2].status
    assert [(s.name, s.level, s.hardware_id) for s in diag] == [("dgslrm: buffer", 0, "cpu"), ("dgslrm: reconstruction", 1, "")]
    assert {kv.key: kv.value for kv in diag[0].values} == {"fill": "3/8", "dropped_frames": "0"}


def test_raw_cdr_passthrough(tmp_path):
    ts = default_typestore()
    with BagWriter(tmp_path / "a") as bag:
        bag.write_image("image", 42, np.zeros((2, 3, 3), np.uint8))
    (_, msgtype, _, msg), = _read_all(tmp_path / "a")
    raw = ts.serialize_cdr(msg, msgtype)
    with BagWriter(tmp_path / "b") as bag:
        bag.write_raw("/image", msgtype, raw, 42)
    with Reader(tmp_path / "b") as reader:
        (_, t, data), = list(reader.messages())
    assert t == 42 and bytes(data) == bytes(raw)


def test_writer_refuses_misuse(tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagWriteError, match="exists already"):
        BagWriter(tmp_path / "exists")
    with pytest.raises(BagWriteError, match="storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
    writer = BagWriter(tmp_path / "y")
    with pytest.raises(BagWriteError, match="not open"):
        writer.write_pose("pose", 1, np.eye(4))
    with BagWriter(tmp_path / "z") as bag:
        bag.write_pose("pose", 1, np.eye(4))
        with pytest.raises(BagWriteError, match="already carries"):
            bag.write_image("/pose", 2, np.zeros((1, 1, 3), np.uint8))


def test_read_messages_returns_output_topics(tmp_path):
    from dgslrm_ros.bags.reader import BagReadError, read_messages
    from dgslrm_ros.convert.pointcloud import pack_trajectories, unpack_trajectories

    with BagWriter(tmp_path / "out") as bag:
        for n in range(3):
            cloud = pack_trajectories(np.full((2, n + 1, 3), n, np.float32), -np.arange(n + 1)[::-1] / 10.0,
                                      [1, 2], np.ones((2, n + 1)))
            bag.write_pointcloud("trajectories", 1_000 + n, cloud)
            bag.write_image("rendered", 1_000 + n, np.zeros((2, 2, 3), np.uint8))
    got = list(read_messages(tmp_path / "out", ["/trajectories"]))
    assert [(topic, t) for topic, t, _ in got] == [("trajectories", 1_000), ("trajectories", 1_001), ("trajectories", 1_002)]
    assert unpack_trajectories(got[-1][2]).tracks.shape == (2, 3, 3)
    assert len(list(read_messages(tmp_path / "out"))) == 6
    with pytest.raises(BagReadError, match="none of the topics.*it has"):
        list(read_messages(tmp_path / "out", ["gaussians"]))
