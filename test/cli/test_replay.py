"""`dgslrm replay` over tiny `dgslrm synth` bags: output bag, PNGs, metrics with ground truth, a
truncated bag, and the scoring functions checked against cases with a known answer."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from dgslrm_ros.bags.reader import TrajectoriesRecord, read_messages
from dgslrm_ros.cli import replay
from dgslrm_ros.convert.camera_info import CameraIntrinsics
from dgslrm_ros.convert.pointcloud import GAUSSIAN_FIELDS, TrajectoryCloud, unpack_gaussians, unpack_trajectories
from dgslrm_ros.core.cameras import camera_rays
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.model.checkpoint import save_checkpoint
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.dgslrm import DGSLRM
from dgslrm_ros.stream.config import PipelineConfig
from dgslrm_ros.stream.pipeline import StreamingReconstructor

from .conftest import TINY_ARGS

FRAMES, SIZE, VIEWS = 16, 32, 2


@pytest.fixture(scope="module")
def tiny_model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return DGSLRM(ModelConfig.preset("tiny")).eval()


@pytest.fixture(scope="module")
def bag_and_checkpoint(tmp_path_factory, dgslrm, tiny_model):
    root = tmp_path_factory.mktemp("replay")
    assert dgslrm(["synth", "--out", str(root / "synth"), "--scenes", "1", "--frames", str(FRAMES),
                   "--size", str(SIZE), "--views", str(VIEWS), "--no-progress"]) == 0
    checkpoint = save_checkpoint(root / "tiny", tiny_model)
    return root / "synth" / "scene_000000", checkpoint


def test_replay_writes_bag_pngs_and_ground_truth_metrics(dgslrm, bag_and_checkpoint, tmp_path, capsys):
    bag, checkpoint = bag_and_checkpoint
    out = tmp_path / "out"
    rc = dgslrm(["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "--method", "network", "--no-progress",
                 "--save-windows", *TINY_ARGS])
    assert rc == 0
    assert "novel views: PSNR" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    windows = (FRAMES - 8) // 4 + 1
    assert metrics["windows"] == windows and metrics["windows_failed"] == 0 and metrics["error"] is None
    assert metrics["weights"].startswith("checkpoint") and metrics["frames_admitted"] == FRAMES
    assert np.isfinite(metrics["input_psnr"]) and metrics["seconds_per_window"] > 0
    nv = metrics["novel_view"]
    assert nv["count"] == windows * (VIEWS - 1) and np.isfinite(nv["psnr"]) and 0 < nv["ssim"] <= 1
    tr = metrics["tracking"]
    assert tr["tracks"] > 0 and tr["samples"] > 0 and np.isfinite(tr["epe"]) and 0 <= tr["within_0.2m"] <= 1
    for name in ("rendered_vs_input.png", "tracks_overlay.png", "tracks_3d.png"):
        assert (out / name).stat().st_size > 1000
    # the output bag holds the node's topics, one message per window each, decodable by our readers
    counts: dict[str, int] = {}
    stamps = set()
    for topic, log_time, msg in read_messages(out / replay.OUTPUT_BAG):
        counts[topic] = counts.get(topic, 0) + 1
        stamps.add(log_time)
        if topic == "gaussians":
            cloud = unpack_gaussians(msg)
            assert msg.height == 1 and [f.name for f in msg.fields] == list(GAUSSIAN_FIELDS)
            assert np.isfinite(cloud.means).all() and msg.header.frame_id == "world"
            last_cloud = cloud
        if topic == "trajectories":
            trajectories = unpack_trajectories(msg)
            assert msg.width == 8 and (trajectories.t <= 0).all() and trajectories.t[0, -1] == 0
        if topic == "rendered":  # like the node: every output in the world frame
            assert msg.encoding == "rgb8" and msg.header.frame_id == "world"
        if topic == "diagnostics":  # the node's level rule (stream/health.py) and the window it ran
            values = {kv.key: kv.value for kv in msg.status[0].values}
            assert (msg.status[0].level, msg.status[0].message) == (0, "ok")
            assert [values[k] for k in ("window_frames", "window_stride", "keyframe_stride", "image_width")] == \
                ["8", "4", "4", "32"]
    assert counts == {t: windows for t in ("gaussians", "trajectories", "tracks_markers", "rendered", "diagnostics")}
    assert len(stamps) == windows  # stamped at each window's newest frame
    # --save-windows: one file per window for `dgslrm export`, the same Gaussians as the published cloud
    saved = sorted((out / replay.WINDOWS_DIR).glob("window_*.safetensors"))
    assert len(saved) == windows
    newest = DeformableGaussians.load(saved[-1])
    np.testing.assert_allclose(newest.positions(newest.num_frames - 1).numpy(), last_cloud.means, atol=1e-5)
    # an existing output bag is refused, not overwritten
    assert dgslrm(["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "--no-progress",
                   *TINY_ARGS]) == 2


def _bag_with_many_chunks(bag, target):
    """Copy of `bag` with a big unrelated camera interleaved, so the mcap holds many 1 MiB chunks
    (a truncation then leaves whole chunks to read, as with a real recording cut short)."""
    from dgslrm_ros.bags.writer import BagWriter

    filler = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)  # 480 kB
    last = None
    with BagWriter(target) as writer:
        for topic, log_time, msg in read_messages(bag):
            if topic == "image" and log_time != last:
                writer.write_image("other_camera/image", log_time, filler)
                last = log_time
            writer.write_message(topic, msg, log_time)
    return target


def test_truncated_bag_gives_clear_error_after_processing_what_it_could(dgslrm, bag_and_checkpoint, tmp_path, capsys):
    bag, checkpoint = bag_and_checkpoint
    full = _bag_with_many_chunks(bag, tmp_path / "full")
    broken = tmp_path / "broken"
    broken.mkdir()
    mcap = next(full.glob("*.mcap"))
    data = mcap.read_bytes()
    (broken / mcap.name).write_bytes(data[: int(len(data) * 0.8)])  # cut in the middle, no index
    out = tmp_path / "out"
    rc = dgslrm(["replay", str(broken), "--out", str(out), "--checkpoint", str(checkpoint), "--no-progress",
                 *TINY_ARGS])
    assert rc == 1
    assert "broke off" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["error"] and "truncated" in metrics["error"]
    # what came before the cut was reconstructed and written (the tail window included)
    assert 1 <= metrics["windows"] <= (FRAMES - 8) // 4 + 1
    assert 8 <= metrics["frames_admitted"] < FRAMES
    written = sum(1 for topic, _, _ in read_messages(out / replay.OUTPUT_BAG) if topic == "gaussians")
    assert written == metrics["windows"]
    assert (out / "rendered_vs_input.png").exists()


def test_wrong_pose_topic_explains_why_nothing_was_reconstructed(dgslrm, bag_and_checkpoint, tmp_path, capsys):
    bag, checkpoint = bag_and_checkpoint
    out = tmp_path / "out"
    rc = dgslrm(["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "--no-progress",
                 "--pose-topic", "odometry", *TINY_ARGS])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no window was reconstructed" in err and "no_pose" in err
    # strict JSON (no NaN) even when nothing could be scored
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert metrics["windows"] == 0 and metrics["input_psnr"] is None and metrics["dropped"]["no_pose"] == FRAMES


def test_ground_truth_views_without_their_own_camera_info_use_the_input_one(dgslrm, bag_and_checkpoint, tmp_path,
                                                                           capsys):
    """The contract's gt views share the input camera_info: a bag without gt/views/<k>/camera_info is scored."""
    from dgslrm_ros.bags.writer import BagWriter

    bag, checkpoint = bag_and_checkpoint
    stripped = tmp_path / "stripped"
    with BagWriter(stripped) as writer:
        for topic, log_time, msg in read_messages(bag):
            if topic.startswith("gt/views/") and topic.endswith("/camera_info"):
                continue
            writer.write_message(topic, msg, log_time)
    out = tmp_path / "out"
    assert dgslrm(["replay", str(stripped), "--out", str(out), "--checkpoint", str(checkpoint), "--no-progress",
                   *TINY_ARGS]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["novel_view"]["count"] == metrics["windows"] * (VIEWS - 1) > 0
    assert np.isfinite(metrics["novel_view"]["psnr"])


def test_missing_bag_corrupt_bag_and_corrupt_checkpoint_give_clear_errors(dgslrm, bag_and_checkpoint, tmp_path,
                                                                          capsys):
    bag, checkpoint = bag_and_checkpoint
    rc = dgslrm(["replay", str(tmp_path / "no_such_bag"), "--out", str(tmp_path / "o1"), "--checkpoint",
                 str(checkpoint), "--no-progress", *TINY_ARGS])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "garbage_0.mcap").write_bytes(b"not an mcap file at all")
    rc = dgslrm(["replay", str(garbage), "--out", str(tmp_path / "o2"), "--checkpoint", str(checkpoint),
                 "--no-progress", *TINY_ARGS])
    assert rc == 1
    err = capsys.readouterr().err
    assert "broke off" in err and "corrupt" in err and "check the topic names" not in err

    broken = tmp_path / "broken_checkpoint"
    broken.mkdir()
    for item in checkpoint.parent.iterdir() if checkpoint.is_file() else checkpoint.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    rc = dgslrm(["replay", str(bag), "--out", str(tmp_path / "o3"), "--checkpoint", str(broken), "--no-progress",
                 *TINY_ARGS])
    assert rc == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "corrupt or truncated" in err


