"""The sweep's nearest plane follows the window (SweepConfig.adaptive_near, plane_sweep.window_near).

- the probe puts the first plane short of the window's nearest surfaces (a ray-cast scene), and keeps the
  configured near where nothing is resolved (no baseline);
- where one step of the fixed planes moves a point several pixels (a wide baseline), the planes that start
  near the scene recover depth the fixed ones miss;
- the finer step does not read as less observable or less distinct: confidence keeps its level.
"""
from __future__ import annotations

import pytest
import torch

from dgslrm_ros.geometry.plane_sweep import SweepConfig, plane_sweep, window_near

FIXED = SweepConfig(adaptive_near=False)


def _absrel(result, depth: float) -> torch.Tensor:
    return (result.depth - depth).abs() / depth


def test_first_plane_lies_short_of_the_nearest_surfaces(scene_window) -> None:
    window = scene_window("static", 0.25)
    near = window_near(window.frames, window.K, window.world_T_cam, window.keyframe_index)
    gt = window.depth[window.keyframe_index]
    gt = gt[torch.isfinite(gt) & (gt > 0)]
    assert near > SweepConfig().near  # the planes moved off 0.25 units
    assert float((gt < near).float().mean()) < 0.01  # and no surface is left in front of them


def test_without_baseline_the_configured_near_stays(scene_window) -> None:
    window = scene_window("static", 0.25)
    count = window.frames.shape[0]
    still = window.world_T_cam[:1].expand(count, 4, 4).clone()
    frames = window.frames[:1].expand(count, -1, -1, -1).clone()
    assert window_near(frames, window.K, still, window.keyframe_index) == SweepConfig().near


def test_wide_baseline_depth_is_resolved(textured_plane_window) -> None:
    # A 1.6-unit slide past a plane 4 units away: one step of the fixed planes moves a point several
    # pixels, and their winners land far off; planes that start near the plane find it.
    window = textured_plane_window(size=32, frames=8, depth=4.0, travel=1.6)
    keyframes = [0, 4]
    fixed = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes, FIXED)
    adaptive = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    assert float(_absrel(fixed, 4.0).median()) > 0.2
    assert float(_absrel(adaptive, 4.0).median()) < 0.05


@pytest.mark.parametrize("depth", [1.0, 2.0])
def test_finer_planes_keep_the_confidence(textured_plane_window, depth: float) -> None:
    # Observability is judged per step of the configured planes: a finer step moves a point less on the same
    # baseline, and must not turn a resolved plane unconfident.
    window = textured_plane_window(size=32, frames=8, depth=depth, travel=0.2)
    keyframes = [0, 4]
    fixed = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes, FIXED)
    adaptive = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    assert float(fixed.confidence.mean()) > 0.2
    assert float(adaptive.confidence.mean()) > 0.8 * float(fixed.confidence.mean())
    assert float(_absrel(adaptive, depth).median()) < 0.02


def test_confidence_keeps_its_scale_on_a_raycast_window(scene_window) -> None:
    # The network, the depth and motion checks and the track seeds read the confidence on the scale of the
    # configured planes. Planes merely moved to the window's near would halve it on a 2-unit scene (a finer
    # step reads as less observable, a curve median nearer its minimum as less distinct).
    window = scene_window("static", 0.25)
    args = (window.frames, window.K, window.world_T_cam, window.keyframe_index)
    near = window_near(*args)
    fixed = plane_sweep(*args, FIXED)
    adaptive = plane_sweep(*args)
    moved = float(plane_sweep(*args, SweepConfig(adaptive_near=False, near=near)).confidence.mean())
    assert abs(float(adaptive.confidence.mean()) / float(fixed.confidence.mean()) - 1.0) < 0.1
    assert moved < 0.6 * float(fixed.confidence.mean())
    gt = window.depth[window.keyframe_index]
    scored = torch.isfinite(gt) & (gt < 10)
    assert float(((adaptive.depth - gt).abs() / gt)[scored].median()) <= float(
        ((fixed.depth - gt).abs() / gt)[scored].median())


def test_probe_settings_are_validated() -> None:
    for bad in (dict(probe_planes=2), dict(near_quantile=0.0), dict(near_quantile=1.0), dict(near_margin=0.9)):
        with pytest.raises(ValueError):
            SweepConfig(**bad)
