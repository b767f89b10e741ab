"""The classical cues against ground truth that could prove them wrong.

- plane sweep: recovers the ray-cast depth of a translating static window;
- chained flow: follows the ground-truth 2D motion of a synthetic window far better than standing still;
- lifting: reproduces the exact 3D motion of a rigidly moving object from its exact 2D track;
- gate: a window with camera motion only flags (almost) no pixel as moving; the moving regions' gate flags
  no more still pixels at 128 px than at 64 px.
"""
from __future__ import annotations

import math

import pytest
import torch

from dgslrm_ros.core.cameras import project_points
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.geometry.cues import CUE_CHANNELS, GeometryCues, compute_cues
from dgslrm_ros.geometry.flow_tracks import FlowConfig, Tracks2D, chain_tracks, finest_scale
from dgslrm_ros.geometry.lifting import LiftConfig, gate_threshold, lift_tracks, motion_gate, static_fit
from dgslrm_ros.geometry.moving_depth import MovingDepthConfig
from dgslrm_ros.geometry.plane_sweep import SweepConfig, plane_sweep

SIZE, FRAMES = 48, 12


def _gt_tracks(window: WindowSample) -> torch.Tensor:
    """[Kf, T, H, W, 2] ground-truth pixel positions of every keyframe pixel's surface point."""
    points = window.keyframe_points  # [Kf, T, H, W, 3]
    kf, t, height, width = points.shape[:4]
    return torch.stack([project_points(points[:, n].reshape(1, -1, 3), window.K[n], window.world_T_cam[n])[0]
                        .reshape(kf, height, width, 2) for n in range(t)], dim=1)


def _chain_error(window: WindowSample, config: FlowConfig) -> float:
    """Mean chained-track error (px) on the visible keyframe points the chains keep."""
    tracks = chain_tracks(window.frames, window.keyframe_index, config)
    scored = tracks.valid & window.keyframe_visible
    return float((tracks.positions - _gt_tracks(window)).norm(dim=-1)[scored].mean())


def test_sweep_recovers_raycast_depth_of_a_translating_static_window(scene_window) -> None:
    window = scene_window("static", 0.25)
    keyframes = window.keyframe_index
    result = plane_sweep(window.frames, window.K, window.world_T_cam, keyframes)
    gt = window.depth[keyframes]
    confident = (result.confidence > 0.3) & torch.isfinite(gt) & (gt < 10)
    absrel = ((result.depth - gt).abs() / gt)[confident]
    assert confident.float().mean() > 0.3  # a textured, translating window is mostly observable
    assert float(absrel.median()) <= 0.05
    # Confidence means something: the unconfident pixels are clearly worse.
    unconfident = (result.confidence < 0.05) & torch.isfinite(gt) & (gt < 10)
    if unconfident.sum() > 50:
        assert float(((result.depth - gt).abs() / gt)[unconfident].median()) > float(absrel.median())


def test_sweep_has_no_confidence_without_baseline(scene_window) -> None:
    window = scene_window("static", 0.25)
    still = window.world_T_cam[:1].expand(FRAMES, 4, 4).clone()  # every frame from the first pose
    frames = window.frames[:1].expand(FRAMES, 3, SIZE, SIZE).clone()
    result = plane_sweep(frames, window.K, still, window.keyframe_index)
    assert float(result.confidence.max()) == 0.0


def test_chained_flow_follows_ground_truth_2d_motion(scene_window) -> None:
    window = scene_window("dynamic", 0.15)
    tracks = chain_tracks(window.frames, window.keyframe_index)
    gt = _gt_tracks(window)
    scored = tracks.valid & window.keyframe_visible
    error = (tracks.positions - gt).norm(dim=-1)[scored]
    kfi = window.keyframe_index
    start = torch.stack([gt[i, k] for i, k in enumerate(kfi.tolist())])[:, None]
    still_error = (start - gt).norm(dim=-1)[scored]
    # Measured at 48 px: ~1 px against ~2-3 px for standing still; the bound leaves room for DIS versions.
    assert float(error.mean()) < 0.6 * float(still_error.mean())
    assert float(scored.float().sum() / window.keyframe_visible.float().sum()) > 0.7  # most visible points kept


def test_flow_works_near_64_px_on_wider_images(scene_window) -> None:
    window = scene_window("dynamic", 0.15, size=128)
    assert finest_scale(64) == 0 and finest_scale(128) == 1 and finest_scale(256) == 2
    # DIS preset `fast` alone (scale 2: a quarter of 128 px) against the working width (half): measured
    # 3.3 against 2.5 px on 24 training-split 128 px windows
    assert _chain_error(window, FlowConfig()) < 0.9 * _chain_error(window, FlowConfig(work_width_px=32))


