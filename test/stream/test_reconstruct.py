"""The worker side: reconstruct() lands outputs in the metric world frame with the contract's layouts
(packed by convert/window.py, as the node and replay do), keeps track ids across windows, survives a
failing window, and loads (or loudly lacks) weights."""
import dataclasses

import numpy as np
import pytest
import torch

from dgslrm_ros.convert.pointcloud import GAUSSIAN_DTYPE, GAUSSIAN_FIELDS, TRAJECTORY_DTYPE, pointcloud_to_array
from dgslrm_ros.convert.window import window_messages
from dgslrm_ros.geometry.classical import KEYFRAME_FLOOR, KEYFRAME_SUPPORT
from dgslrm_ros.core.cameras import project_points
from dgslrm_ros.stream import reconstruction as reconstruction_module
from dgslrm_ros.stream.config import FROM_MODEL, ConfigError, PipelineConfig
from dgslrm_ros.stream.pipeline import StreamingReconstructor
from dgslrm_ros.stream.reconstruction import ReconstructionError, load_pipeline_model

DEPTH_NORM = 1.5  # z-depth the controlled model predicts, in normalised units
SCENE_SCALE = 2.0  # metres per normalised unit (the cameras travel too little to raise it)
# Camera optical frame looking down world +x (z forward -> +x, x right -> -y, y down -> -z).
R_LOOK_X = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


