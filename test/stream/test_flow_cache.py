"""PairFlowCache: the previous window's pair flows reused only where they are the same flows.

Bit-for-bit against flow_tracks.pairwise_flow on overlapping windows, bounded to one window's pairs,
cleared by a new sequence, and never fooled by a stamp that comes back with another image. Then the
node's cues stage with the cache against geometry.cues.compute_cues without it (given the same keyframe
sweeps: the node also reuses those, test_sweep_cache.py), window after window.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslrm_ros.geometry.benchmark import benchmark_window
from dgslrm_ros.geometry.flow_tracks import pairwise_flow
from dgslrm_ros.stream.flow_cache import PairFlowCache

pytest.importorskip("cv2")  # the classical cues need opencv-python-headless (a project dependency)

T, STRIDE = 8, 4


@pytest.fixture(scope="module")
def stream():
    """A 16-frame textured stream drifting sideways, and its stamps (10 Hz)."""
    frames = benchmark_window(32, frames=16)["frames"]
    return frames, 100.0 + 0.1 * np.arange(16)


def _equal(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_overlapping_windows_reuse_exactly_the_shared_pairs(stream):
    frames, stamps = stream
    cache = PairFlowCache()
    for start in (0, STRIDE, 2 * STRIDE):
        window = slice(start, start + T)
        flows = cache.pairwise(frames[window], stamps[window])
        assert _equal(flows, pairwise_flow(frames[window]))  # the same bits as recomputing
        assert len(cache) == T - 1  # bounded: this window's pairs only
    assert cache.computed == (T - 1) + 2 * STRIDE and cache.reused == 2 * (T - 1 - STRIDE)


def test_a_new_sequence_or_another_image_at_a_stamp_is_recomputed(stream):
    frames, stamps = stream
    cache = PairFlowCache()
    cache.pairwise(frames[:T], stamps[:T], sequence=0)
    cache.pairwise(frames[STRIDE:STRIDE + T], stamps[STRIDE:STRIDE + T], sequence=1)  # stamp jump / reset
    assert cache.reused == 0
    # Same stamps again (a bag looping back), other images: nothing reused, flows of the new images.
    other = frames[STRIDE:STRIDE + T].flip(-1)
    flows = cache.pairwise(other, stamps[STRIDE:STRIDE + T], sequence=1)
    assert cache.reused == 0 and _equal(flows, pairwise_flow(other))
    with pytest.raises(ValueError, match="one stamp per frame"):
        cache.pairwise(frames[:T], stamps[:T - 1])


def test_the_nodes_cues_equal_compute_cues_without_the_cache(make_pipeline, kit):
    """Three overlapping windows and one after a stamp jump through the real pipeline (classical method)."""
    from dgslrm_ros.geometry.cues import compute_cues
    from dgslrm_ros.model.classical import ClassicalReconstructor
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.stream.sweep_cache import KeyframeSweepCache

    model = ClassicalReconstructor(ModelConfig.preset("tiny", window_frames=T, keyframe_stride=4)).eval()
    pipeline = make_pipeline(model=model, method="classical", window_frames=T, window_stride=STRIDE)
    stamps = [0.1 * i for i in range(T + 2 * STRIDE)] + [5.0 + 0.1 * i for i in range(T)]
    windows = []
    for i, t in enumerate(stamps):
        pipeline.add_pose(t, kit.pose_at(t), "world")
        pipeline.add_image(t, kit.image(i % 5))
        while (window := pipeline.pop_window()) is not None:
            windows.append(window)
    reconstruction = pipeline.reconstruction
    assert len(windows) >= 4 and windows[-1].sequence != windows[0].sequence
    sweeps = KeyframeSweepCache()  # the node's keyframe sweeps, replayed beside it
    for window in windows:
        prepared = reconstruction._prepare(window)
        cached = reconstruction._cues(prepared, window.sequence)
        frames, K, poses = (value[0] for value in reconstruction._inputs(prepared))
        sweep = sweeps.sweep(frames, K, poses, [0, 4], prepared.stamps, prepared.normalization.scale, window.sequence)
        plain = compute_cues(frames, K, poses, torch.arange(0, T, 4), sweep=sweep)
        for name in ("depth", "fit_depth", "fit_residual", "gate", "lifted"):
            assert torch.equal(getattr(cached, name)[0], getattr(plain, name)), name
    assert reconstruction._flows.reused > 0 and reconstruction._sweeps.reused == sweeps.reused > 0
