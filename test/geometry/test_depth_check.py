"""The photometric depth check: the sweep's cost at a given depth map, and the rule built on it."""
from __future__ import annotations

import pytest
import torch

from dgslrm_ros.geometry.depth_check import DepthCheckConfig, depth_agrees
from dgslrm_ros.geometry.plane_sweep import (SweepConfig, _aggregated_cost, _homogeneous_pixels, _in_image_count,
                                             _source_homographies, photometric_cost, plane_sweep, select_sources)


def test_cost_of_a_depth_map_is_the_sweeps_cost_volume_at_those_planes(scene_window) -> None:
    window = scene_window("static", 0.25)
    config = SweepConfig()
    t, _, height, width = window.frames.shape
    reference = int(window.keyframe_index[1])
    # The sweep's own volume, through its dispatcher (the C kernel where it is built).
    sources = select_sources(t, reference, config.max_sources)
    directions, offsets = _source_homographies(_homogeneous_pixels(height, width), window.K, window.world_T_cam,
                                               torch.linalg.inv(window.world_T_cam), reference, sources)
    planes = 1.0 / config.inverse_depths()
    volume = _aggregated_cost(window.frames[reference], window.frames[sources], directions, offsets, planes,
                              _in_image_count(height, width, config.box), config.sources_kept(len(sources)),
                              config.box)  # [D, HW]
    # A depth map of four quadrants at four planes reads those planes' rows of the volume, except within
    # half a box of a quadrant border (the box SAD there mixes neighbours at another depth).
    pick = torch.zeros(height, width, dtype=torch.long)
    pick[:height // 2, :width // 2], pick[:height // 2, width // 2:] = 5, 20
    pick[height // 2:, :width // 2], pick[height // 2:, width // 2:] = 33, 47
    depth = planes[pick].reshape(1, 1, height, width)
    cost = photometric_cost(window.frames, window.K, window.world_T_cam, [reference], depth, config)
    rows, cols = torch.arange(height)[:, None], torch.arange(width)[None]
    interior = ((rows - height // 2 + 0.5).abs() > config.box // 2 + 0.5) & \
        ((cols - width // 2 + 0.5).abs() > config.box // 2 + 0.5)
    expected = volume.gather(0, pick.reshape(1, -1))[0].reshape(height, width)
    assert torch.allclose(cost[0, 0][interior], expected[interior], atol=1e-5)
    assert not torch.allclose(cost[0, 0], expected, atol=1e-5)  # the borders do mix: the box is per pixel


def test_true_depth_costs_less_than_a_wrong_one(textured_plane_window) -> None:
    window = textured_plane_window(size=32, frames=8, depth=2.0)
    keyframes = torch.tensor([0, 4])

    def cost(depth: float) -> torch.Tensor:
        return photometric_cost(window["frames"], window["K"], window["world_T_cam"], keyframes,
                                torch.full((2, 1, 32, 32), depth))

    right = cost(2.0)
    for wrong in (1.6, 2.4, 3.2):  # 20-60 % off: the frames disagree several times more
        assert float((right < cost(wrong)).float().mean()) > 0.95
        assert float(cost(wrong).median()) > 3 * float(right.median())


def test_check_keeps_a_right_depth_and_refuses_a_wrong_one_where_the_sweep_is_sure(textured_plane_window) -> None:
    window = textured_plane_window(size=32, frames=8, depth=2.0)
    keyframes = torch.tensor([0, 4])
    sweep = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    sure = sweep.confidence > 0.3
    assert sure.float().mean() > 0.8

    def agrees(candidate: float, confidence: torch.Tensor = sweep.confidence) -> torch.Tensor:
        return depth_agrees(window["frames"], window["K"], window["world_T_cam"], keyframes, sweep.depth,
                            torch.full_like(sweep.depth, candidate), confidence)

    assert bool(depth_agrees(window["frames"], window["K"], window["world_T_cam"], keyframes, sweep.depth,
                             sweep.depth, sweep.confidence).all())  # the sweep's own depth agrees with itself
    assert float(agrees(2.0)[sure].float().mean()) > 0.99  # the truth passes
    for wrong in (1.6, 2.4):
        assert float(agrees(wrong)[sure].float().mean()) < 0.01  # 20 % off is refused where the sweep is sure
    # Where the sweep found no distinct minimum (its confidence at or below min_confidence), its depth is no
    # evidence against another: nothing is refused there, however much the cost rises.
    floor = DepthCheckConfig().min_confidence
    assert bool(agrees(2.4, confidence=torch.full_like(sweep.confidence, floor)).all())
    assert float(agrees(2.4, confidence=torch.full_like(sweep.confidence, floor + 0.01))[sure].float().mean()) < 0.01


def test_margins_refuse_a_depth_ten_percent_off_and_keep_one_within_two(textured_plane_window) -> None:
    # The margins decide how far from the sweep's minimum a depth may draw the frames. On this exact plane
    # the default ones keep the truth and depths 2 % off, and refuse 10 % off wherever the sweep is sure;
    # the first margins (0.5, 0.01) let 10 % off pass everywhere, zero margins refuse the truth at a sixth
    # of the sure pixels (docs/results/depth_check.md, "Static scenes and narrower margins").
    window = textured_plane_window(size=32, frames=8, depth=2.0)
    keyframes = torch.tensor([0, 4])
    sweep = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    sure = sweep.confidence > 0.3

    def passed(candidate: float, config: DepthCheckConfig = DepthCheckConfig()) -> float:
        agrees = depth_agrees(window["frames"], window["K"], window["world_T_cam"], keyframes, sweep.depth,
                              torch.full_like(sweep.depth, candidate), sweep.confidence, config)
        return float(agrees[sure].float().mean())

    for near in (2.0, 1.96, 2.04):
        assert passed(near) > 0.99
    for off in (1.8, 2.2):
        assert passed(off) < 0.01
    assert passed(1.9) < 0.2 and passed(2.1) < 0.01
    assert passed(2.1, DepthCheckConfig(relative_margin=0.5, absolute_margin=0.01)) > 0.99  # the first margins
    assert passed(2.0, DepthCheckConfig(relative_margin=0.0, absolute_margin=0.0)) < 0.95  # no margin at all


def test_check_config_refuses_nonsense() -> None:
    for bad in (dict(relative_margin=-0.1), dict(absolute_margin=-1e-3), dict(min_confidence=1.0)):
        with pytest.raises(ValueError, match="DepthCheckConfig"):
            DepthCheckConfig(**bad)
