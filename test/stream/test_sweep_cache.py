"""KeyframeSweepCache: the keyframes a window shares with the one before are not swept again.

A textured plane at z = DEPTH seen by a camera sliding along x (a 20-frame stream, windows of 12 frames
every 4, a keyframe every 2): each window after the first sweeps only its 2 new keyframes and takes the
4 it shares from the window before, where they were swept against that window's frames. The reused
keyframes keep the depth they had there (in metres, across a change of the window's scale), are as
accurate as fresh ones, and the far-end prior still runs over all of the window's keyframes. A stamp
that comes back with another image or intrinsics, or a new sequence, is swept again.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgslrm_ros.geometry.plane_sweep import SweepConfig, SweepResult, far_end_prior, plane_sweep
from dgslrm_ros.stream.sweep_cache import KeyframeSweepCache

SIZE, FRAMES, DEPTH, FOCAL = 40, 20, 2.0, 34.0
T, STRIDE, KEYFRAMES = 12, 4, list(range(0, 12, 2))
RAW = SweepConfig(far_end_prior=False)


def _stream(patch: bool = False) -> dict:
    """frames [N, 3, H, W], K [N, 3, 3], world_T_cam [N, 4, 4], stamps [N]; with `patch`, a square fixed in
    the image (carried along with the camera: no parallax, so the farthest plane wins there)."""
    generator = torch.Generator().manual_seed(3)
    texture = torch.rand(1, 3, 48, 48, generator=generator)  # over x, y in [-3, 3]
    carried = F.interpolate(torch.rand(1, 3, 5, 5, generator=generator), size=(12, 12), mode="bilinear")[0]
    K = torch.tensor([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]]).expand(FRAMES, 3, 3).contiguous()
    poses = torch.eye(4).repeat(FRAMES, 1, 1)
    poses[:, 0, 3] = torch.linspace(-0.4, 0.4, FRAMES)
    centres = (torch.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL * DEPTH
    frames = []
    for n in range(FRAMES):
        x, y = (centres[None, :] + poses[n, 0, 3]).expand(SIZE, SIZE), centres[:, None].expand(SIZE, SIZE)
        frame = F.grid_sample(texture, torch.stack([x, y], dim=-1)[None] / 3.0, mode="bilinear", align_corners=True)[0]
        if patch:
            frame[:, 14:26, 14:26] = carried
        frames.append(frame)
    return {"frames": torch.stack(frames), "K": K, "world_T_cam": poses, "stamps": 50.0 + 0.1 * np.arange(FRAMES)}


def _window(stream: dict, start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    part = slice(start, start + T)
    return stream["frames"][part], stream["K"][part], stream["world_T_cam"][part], stream["stamps"][part]


def _keyframe(result: SweepResult, row: int) -> SweepResult:
    return SweepResult(*(value[row:row + 1] for value in dataclasses.astuple(result)))


def _equal(a: SweepResult, b: SweepResult) -> bool:
    return all(torch.equal(x, y) for x, y in zip(dataclasses.astuple(a), dataclasses.astuple(b)))


@pytest.fixture(scope="module")
def stream() -> dict:
    return _stream()


def test_overlapping_windows_sweep_only_their_new_keyframes(stream):
    cache = KeyframeSweepCache(RAW)
    results = [cache.sweep(*_window(stream, start)[:3], KEYFRAMES, _window(stream, start)[3], scale=1.0)
               for start in (0, STRIDE, 2 * STRIDE)]
    assert cache.computed == 6 + 2 + 2 and cache.reused == 4 + 4
    assert len(cache) == len(KEYFRAMES)  # bounded: the last window's keyframes
    # The first window is exactly plane_sweep; a later one's new keyframes are swept against its own frames.
    assert _equal(results[0], plane_sweep(*_window(stream, 0)[:3], KEYFRAMES, RAW))
    fresh = plane_sweep(*_window(stream, STRIDE)[:3], [8, 10], RAW)
    assert _equal(_keyframe(results[1], 4), _keyframe(fresh, 0)) and _equal(_keyframe(results[1], 5), _keyframe(fresh, 1))
    # Window 2's keyframes 0, 2, 4, 6 are window 1's 2, 4, 6, 8 (frames 4-10), as swept there.
    for row in range(4):
        assert _equal(_keyframe(results[1], row), _keyframe(results[0], row + 2))
    # ... which is not what sweeping them again in window 2 would give: other sources.
    again = plane_sweep(*_window(stream, STRIDE)[:3], [0], RAW)
    assert not torch.equal(again.depth, results[1].depth[:1])


def test_reused_keyframes_are_as_accurate_as_fresh_ones(stream):
    cache = KeyframeSweepCache()
    cache.sweep(*_window(stream, 0)[:3], KEYFRAMES, _window(stream, 0)[3], scale=1.0)
    result = cache.sweep(*_window(stream, STRIDE)[:3], KEYFRAMES, _window(stream, STRIDE)[3], scale=1.0)
    for rows in (slice(0, 4), slice(4, 6)):  # reused, fresh
        confident = result.confidence[rows] > 0.3
        assert float(confident.float().mean()) > 0.3
        error = ((result.depth[rows][confident] - DEPTH).abs() / DEPTH).median()
        assert float(error) < 0.03, float(error)


def test_depth_carries_over_in_metres_and_the_far_end_stays_far():
    stream = _stream(patch=True)
    frames, K, poses, stamps = _window(stream, 0)
    cache = KeyframeSweepCache(RAW)
    first = cache.sweep(frames, K, poses, KEYFRAMES, stamps, scale=1.0)
    far = first.depth >= RAW.far * 0.999
    assert float(far[:, :, 16:24, 16:24].float().mean()) > 0.9  # the carried patch wins at the farthest plane
    # The same keyframes in a window of twice the metres per unit (the camera travelled further): every
    # keyframe reused, its depth halved in the new units, the far-end pixels left at the far end.
    second = cache.sweep(frames, K, poses * torch.tensor([1.0, 1.0, 1.0, 0.5]), KEYFRAMES, stamps, scale=2.0)
    assert cache.reused == len(KEYFRAMES)
    assert torch.equal(second.depth[~far], (first.depth[~far] / 2.0).clamp(RAW.near, RAW.far))
    assert bool((second.depth[far] == RAW.far).all())
    assert torch.equal(second.confidence, first.confidence)
    # With the prior on, it runs over all of the window's keyframes after the merge: the patch takes the
    # plane's depth (in the new units), as plane_sweep gives it for a window swept at once.
    prior = KeyframeSweepCache()
    prior.sweep(frames, K, poses, KEYFRAMES, stamps, scale=1.0)
    merged = prior.sweep(frames, K, poses, KEYFRAMES, stamps, scale=2.0)
    assert torch.equal(merged.depth, far_end_prior(second, SweepConfig()).depth)
    patch = merged.depth[:, :, 17:23, 17:23]
    assert float(((patch - DEPTH / 2.0).abs() / (DEPTH / 2.0)).median()) < 0.05


def test_another_image_intrinsics_or_sequence_is_swept_again(stream):
    frames, K, poses, stamps = _window(stream, 0)
    cache = KeyframeSweepCache(RAW)
    cache.sweep(frames, K, poses, KEYFRAMES, stamps, scale=1.0, sequence=0)
    cache.sweep(frames, K, poses, KEYFRAMES, stamps, scale=1.0, sequence=1)  # stamp jump / reset
    assert cache.reused == 0
    cache.sweep(frames.flip(-1), K, poses, KEYFRAMES, stamps, scale=1.0, sequence=1)  # a bag looping back
    assert cache.reused == 0
    zoomed = K.clone()
    zoomed[:, :2, :2] *= 1.1
    cache.sweep(frames.flip(-1), zoomed, poses, KEYFRAMES, stamps, scale=1.0, sequence=1)
    assert cache.reused == 0 and cache.computed == 4 * len(KEYFRAMES)
    with pytest.raises(ValueError, match="one stamp per frame"):
        cache.sweep(frames, K, poses, KEYFRAMES, stamps[:-1], scale=1.0)
    with pytest.raises(ValueError, match="positive scale"):
        cache.sweep(frames, K, poses, KEYFRAMES, stamps, scale=0.0)