def test_replay_takes_window_and_input_size_from_the_checkpoint(dgslrm, bag_and_checkpoint, tmp_path, capsys):
    """No window or size option: the tiny checkpoint's 8 frames at 32 px, and metrics.json says so."""
    bag, checkpoint = bag_and_checkpoint
    out = tmp_path / "out"
    assert dgslrm(["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "--no-progress",
                   "--device", "cpu", "--renderer", "torch", "--track-grid", "8"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    config = metrics["config"]
    assert (config["window_frames"], config["window_stride"], config["keyframe_stride"]) == (8, 4, 4)
    assert (config["image_width"], config["image_height"]) == (32, 32)
    assert metrics["windows"] == 1 + (FRAMES - 8) // 4


def test_bad_parameter_is_refused_by_name(dgslrm, bag_and_checkpoint, tmp_path, capsys):
    bag, _ = bag_and_checkpoint
    assert dgslrm(["replay", str(bag), "--out", str(tmp_path / "o"), "--window-frames", "7"]) == 2
    assert "window_frames" in capsys.readouterr().err


# ------------------------------------------------------------------- scoring with known answers
class PlaneModel(torch.nn.Module):
    """The tiny model with its depth fixed (a plane facing the camera) and no motion."""

    def __init__(self, inner, depth):
        super().__init__()
        self.inner, self.depth, self.config = inner, depth, inner.config

    def forward(self, frames, K, world_T_cam, timestamps, **cues):
        p = self.inner(frames, K, world_T_cam, timestamps, **cues)
        return dataclasses.replace(p, depth=torch.full_like(p.depth, self.depth),
                                   opacities=torch.full_like(p.opacities, 0.9), offsets=torch.zeros_like(p.offsets))


def _window_result(tiny_model):
    config = PipelineConfig(window_frames=8, window_stride=4, image_width=32, image_height=32, track_grid=8,
                            device="cpu", renderer="torch", scene_scale=2.0)
    pipeline = StreamingReconstructor(config, model=PlaneModel(tiny_model, 1.5))
    K_info = np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]])
    pipeline.add_camera_info(K_info, np.zeros(5), "plumb_bob", 64, 48)
    rng = np.random.default_rng(0)
    images, poses = {}, {}
    for i in range(8):
        t, pose = 5.0 + 0.1 * i, np.eye(4)
        pose[0, 3] = 0.02 * i
        images[t], poses[t] = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), pose
        pipeline.add_pose(t, pose, "world")
        pipeline.add_image(t, images[t])
    result = pipeline.reconstruct(pipeline.pop_window())
    return result, K_info, images, poses


