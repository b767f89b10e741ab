"""dgslrm_node end to end over Fast DDS, three processes: the demo publisher streams a 16-frame synthetic
scene (32 px, 10 fps) with bad inputs first, the node reconstructs with a tiny model, the recorder writes
every message it receives (inputs too) to an mcap bag, which the assertions read back with rosbags.

Bad inputs sent: 2 images before any camera_info, a `bgr16` image, a NaN pose, and after frame 3 an
image stamped 5 s before frame 0 (a jump back of at least IMAGE_RESET_S: the buffer resets, counted as
stamp_backwards), so exactly two windows follow: frames 4-11 and 8-15.
"""
from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.ros

GAUSSIAN_FIELDS = ["x", "y", "z", "rgb", "opacity", "scale_x", "scale_y", "scale_z",
                   "rot_w", "rot_x", "rot_y", "rot_z", "vx", "vy", "vz"]
FLOAT32, UINT32 = 7, 6
OUTPUTS = ("gaussians", "trajectories", "tracks_markers", "rendered")
WINDOW = 8


@pytest.fixture(scope="module")
def run(dds_module: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path,
        scene_file: Path) -> SimpleNamespace:
    """One recorded session shared by the tests below (starting the node costs seconds)."""
    dds = dds_module
    bag = tmp_path_factory.mktemp("dds") / "bag"
    node = dds.spawn(dds.node_args({"checkpoint": str(tiny_checkpoint), **dds.tiny_params}), "node")
    recorder = dds.spawn([dds.python, "-m", "dgslrm_ros.ros.recorder", str(bag), "--inputs"], "recorder")
    recorder.wait_for(lambda: recorder.count("READY") > 0, 30, "recorder ready")
    node.wait_for(lambda: "ready:" in node.output, 60, "node ready")
    publisher = dds.spawn([dds.python, "-m", "dgslrm_ros.ros.demo_publisher", str(scene_file), "--bad-inputs",
                           "--subscribers", "2"],
                          "publisher")
    assert publisher.popen.wait(60) == 0, publisher.output
    recorder.wait_for(lambda: all(recorder.count(f"RECEIVED {t} 2") for t in OUTPUTS), 60, "two windows")
    seen = recorder.count("RECEIVED /diagnostics")
    recorder.wait_for(lambda: recorder.count("RECEIVED /diagnostics") >= seen + 2, 10, "diagnostics after the windows")
    node_alive = node.popen.poll() is None
    node_rc, node_stop_s = node.interrupt(signal.SIGINT, timeout=15)
    recorder_rc, _ = recorder.interrupt(signal.SIGINT, timeout=15)
    return SimpleNamespace(messages=dds.read_bag(bag), node=node, node_alive=node_alive, node_rc=node_rc,
                           node_stop_s=node_stop_s, recorder_rc=recorder_rc, stamp_ns=dds.stamp_ns, bag=bag,
                           read_bag=dds.read_bag, params={"checkpoint": str(tiny_checkpoint), **dds.tiny_params})


def _frames_stamps(run: SimpleNamespace) -> np.ndarray:
    """Stamps of the good frames the publisher sent (those that come with a camera_info)."""
    return np.array(sorted({run.stamp_ns(m) for _, m in run.messages["/camera_info"]}))


def test_node_survives_bad_inputs_and_publishes_after_them(run: SimpleNamespace) -> None:
    assert run.node_alive, run.node.output
    assert "Traceback" not in run.node.output, run.node.output
    frames = _frames_stamps(run)
    assert len(frames) == 16
    # exactly the two windows after the stamp reset, each stamped with its newest frame
    stamps = [run.stamp_ns(m) for _, m in run.messages["/gaussians"]]
    assert stamps == [frames[11], frames[15]]


def test_every_output_is_in_world_and_stamped_with_the_newest_frame(run: SimpleNamespace) -> None:
    stamps = [run.stamp_ns(m) for _, m in run.messages["/gaussians"]]
    for topic in OUTPUTS:
        received = run.messages[f"/{topic}"]
        assert len(received) == 2, topic
        for (_, msg), stamp in zip(received, stamps):
            headers = [mk.header for mk in msg.markers] if topic == "tracks_markers" else [msg.header]
            for header in headers:
                assert header.frame_id == "world", topic
                assert header.stamp.sec * 1_000_000_000 + header.stamp.nanosec == stamp, topic


def test_gaussians_cloud_has_the_contract_layout(run: SimpleNamespace) -> None:
    for _, msg in run.messages["/gaussians"]:
        assert [f.name for f in msg.fields] == GAUSSIAN_FIELDS
        assert [f.datatype for f in msg.fields] == [FLOAT32] * 15
        assert [f.offset for f in msg.fields] == list(range(0, 60, 4))
        assert all(f.count == 1 for f in msg.fields)
        assert (msg.height, msg.point_step, msg.row_step) == (1, 60, 60 * msg.width) and msg.width > 0
        assert not msg.is_bigendian and len(msg.data) == msg.row_step
        cloud = np.frombuffer(bytes(msg.data), dtype="<f4").reshape(msg.width, 15)
        assert np.isfinite(cloud).all()
        quats = cloud[:, 8:12]
        np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-3)
        assert (cloud[:, 5:8] > 0).all() and ((cloud[:, 4] >= 0) & (cloud[:, 4] <= 1)).all()