class ControlledModel(torch.nn.Module):
    """The real tiny DGSLRM, with its depth, opacity and motion replaced by known values."""

    def __init__(self, inner, depth: float, fail_calls: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.inner, self.depth, self.fail_calls, self.calls = inner, depth, fail_calls, 0
        self.config = inner.config

    def forward(self, frames, K, world_T_cam, timestamps, **cues):
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("CUDA out of memory (simulated)")
        p = self.inner(frames, K, world_T_cam, timestamps, **cues)
        return dataclasses.replace(p, depth=torch.full_like(p.depth, self.depth),
                                   opacities=torch.full_like(p.opacities, 0.9), offsets=torch.zeros_like(p.offsets))


def camera(t: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = R_LOOK_X
    pose[:3, 3] = [0.0, 0.05 * t, 1.0]  # sliding sideways, 1 m up
    return pose


def run_windows(pipeline, kit, count: int, start: float = 0.0):
    for i in range(count):
        t = start + 0.1 * i
        pipeline.add_pose(t, camera(t), "world")
        assert pipeline.add_image(t, kit.image(i)) is None
    windows = []
    while (w := pipeline.pop_window()) is not None:
        windows.append(w)
    return windows


def published(result):
    """The window as node and replay publish it (convert/window.py), clouds read back as structured arrays."""
    packed = window_messages(result)
    return dataclasses.replace(packed, gaussians=pointcloud_to_array(packed.gaussians).reshape(-1),
                               trajectories=pointcloud_to_array(packed.trajectories))


@pytest.fixture
def controlled(tiny_model):
    return ControlledModel(tiny_model, DEPTH_NORM)


def test_outputs_are_metric_with_contract_layouts_and_stable_ids(make_pipeline, kit, controlled):
    pipeline = make_pipeline(model=controlled, scene_scale=SCENE_SCALE, max_pending_windows=8)
    first, second = run_windows(pipeline, kit, 12)
    result_a = pipeline.reconstruct(first)
    a = published(result_a)
    assert result_a.normalization.scale == pytest.approx(SCENE_SCALE)
    # every Gaussian sits at metric z-depth DEPTH_NORM * scale = 3 m in front of its camera (world +x)
    assert a.gaussians.dtype == GAUSSIAN_DTYPE and a.gaussians.dtype.names == GAUSSIAN_FIELDS
    assert len(a.gaussians) == 2 * 32 * 32  # 2 keyframes x 32 x 32 pixels, all opaque enough
    # their opacity as drawn at the newest frame (7): keyframe 4 in full, keyframe 0 faded over time
    np.testing.assert_allclose(a.gaussians["opacity"][32 * 32:], 0.9, rtol=1e-6)
    faded = max(1 - 4 / (4 * KEYFRAME_SUPPORT), KEYFRAME_FLOOR)  # 4 frames = one keyframe spacing away
    np.testing.assert_allclose(a.gaussians["opacity"][:32 * 32], 0.9 * faded, rtol=1e-5)
    np.testing.assert_allclose(a.gaussians["x"], DEPTH_NORM * SCENE_SCALE, atol=1e-4)
    # ...and on the rays of their pixels: keyframe 1 (frame 4) Gaussians project to pixel centres
    kf1 = a.gaussians[32 * 32:]
    points = torch.tensor(np.stack([kf1["x"], kf1["y"], kf1["z"]], -1), dtype=torch.float64)
    uv, depth = project_points(points, torch.tensor(result_a.K[4], dtype=torch.float64),
                               torch.tensor(result_a.world_T_cam[4]))
    rows, cols = np.divmod(np.arange(32 * 32), 32)
    np.testing.assert_allclose(uv.numpy(), np.stack([cols + 0.5, rows + 0.5], -1), atol=2e-3)
    np.testing.assert_allclose(depth.numpy(), 3.0, atol=1e-4)
    # static scene: zero velocity, metric scales (normalised scales x 2), unit quaternions
    for v in ("vx", "vy", "vz"):
        np.testing.assert_array_equal(a.gaussians[v], 0.0)
    quats = np.stack([a.gaussians[f] for f in ("rot_w", "rot_x", "rot_y", "rot_z")], -1)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-5)
    # trajectories: organised [M, T], the contract's fields, t <= 0 ending at 0 on the newest frame
    assert a.trajectories.dtype == TRAJECTORY_DTYPE and a.trajectories.shape[1] == 8
    np.testing.assert_allclose(a.trajectories["t"][0], np.arange(-7, 1) * 0.1, atol=1e-5)
    assert result_a.stamp == first.stamp == pytest.approx(0.7) and result_a.frame_id == "world"
    assert (a.trajectories["track_id"] == a.trajectories["track_id"][:, :1]).all()
    np.testing.assert_allclose(a.trajectories["x"], 3.0, atol=1e-4)
    # other outputs
    assert a.rendered.shape == (32, 32, 3) and a.rendered.dtype == np.uint8 and np.isfinite(result_a.psnr)
    assert a.rendered.max() > 0
    assert len(a.strips) == len(a.trajectories)
    assert result_a.deformable.means.shape[0] == len(a.gaussians)
    # the next window continues the same tracks
    result_b = pipeline.reconstruct(second)
    b = published(result_b)
    ids_a = set(a.trajectories["track_id"][:, 0].tolist())
    ids_b = set(b.trajectories["track_id"][:, 0].tolist())
    assert len(ids_a & ids_b) >= 0.75 * len(ids_a)
    d = pipeline.diagnostics()
    assert d["windows_reconstructed"] == 2 and d["last_psnr_db"] == pytest.approx(result_b.psnr)
    assert d["last_reconstruction_s"] > 0 and d["tracks_active"] == len(ids_b)


def test_failed_window_raises_and_the_next_proceeds(make_pipeline, kit, tiny_model):
    model = ControlledModel(tiny_model, DEPTH_NORM, fail_calls=(1,))
    pipeline = make_pipeline(model=model, max_pending_windows=8)
    first, second = run_windows(pipeline, kit, 12)
    with pytest.raises(ReconstructionError, match="out of memory"):
        pipeline.reconstruct(first)
    result = pipeline.reconstruct(second)
    assert result.stamp == pytest.approx(1.1)
    d = pipeline.diagnostics()
    assert d["reconstruction_failures"] == 1 and d["windows_reconstructed"] == 1


def test_model_loading_checkpoint_mismatch_and_untrained_fallback(tmp_path, tiny_model, kit, monkeypatch):
    from dgslrm_ros.model.checkpoint import save_checkpoint

    logs = []
    log = lambda level, message: logs.append((level, message))  # noqa: E731
    save_checkpoint(tmp_path / "tiny", tiny_model)
    model, weights = load_pipeline_model(kit.config(checkpoint=str(tmp_path / "tiny"), method="network"), torch.device("cpu"), log)
    assert weights.startswith("checkpoint") and model.config.window_frames == 8
    with pytest.raises(ConfigError, match="window_frames"):  # refused once the model is known (for_model)
        StreamingReconstructor(kit.config(checkpoint=str(tmp_path / "tiny"), window_frames=12, window_stride=6,
                                          method="network"), log)
    with pytest.raises(ConfigError, match="checkpoint"):
        load_pipeline_model(kit.config(checkpoint=str(tmp_path / "nowhere"), method="network"), torch.device("cpu"), log)
    monkeypatch.setattr(reconstruction_module, "SHIPPED_CHECKPOINT", tmp_path / "not_shipped")
    model, weights = load_pipeline_model(kit.config(method="network"), torch.device("cpu"), log)
    assert weights == "untrained" and model.config.window_frames == 8
    assert any(level == "error" and "weights: untrained" in message for level, message in logs)


@pytest.mark.parametrize("method", ["network", "classical"])
def test_default_parameters_take_the_checkpoints_window_and_input_size(tmp_path, tiny_model, kit, method):
    """A checkpoint with a window (8 frames, 32 px) other than the shipped one's runs with no parameter edits."""
    from dgslrm_ros.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tiny", tiny_model)
    given = PipelineConfig(checkpoint=str(tmp_path / "tiny"), device="cpu", renderer="torch", method=method)
    assert (given.window_frames, given.window_stride, given.keyframe_stride, given.image_width,
            given.image_height) == (FROM_MODEL,) * 5
    pipeline = StreamingReconstructor(given)
    config = pipeline.config
    assert (config.window_frames, config.keyframe_stride, config.image_width, config.image_height) == (8, 4, 32, 32)
    assert config.window_stride == 4  # half the window
    resolved = dict(window_frames=8, window_stride=4, keyframe_stride=4, image_width=32, image_height=32)
    assert {k: pipeline.diagnostics()[k] for k in resolved} == resolved  # /diagnostics shows them (node, replay)
    pipeline.add_camera_info(kit.K_INFO, np.zeros(5), "plumb_bob", kit.W, kit.H)
    windows = run_windows(pipeline, kit, 12)  # admission cuts 8-frame windows every 4 frames
    assert [len(w.frames) for w in windows] == [8, 8]
    result = pipeline.reconstruct(windows[0])
    assert result.rendered.shape == (3, 32, 32) and result.input_frame.shape == (3, 32, 32)
    assert published(result).trajectories.shape[1] == 8 and len(result.stamps) == 8


def test_explicit_values_against_the_checkpoint(tmp_path, tiny_model):
    """A window or keyframe stride other than the checkpoint's is refused naming the parameter and both
    values; an input size may differ from the training size (any multiple of the patch size)."""
    from dgslrm_ros.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tiny", tiny_model)
    config = PipelineConfig(checkpoint=str(tmp_path / "tiny"), device="cpu", renderer="torch", method="network")
    for name, value in (("window_frames", 16), ("keyframe_stride", 2)):
        with pytest.raises(ConfigError, match=f"parameter '{name}': {value} does not fit .*{name}={getattr(tiny_model.config, name)}"):
            StreamingReconstructor(dataclasses.replace(config, **{name: value}))
    with pytest.raises(ConfigError, match="parameter 'image_height': 36 is not a multiple of the model's patch size 8"):
        StreamingReconstructor(dataclasses.replace(config, image_height=36))
    taken = StreamingReconstructor(dataclasses.replace(config, window_frames=8, image_width=48)).config
    assert (taken.window_frames, taken.window_stride, taken.image_width, taken.image_height) == (8, 4, 48, 32)
    # a check between fields runs once the model's values are in: an explicit window_stride over its window
    with pytest.raises(ConfigError, match="parameter 'window_stride': 12 exceeds window_frames=8"):
        StreamingReconstructor(dataclasses.replace(config, window_stride=12))


def test_classical_method_needs_no_weights_and_reconstructs_the_window(make_pipeline, kit, tiny_model, tmp_path):
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.classical import ClassicalReconstructor

    save_checkpoint(tmp_path / "tiny", tiny_model)  # fixes the window layout only
    config = kit.config(checkpoint=str(tmp_path / "tiny"), method="classical")
    model, weights = load_pipeline_model(config, torch.device("cpu"), lambda *_: None)
    assert isinstance(model, ClassicalReconstructor) and weights.startswith("classical")
    pipeline = make_pipeline(model=model, method="classical")
    window = run_windows(pipeline, kit, 10)[0]
    result = pipeline.reconstruct(window)
    assert len(published(result).gaussians) > 0 and np.isfinite(result.psnr)
    assert result.timings["cues"] > 0 and result.timings["model"] >= 0


def test_classical_takes_the_keyframe_stride_the_config_gives(make_pipeline, kit, tiny_model, tmp_path):
    """No weights tie `classical` to the checkpoint's layout: keyframe_stride=2 gives a keyframe every 2 frames
    (the network keeps refusing it, test above); a stride that does not divide the window is refused by name."""
    from dgslrm_ros.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tiny", tiny_model)
    assert tiny_model.config.keyframe_stride == 4
    config = kit.config(checkpoint=str(tmp_path / "tiny"), method="classical", keyframe_stride=2)
    model, _ = load_pipeline_model(config, torch.device("cpu"), lambda *_: None)
    assert model.config.keyframe_stride == 2
    assert model.config.window_frames == tiny_model.config.window_frames
    pipeline = make_pipeline(model=model, method="classical", keyframe_stride=2)
    assert pipeline.config.keyframe_stride == 2
    window = run_windows(pipeline, kit, 10)[0]
    result = pipeline.reconstruct(window)
    frames = tiny_model.config.window_frames
    assert result.deformable.means.shape[0] > 0 and np.isfinite(result.psnr)
    assert sorted(set(result.unpruned.keyframe_index.tolist())) == list(range(0, frames, 2))
    with pytest.raises(ConfigError, match="parameter 'window_frames': window_frames=8 is not a multiple of "
                                          "keyframe_stride=3"):
        load_pipeline_model(kit.config(checkpoint=str(tmp_path / "tiny"), method="classical", keyframe_stride=3),
                            torch.device("cpu"), lambda *_: None)


def test_refinement_runs_on_the_window_and_changes_the_gaussians(make_pipeline, kit, controlled):
    results = []
    for iters in (0, 1):
        pipeline = make_pipeline(model=controlled, scene_scale=SCENE_SCALE, refine_iters=iters, image_width=16,
                                 image_height=16)
        (window,) = run_windows(pipeline, kit, 8)
        results.append(pipeline.reconstruct(window))
    assert results[1].timings["model"] > 0 and np.isfinite(results[1].psnr)
    plain, refined = (published(result).gaussians for result in results)
    moved = np.abs(refined["x"] - plain["x"]).max()
    assert moved > 1e-5  # the optimiser did move the feed-forward Gaussians (in metres: mapped back)
    assert np.abs(refined["x"] - 3.0).max() < 0.2  # a step, not a jump off the plane


def test_everything_pruned_gives_empty_outputs_not_a_failure(make_pipeline, kit, controlled):
    pipeline = make_pipeline(model=controlled, min_opacity=1.0)  # the model's opacities are 0.9
    (window,) = run_windows(pipeline, kit, 8)
    result = pipeline.reconstruct(window)
    packed = published(result)
    assert packed.gaussians.shape == (0,) and packed.trajectories.shape == (0, 8)
    assert packed.strips == [] and packed.rendered.max() == 0 and np.isfinite(result.psnr)


def test_keyframe_colours_are_solved_against_the_drawing_unless_refinement_fits_them(make_pipeline, kit, tiny_model,
                                                                                      tmp_path):
    """`color_solve_iters` (render/color_solve.py) is its own timed stage: the same classical Gaussians, only
    their colours changed, draw the newest input frame (a keyframe: one every frame) closer to the image; with
    refinement on, refinement fits the colours instead and the solve does not run."""
    from dgslrm_ros.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tiny", tiny_model)
    config = kit.config(checkpoint=str(tmp_path / "tiny"), method="classical", keyframe_stride=1)
    model, _ = load_pipeline_model(config, torch.device("cpu"), lambda *_: None)
    results = {}
    for iters, refine in ((0, 0), (3, 0), (3, 1)):
        pipeline = make_pipeline(model=model, method="classical", keyframe_stride=1, color_solve_iters=iters,
                                 refine_iters=refine)
        results[iters, refine] = pipeline.reconstruct(run_windows(pipeline, kit, 10)[0])
    plain, solved, refined = results[0, 0], results[3, 0], results[3, 1]
    assert "colors" in solved.timings and "refine" not in solved.timings
    assert "refine" in refined.timings and "colors" not in refined.timings
    assert torch.equal(solved.deformable.means, plain.deformable.means)
    assert not torch.allclose(solved.deformable.colors, plain.deformable.colors)
    assert solved.psnr > plain.psnr + 5.0  # noise images: 25 -> 34 dB
