"""Which frames the plane sweep compares a keyframe with: spread over the window, but only over the
frames that see the keyframe's scene from nearly the same direction (SweepConfig.max_source_angle_deg)."""
from __future__ import annotations

import math

import pytest
import torch

from dgslrm_ros.geometry.plane_sweep import SweepConfig, plane_sweep, select_sources, source_span, viewing_angles

CENTRE_DEPTH = 2.0


def _orbit_poses(frames: int, step_deg: float) -> torch.Tensor:
    """[T, 4, 4] cameras on a circle of radius CENTRE_DEPTH around the point (0, 0, CENTRE_DEPTH), each looking
    at it (OpenCV axes: z forward, y down), `step_deg` apart around the vertical axis."""
    poses = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    for n in range(frames):
        a = math.radians(step_deg * n)
        forward = torch.tensor([-math.sin(a), 0.0, math.cos(a)], dtype=torch.float64)
        down = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        poses[n, :3, 0], poses[n, :3, 1], poses[n, :3, 2] = torch.linalg.cross(down, forward), down, forward
        poses[n, :3, 3] = torch.tensor([0.0, 0.0, CENTRE_DEPTH], dtype=torch.float64) - CENTRE_DEPTH * forward
    return poses


def test_viewing_angle_is_the_orbit_angle() -> None:
    poses = _orbit_poses(9, 3.0)
    angles = viewing_angles(poses, 4, CENTRE_DEPTH)
    expected = 3.0 * (torch.arange(9, dtype=torch.float64) - 4).abs()
    assert torch.allclose(angles, expected, atol=1e-6)


def test_a_fast_camera_keeps_its_sources_within_the_cap() -> None:
    poses = _orbit_poses(24, 1.0)  # 23 deg around the centre over the window
    reference = 8
    span = source_span(viewing_angles(poses, reference, CENTRE_DEPTH), reference, 4.0, 6)
    assert span == (4, 12)
    sources = select_sources(24, reference, 6, span)
    assert len(sources) == 6 and reference not in sources
    assert all(abs(n - reference) <= 4 for n in sources)
    assert min(sources) == 4 and max(sources) == 12  # still spread to the span's ends


def test_a_narrow_cap_still_gives_the_nearest_sources() -> None:
    poses = _orbit_poses(24, 10.0)  # every neighbour is beyond the cap
    assert source_span(viewing_angles(poses, 0, CENTRE_DEPTH), 0, 4.0, 6) == (0, 6)  # the window's start: one side
    assert source_span(viewing_angles(poses, 12, CENTRE_DEPTH), 12, 4.0, 6) == (9, 15)


def test_a_slow_camera_spreads_its_sources_over_the_whole_window() -> None:
    poses = _orbit_poses(24, 0.1)
    reference = 8
    span = source_span(viewing_angles(poses, reference, CENTRE_DEPTH), reference, 4.0, 6)
    assert span == (0, 23)
    assert select_sources(24, reference, 6, span) == select_sources(24, reference, 6)
    assert min(select_sources(24, reference, 6, span)) == 0 and max(select_sources(24, reference, 6, span)) == 23


def _slanted_floor_window(frames: int, step_deg: float, size: int = 48) -> tuple[torch.Tensor, ...]:
    """An orbit around a textured floor seen obliquely, drawn exactly (colour = texture where the ray meets
    the floor y = 1): frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4], z-depth [T, 1, H, W]."""
    poses = _orbit_poses(frames, step_deg)
    tilt = math.radians(25.0)  # every camera pitched down toward the floor, about its own x axis
    pitch = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(tilt), -math.sin(tilt)], [0.0, math.sin(tilt), math.cos(tilt)]],
                         dtype=torch.float64)
    poses[:, :3, :3] = poses[:, :3, :3] @ pitch.t()
    focal = float(size)
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    v, u = torch.meshgrid(torch.arange(size, dtype=torch.float64) + 0.5, torch.arange(size, dtype=torch.float64) + 0.5,
                          indexing="ij")
    rays_cam = torch.stack([(u - size / 2) / focal, (v - size / 2) / focal, torch.ones_like(u)], dim=-1)  # z = 1
    images, depths = [], []
    for n in range(frames):
        rays = rays_cam @ poses[n, :3, :3].t()
        z = (1.0 - poses[n, 1, 3]) / rays[..., 1]  # the ray parameter (= z-depth) where y = 1
        hit = poses[n, :3, 3] + z[..., None] * rays
        x, w = hit[..., 0], hit[..., 2]
        images.append(torch.stack([0.5 + 0.25 * torch.sin(23.0 * x + 9.0 * w + c) + 0.2 * torch.sin(17.0 * w - 6.0 * x + 2 * c)
                                   for c in range(3)]).clamp(0, 1))
        depths.append(z[None])
    return (torch.stack(images).float(), K.expand(frames, 3, 3).float().clone(), poses.float(), torch.stack(depths).float())


def test_the_cap_makes_the_sweep_of_a_fast_orbit_more_accurate() -> None:
    """An oblique floor seen by a camera turning 2 deg a frame (46 deg over the window): sources from far
    around no longer match a fronto-parallel window, so the capped sweep's depth is nearer the truth (median
    AbsRel 0.011 against 0.032 uncapped, when written)."""
    frames, K, poses, depth = _slanted_floor_window(24, 2.0)
    keyframes = torch.arange(0, 24, 4)
    errors = {}
    for cap in (4.0, 180.0):
        result = plane_sweep(frames, K, poses, keyframes, SweepConfig(max_source_angle_deg=cap, far_end_prior=False))
        gt = depth[keyframes]
        errors[cap] = float(((result.depth - gt).abs() / gt).median())
    assert errors[4.0] < 0.5 * errors[180.0], errors


@pytest.mark.parametrize("bad", [dict(max_source_angle_deg=0.0), dict(max_source_angle_deg=181.0), dict(source_angle_depth=0.0)])
def test_sweep_config_refuses_a_nonsense_cap(bad: dict) -> None:
    with pytest.raises(ValueError):
        SweepConfig(**bad)