def test_trajectories_are_organised_with_stable_track_ids(run: SimpleNamespace) -> None:
    ids_per_window = []
    for _, msg in run.messages["/trajectories"]:
        layout = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
        assert layout == [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("t", 12, FLOAT32, 1),
                          ("track_id", 16, UINT32, 1), ("visible", 20, FLOAT32, 1)]
        assert msg.width == WINDOW and msg.height > 0  # one row per track, one column per frame
        assert (msg.point_step, msg.row_step) == (24, 24 * WINDOW)
        points = np.frombuffer(bytes(msg.data), dtype=np.dtype(
            [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<f4"), ("track_id", "<u4"), ("visible", "<f4")]
        )).reshape(msg.height, msg.width)
        np.testing.assert_allclose(points["t"][0], np.arange(-(WINDOW - 1), 1) * 0.1, atol=2e-3)  # oldest first
        assert (points["track_id"] == points["track_id"][:, :1]).all()  # one id per row
        ids = points["track_id"][:, 0]
        assert len(set(ids.tolist())) == len(ids)
        assert ((points["visible"] >= 0) & (points["visible"] <= 1)).all()
        ids_per_window.append(set(ids.tolist()))
    # the windows overlap by 4 frames: tracks of the same surface points keep their ids
    assert ids_per_window[0] & ids_per_window[1]


def test_markers_are_one_line_strip_per_track_after_deleteall(run: SimpleNamespace) -> None:
    for (_, markers), (_, trajectories) in zip(run.messages["/tracks_markers"], run.messages["/trajectories"]):
        assert markers.markers[0].action == 3  # DELETEALL, so ended tracks vanish
        strips = markers.markers[1:]
        assert strips and all(m.type == 4 and m.action == 0 for m in strips)  # LINE_STRIP, ADD
        assert len({m.id for m in strips}) == len(strips) <= trajectories.height
        assert all(len(m.points) >= 2 and len(m.colors) == len(m.points) for m in strips)


def test_rendered_is_rgb8_at_model_size(run: SimpleNamespace) -> None:
    for _, msg in run.messages["/rendered"]:
        assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 32, 32, 96)
        assert len(msg.data) == 32 * 96


def test_diagnostics_report_drops_by_reason(run: SimpleNamespace) -> None:
    received = run.messages["/diagnostics"]
    assert len(received) >= 3  # ~1 Hz
    status = received[-1][1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "dgslrm: pipeline" and status.hardware_id == "cpu"
    # >= 2: frame 0's image may also overtake its camera_info (separate topics, separate QoS)
    assert int(values["dropped_no_camera_info"]) >= 2
    assert int(values["dropped_stamp_backwards"]) == 1
    assert int(values["rejected_unsupported_encoding"]) == 1
    assert int(values["rejected_bad_pose"]) == 1
    assert int(values["windows_published"]) == 2 and int(values["windows_failed"]) == 0
    for key in ("buffer_fill", "last_reconstruction_s", "last_psnr_db", "device", "weights"):
        assert key in values, key
    assert float(values["last_reconstruction_s"]) > 0 and np.isfinite(float(values["last_psnr_db"]))
    assert status.level == 1  # WARN: inputs were dropped
    # the window the node runs, as resolved against the checkpoint (parameters left at -1 would show it too)
    assert [values[k] for k in ("window_frames", "window_stride", "keyframe_stride", "image_width", "image_height")] \
        == ["8", "4", "4", "32", "32"]


def test_replay_of_the_same_inputs_gives_the_same_level(run: SimpleNamespace, tmp_path: Path) -> None:
    """`dgslrm replay` of the inputs the node received (recorded beside its outputs) judges the stream by
    the node's rule (stream/health.py): the same drops, the same level."""
    from dgslrm_ros.cli.replay import replay_bag
    from dgslrm_ros.stream.config import PipelineConfig

    node_status = run.messages["/diagnostics"][-1][1].status[0]
    replay_bag(run.bag, tmp_path / "replay", PipelineConfig(**run.params), progress=False)
    replayed = [m.status[0] for _, m in run.read_bag(tmp_path / "replay" / "output_bag")["/diagnostics"]]
    assert len(replayed) == 2 and all(s.name == node_status.name for s in replayed)
    assert replayed[-1].level == node_status.level == 1, (replayed[-1].message, node_status.message)
    # e.g. both "8 of 20 frames dropped in the last 10 s" (the count of images overtaking camera_info may differ)
    assert all("frames dropped in the last 10 s" in s.message for s in (replayed[-1], node_status))


def test_sigint_stops_the_node_cleanly_within_seconds(run: SimpleNamespace) -> None:
    assert run.node_rc == 0, run.node.output
    assert run.node_stop_s < 5.0
    assert run.recorder_rc == 0
