"""`dgslrm eval`: table + JSON with the network, the static and the optimised baselines."""
import json
from dataclasses import replace

import pytest
import torch

from dgslrm_ros.evaluation.baselines import depth_initialization, gaussian_tracks, static_baseline
from dgslrm_ros.evaluation.evaluate import (METRIC_KEYS, EvalConfig, evaluate_model, held_out_instant_views,
                                            motion_metrics, published_track_metrics, threshold_values)


def test_evaluate_model_scores_all_methods(tiny_model, window, data_config, tmp_path):
    config = EvalConfig(num_scenes=1, optimize_iters=6, refine_iters=3, previews=1, color_solve_iters=3)
    result = evaluate_model(tiny_model, [window], config, out_dir=tmp_path, data_config=data_config)
    methods = result["methods"]
    assert set(methods) == {"network", "network+refine", "classical", "static", "optimised", "oracle depth", "oracle depth+motion",
                            "oracle depth, static"}
    for name, metrics in methods.items():
        assert set(metrics) == set(METRIC_KEYS), name
        assert 0 < metrics["novel_psnr"] < 60 and -1 <= metrics["novel_ssim"] <= 1
        assert 0 < metrics["heldout_psnr"] < 60 and -1 <= metrics["heldout_ssim"] <= 1
        assert metrics["track_epe_m"] > 0
        assert 0 <= metrics["within_5cm"] <= metrics["within_10cm"] <= metrics["within_20cm"] <= 1
    assert methods["static"]["motion_m"] == 0.0  # deformation forced to zero: tracks stand still
    assert methods["network"]["motion_m"] > 0.0
    # Refinement starts from the predicted colours (curve[0] is that start: the raw prediction's input views)
    # and fits its own frames better; the `network` row has its keyframe colours solved against the drawing
    # (color_solve_iters 3, as the node does when asked), which sharpens the same input views more than that.
    curve = json.loads((tmp_path / "refine_curve.json").read_text())
    assert methods["network+refine"]["input_psnr"] > curve[0]["psnr"]
    assert methods["network"]["input_psnr"] > curve[0]["psnr"] + 1.0

    saved = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON (no NaN)
    assert saved["num_scenes"] == 1 and set(saved["methods"]) == set(methods)
    assert saved["scenes"][0]["scene_id"] == window.scene_id
    assert [c["iter"] for c in curve] == [0, 1, 2, 3] and curve[-1]["psnr"] > curve[0]["psnr"]
    assert (tmp_path / "refine_curve.png").is_file()
    previews = sorted(p.name for p in (tmp_path / "previews").glob("*.png"))
    assert previews == ["scene000_classical.png", "scene000_network.png", "scene000_network_refine.png",
                        "scene000_optimised.png", "scene000_oracle_depth.png", "scene000_oracle_depth_motion.png",
                        "scene000_oracle_depth_static.png", "scene000_static.png"]
    # The oracle rows bound the error: ground-truth depth leaves no depth error, and with the
    # ground-truth motion too, no track error.
    assert methods["oracle depth"]["depth_absrel_median"] < 1e-4
    assert methods["oracle depth+motion"]["track_epe_m"] < 1e-4 < methods["network"]["track_epe_m"]
    # Without motion the ground-truth depth row keeps its depth and its tracks stand still.
    assert methods["oracle depth, static"]["depth_absrel_median"] < 1e-4
    assert methods["oracle depth, static"]["motion_m"] == 0.0
    assert methods["oracle depth, static"]["track_epe_m"] >= methods["oracle depth+motion"]["track_epe_m"]


def test_static_baseline_tracks_do_not_move(tiny_model, window):
    batch, _ = window.add_batch_dim().normalized(1.0)
    with torch.no_grad():
        gaussians = tiny_model(**batch.model_inputs()).gaussians(0)
    tracks = gaussian_tracks(static_baseline(gaussians), 2, 16, 16)  # [Kf, T, H, W, 3]
    assert torch.equal(tracks, tracks[:, :1].expand_as(tracks))
    assert not torch.equal(gaussians.offsets, torch.zeros_like(gaussians.offsets))