def test_lifting_reproduces_rigid_motion_parallel_to_the_image() -> None:
    # Analytic: a camera translating along x, a plane of points at 3 m moving along camera y (parallel to
    # the image plane, the motion a monocular track fully determines) at 0.2 m/s.
    t, size = 6, 16
    K = torch.tensor([[20.0, 0.0, 8.0], [0.0, 20.0, 8.0], [0.0, 0.0, 1.0]]).expand(t, 3, 3)
    poses = torch.eye(4).repeat(t, 1, 1)
    poses[:, 0, 3] = torch.linspace(0.0, 0.3, t)
    keyframes = torch.tensor([0, 3])
    depth = torch.full((2, 1, size, size), 3.0)
    from dgslrm_ros.core.cameras import unproject_depth

    anchors = unproject_depth(depth, K[keyframes], poses[keyframes])  # [Kf, H, W, 3]
    times = torch.arange(t, dtype=torch.float32) * 0.1
    motion = torch.zeros(2, t, 1, 1, 3)
    motion[..., 1] = 0.2 * (times[None, :, None, None] - times[keyframes][:, None, None, None])
    truth = anchors[:, None] + motion  # [Kf, T, H, W, 3]
    uv = torch.stack([project_points(truth[:, n].reshape(1, -1, 3), K[n], poses[n])[0].reshape(2, size, size, 2)
                      for n in range(t)], dim=1)
    tracks = Tracks2D(positions=uv, valid=torch.ones(2, t, size, size, dtype=torch.bool),
                      error=torch.zeros(2, t, size, size))
    offsets = lift_tracks(tracks, depth, K, poses, keyframes)  # [Kf, T, 3, H, W]
    expected = motion.expand(2, t, size, size, 3).permute(0, 1, 4, 2, 3)
    assert torch.allclose(offsets, expected, atol=1e-4)
    assert float(offsets.abs().max()) > 0.05  # it really moved


def test_camera_motion_alone_flags_no_pixel_as_moving(scene_window) -> None:
    window = scene_window("static", 0.25)
    cues = compute_cues(window.frames, window.K, window.world_T_cam, window.keyframe_index)
    assert float((cues.gate > 0.5).float().mean()) < 0.02
    dynamic = scene_window("dynamic", 0.15)
    moving_cues = compute_cues(dynamic.frames, dynamic.K, dynamic.world_T_cam, dynamic.keyframe_index)
    assert float((moving_cues.gate > 0.5).float().mean()) > float((cues.gate > 0.5).float().mean())


def test_moving_regions_gate_grows_with_the_resolution(scene_window) -> None:
    """At 128 px a still pixel's motion evidence is larger (a depth error's parallax in px grows with the
    image): the tuned 3 px gate flags a tenth of the still pixels there. The gate the moving regions' depth
    reads grows its threshold, flags as few still pixels as at 64 px and still finds motion; the motion gate
    keeps the tuned threshold (the renders want every moving pixel it finds)."""
    exponent = MovingDepthConfig().region_threshold_exponent
    flagged = {}
    for size in (64, 128):
        window = scene_window("dynamic", 0.15, size=size)
        points = window.keyframe_points  # [Kf, T, H, W, 3]
        own = points[torch.arange(len(window.keyframe_index)), window.keyframe_index]  # [Kf, H, W, 3]
        moving = (points - own[:, None]).norm(dim=-1).amax(1) > 0.02  # [Kf, H, W]
        sweep = plane_sweep(window.frames, window.K, window.world_T_cam, window.keyframe_index)
        tracks = chain_tracks(window.frames, window.keyframe_index)
        fit = static_fit(tracks, window.K, window.world_T_cam, window.keyframe_index, sweep.depth)
        cues = compute_cues(window.frames, window.K, window.world_T_cam, window.keyframe_index)
        assert torch.equal(cues.gate, motion_gate(fit.residual))  # the motion gate: the tuned threshold
        for name, gate in (("tuned", motion_gate(fit.residual)), ("regions", motion_gate(fit.residual, LiftConfig(),
                                                                                          exponent))):
            opened = gate[:, 0] > 0
            flagged[size, name] = (float(opened[~moving].float().mean()), float(opened[moving].float().mean()))
    assert flagged[64, "tuned"] == flagged[64, "regions"]  # at 64 px both are the tuned gate
    assert flagged[128, "tuned"][0] > 0.05  # the tuned gate opens on still pixels at 128 px
    assert flagged[128, "regions"][0] < 2.0 * flagged[64, "regions"][0] + 0.005
    assert flagged[128, "regions"][1] > 0.05  # and the grown one still finds motion
    assert gate_threshold(32, exponent=exponent) == gate_threshold(64, exponent=exponent) < gate_threshold(
        128, exponent=exponent) < 2 * gate_threshold(64)