def test_scoring_is_exact_where_the_answer_is_known(tiny_model):
    result, K_info, images, poses = _window_result(tiny_model)
    stamp_ns_of = {float(t): int(round(t * 1e9)) for t in result.stamps}
    ground = replay._Ground()
    newest = float(result.stamps[-1])
    # novel view = the input camera itself: its score is the input-view PSNR
    ground.images[1] = {stamp_ns_of[newest]: images[newest]}
    ground.poses[1] = {stamp_ns_of[newest]: poses[newest]}
    ground.intrinsics[1] = CameraIntrinsics(K=K_info, D=np.zeros(5), distortion_model="plumb_bob", width=64, height=48)
    # GT tracks: static points on the predicted plane (z = 1.5 x 2 m) at pixel centres of frame 0
    _, dirs = camera_rays(torch.from_numpy(result.K[0]).double(), torch.from_numpy(result.world_T_cam[0]), 32, 32)
    points = (torch.from_numpy(result.world_T_cam[0][:3, 3]) + 3.0 * dirs)[4::8, 4::8].reshape(-1, 3).numpy()
    m = len(points)
    cloud = TrajectoryCloud(tracks=np.repeat(points[:, None], 8, axis=1).astype(np.float32),
                            t=np.tile((result.stamps - newest).astype(np.float32), (m, 1)),
                            track_ids=np.arange(m, dtype=np.uint32), visible=np.ones((m, 8), np.float32))
    ground.trajectories = TrajectoriesRecord(topic="gt/trajectories", stamp_ns=stamp_ns_of[newest],
                                             log_time_ns=stamp_ns_of[newest], frame_id="world", trajectories=cloud)
    scores = replay._Scores()
    replay._evaluate(result, stamp_ns_of, ground, scores, "newest", "torch")
    assert scores.novel.values["psnr"] == [pytest.approx(result.psnr, abs=1e-3)]
    errors = np.concatenate(scores.tracks.errors)
    assert scores.tracks.queries == m and errors.size == m * 8
    assert errors.max() < 1e-4
    # a GT point 0.3 m further along its pixel ray (same query pixel) shows up as exactly that error
    ray = dirs[4::8, 4::8].reshape(-1, 3)[0].numpy()
    cloud.tracks[0, :, :] += (0.3 * ray / np.linalg.norm(ray)).astype(np.float32)
    scores = replay._Scores()
    replay._evaluate(result, stamp_ns_of, ground, scores, "newest", "torch")
    errors = np.concatenate(scores.tracks.errors).reshape(m, 8)
    np.testing.assert_allclose(errors[0], 0.3, atol=1e-4)
    assert errors[1:].max() < 1e-4