def test_depth_initialization_reprojects_to_its_pixels(window):
    batch, _ = window.add_batch_dim().normalized(1.0)
    init = depth_initialization(batch.frames[0], batch.depth[0], batch.K[0], batch.world_T_cam[0],
                                batch.keyframe_index[0], batch.timestamps[0], max_depth=10.0)
    assert len(init) == 2 * 16 * 16
    tracks = gaussian_tracks(init, 2, 16, 16)
    gt = batch.keyframe_points[0]
    own = torch.arange(2), batch.keyframe_index[0]
    depth = batch.depth[0][batch.keyframe_index[0]]
    valid = (depth[:, 0] <= 10.0)
    # At its own keyframe the GT-depth initialisation sits exactly on the true surface point.
    assert torch.allclose(tracks[own][valid], gt[own][valid], atol=1e-3)


def test_thresholds_scale_with_scene_size():
    depth = torch.full((2, 1, 4, 4), 4.0)
    config = EvalConfig()
    assert threshold_values(depth, config, max_depth=100.0) == pytest.approx({"5cm": 0.10, "10cm": 0.20, "20cm": 0.40})


def test_held_out_instants_are_the_windows_cameras_between_frames(window, data_config):
    views = held_out_instant_views(int(window.scene_id), data_config, count=2)
    assert views["frames"].shape == (4, 3, 16, 16)
    assert views["frame_position"].tolist() == [0.5, 6.5, 0.5, 6.5]
    # The first half is the input camera (its own intrinsics) half-way between its frames n and n + 1.
    assert torch.allclose(views["K"][:2], window.K[:2])
    for i, n in enumerate((0, 6)):
        centre = views["world_T_cam"][i, :3, 3]
        a, b = window.world_T_cam[n, :3, 3], window.world_T_cam[n + 1, :3, 3]
        assert (centre - (a + b) / 2).norm() < 0.25 * (b - a).norm() + 1e-3
    # The second half is another camera of the rig: somewhere else.
    assert (views["world_T_cam"][2, :3, 3] - views["world_T_cam"][0, :3, 3]).norm() > 0.1
    assert not torch.equal(views["frames"][0], views["frames"][2])


def _moving_block_tracks():
    """GT tracks [Kf=2, T=4, H=4, W=4, 3]: a 2x2 block of pixels travels +0.1 m/frame in x, the rest is still."""
    kf = torch.tensor([0, 2])
    frames = torch.arange(4, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1)  # [H, W, 2]
    start = torch.cat([grid, torch.full((4, 4, 1), 3.0)], -1)  # [H, W, 3]
    gt = start.expand(2, 4, 4, 4, 3).clone()
    for k, own in enumerate(kf.tolist()):
        gt[k, :, :2, :2, 0] += 0.1 * (frames - own)[:, None, None]
    valid = torch.ones(2, 4, 4, 4, dtype=torch.bool)
    valid[torch.arange(2), kf] = False  # own instants are not scored, as in score_window
    return gt, kf, valid


def test_motion_metrics_score_the_motion_apart_from_the_start_point():
    gt, kf, valid = _moving_block_tracks()
    # Right motion from a start 0.5 m too far: flow is perfect, the absolute track is 0.5 m off.
    shifted = gt + torch.tensor([0.0, 0.0, 0.5])
    m = motion_metrics(shifted, gt, kf, valid, metres_per_unit=1.0, moving_threshold_m=0.05)
    assert m["flow_epe_m"] == pytest.approx(0.0, abs=1e-6)
    assert m["moving_flow_epe_m"] == pytest.approx(0.0, abs=1e-6)
    assert m["moving_track_epe_m"] == pytest.approx(0.5, abs=1e-6)
    assert m["moving_fraction"] == pytest.approx(4 / 16)
    # Standing still: the flow error is exactly the GT travel (mean |n - own| * 0.1 over scored frames).
    still = gt[torch.arange(2), kf][:, None].expand_as(gt)
    m = motion_metrics(still, gt, kf, valid, metres_per_unit=2.0, moving_threshold_m=0.05)
    travel = 2.0 * 0.1 * torch.tensor([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0]]).mean()  # keyframe 0: n=1..3; 2: n=0,1,3
    assert m["moving_flow_epe_m"] == pytest.approx(float(travel), rel=1e-5)
    assert m["flow_epe_m"] == pytest.approx(float(travel) * 4 / 16, rel=1e-5)
    assert m["motion_m"] == 0.0
    # A threshold above every travel leaves no moving pixel: NaN, not a misleading zero.
    m = motion_metrics(still, gt, kf, valid, metres_per_unit=1.0, moving_threshold_m=1.0)
    assert m["moving_fraction"] == 0.0 and m["moving_flow_epe_m"] != m["moving_flow_epe_m"]