def test_cues_round_trip_through_the_cache_layout(scene_window) -> None:
    window = scene_window("static", 0.25)
    cues = compute_cues(window.frames, window.K, window.world_T_cam, window.keyframe_index)
    back = GeometryCues.from_tensors(cues.as_tensors())
    assert torch.equal(back.depth, cues.depth) and torch.equal(back.lifted, cues.lifted)
    assert torch.allclose(back.gate, cues.gate, atol=1e-3)
    assert back.channels().shape == (len(window.keyframe_index), CUE_CHANNELS, SIZE, SIZE)
    with pytest.raises(KeyError, match="rebuild"):
        GeometryCues.from_tensors({})


def test_a_batch_of_one_is_the_stacked_cues_without_copies(scene_window) -> None:
    window = scene_window("static", 0.25)
    cues = compute_cues(window.frames, window.K, window.world_T_cam, window.keyframe_index)
    batched, stacked = cues.batched(), GeometryCues.stack([cues])
    for name in ("depth", "gate", "lifted", "fit_parallax"):
        assert torch.equal(getattr(batched, name), getattr(stacked, name))
        assert getattr(batched, name).data_ptr() == getattr(cues, name).data_ptr()  # views: the node's 3 ms
    assert torch.equal(batched.channels(), stacked.channels())


def test_stage_times_are_reported_for_the_stages_that_ran(scene_window) -> None:
    """`stage_seconds` receives the wall time of each stage compute_cues ran (what `bench --geometry` prints)
    and nothing for what the caller passed in; the cues are the same with or without it."""
    window = scene_window("dynamic", 0.25)
    args = (window.frames, window.K, window.world_T_cam, window.keyframe_index)
    seconds: dict[str, float] = {}
    timed = compute_cues(*args, stage_seconds=seconds)
    assert list(seconds) == ["sweep", "flow", "chain", "fit", "moving", "lift"]
    assert all(value > 0 for value in seconds.values())
    plain = compute_cues(*args)
    assert all(torch.equal(getattr(timed, name), getattr(plain, name)) for name in ("depth", "gate", "lifted"))
    tracks = chain_tracks(window.frames, window.keyframe_index, FlowConfig())
    sweep = plane_sweep(window.frames, window.K, window.world_T_cam, window.keyframe_index)
    seconds = {}
    given = compute_cues(*args, tracks=tracks, sweep=sweep, stage_seconds=seconds)
    assert list(seconds) == ["fit", "moving", "lift"]
    assert torch.equal(given.lifted, plain.lifted)


def test_sweep_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="near < far"):
        SweepConfig(near=2.0, far=1.0)
    assert math.isclose(float(SweepConfig().inverse_depths()[0]), 1 / SweepConfig().near)


@pytest.mark.parametrize("sources", [1, 2, 3, 5, 6, 7, 12, 16])
def test_sorting_network_keeps_the_smallest_costs_in_order(sources: int) -> None:
    """The sweep's robust aggregation: the network must equal a sort, also with +inf (unseen) costs."""
    from dgslrm_ros.geometry.plane_sweep import smallest

    generator = torch.Generator().manual_seed(sources)
    costs = torch.rand(sources, 5, 300, generator=generator)
    costs[torch.rand(costs.shape, generator=generator) < 0.3] = float("inf")
    costs[:, 0, :7] = 0.25  # ties
    keep = max(1, sources // 2)
    assert torch.equal(smallest(costs, keep), torch.sort(costs, dim=0).values[:keep])


@pytest.mark.parametrize("box", [1, 3, 5])
def test_box_mean_averages_only_pixels_inside_the_image(box: int) -> None:
    from dgslrm_ros.geometry.plane_sweep import _box_mean

    values = torch.rand(4, 1, 9, 7, generator=torch.Generator().manual_seed(box))
    count = _box_mean(torch.ones(1, 1, 9, 7), box, torch.ones(()))
    expected = torch.nn.functional.avg_pool2d(values, box, stride=1, padding=box // 2, count_include_pad=False)
    assert torch.allclose(_box_mean(values, box, count), expected, atol=1e-6)
    assert float(count[0, 0, 0, 0]) == (box // 2 + 1) ** 2  # a corner sees a quarter of the box