def test_published_track_metrics_score_only_the_published_pixels():
    gt, kf, valid = _moving_block_tracks()
    # Right motion everywhere; the published pixels (the moving block and one still pixel per keyframe)
    # start 0.1 m off, every other pixel 5 m off: only the first count.
    published = torch.zeros(2, 4, 4, dtype=torch.bool)
    published[:, :2, :2] = True
    published[:, 3, 3] = True
    offset = torch.full((2, 1, 4, 4, 1), 5.0)
    offset[:, :, :2, :2] = 0.1
    offset[:, :, 3, 3] = 0.1
    pred = gt + offset * torch.tensor([0.0, 0.0, 1.0])
    m = published_track_metrics(pred, gt, kf, valid, published, metres_per_unit=2.0, moving_threshold_m=0.05)
    assert m["published_fraction"] == pytest.approx(5 / 16)
    assert m["published_track_epe_m"] == pytest.approx(0.2, rel=1e-5)  # 0.1 units x 2 m per unit
    assert m["published_flow_epe_m"] == pytest.approx(0.0, abs=1e-6)
    assert m["published_moving_fraction"] == pytest.approx(4 / 5)
    # The same pixels standing still: their moving flow error is the block's travel, as motion_metrics says.
    still = gt[torch.arange(2), kf][:, None].expand_as(gt)
    m = published_track_metrics(still, gt, kf, valid, published, metres_per_unit=2.0, moving_threshold_m=0.05)
    assert m["published_moving_flow_epe_m"] == pytest.approx(
        motion_metrics(still, gt, kf, valid, 2.0, 0.05)["moving_flow_epe_m"], rel=1e-6)
    # No published pixel: a zero share and NaN errors; no cues at all: NaN throughout.
    none = published_track_metrics(pred, gt, kf, valid, torch.zeros_like(published), 1.0, 0.05)
    assert none["published_fraction"] == 0.0 and none["published_track_epe_m"] != none["published_track_epe_m"]
    assert all(v != v for v in published_track_metrics(pred, gt, kf, valid, None, 1.0, 0.05).values())


def test_evaluate_model_scores_the_pixels_the_node_publishes(tiny_model, window, data_config):
    config = EvalConfig(num_scenes=1, optimize_iters=0, refine_iters=0, previews=0, oracles=False, heldout_instants=0)
    every = evaluate_model(tiny_model, [window], replace(config, min_track_confidence=-1.0), data_config=data_config)
    trusted = evaluate_model(tiny_model, [window], config, data_config=data_config)
    for name, metrics in every["methods"].items():
        # -1 publishes every pixel: the published scores are the all-pixel ones.
        assert metrics["published_fraction"] == 1.0, name
        assert metrics["published_track_epe_m"] == pytest.approx(metrics["track_epe_m"], rel=1e-6), name
        assert metrics["published_flow_epe_m"] == pytest.approx(metrics["flow_epe_m"], rel=1e-6), name
    fractions = {name: m["published_fraction"] for name, m in trusted["methods"].items()}
    # The pixels come from the window's cues: the same for every method, and the rule leaves some out
    # (the tiny window's sweep does not resolve every pixel).
    assert len(set(fractions.values())) == 1 and 0.0 < fractions["network"] < 1.0
