"""flow_pairs: DIS flow of frame pairs dealt over threads gives the flows of one estimator in order."""
from __future__ import annotations

import numpy as np
import pytest

from dgslrm_ros.geometry.benchmark import benchmark_window
from dgslrm_ros.geometry.flow_tracks import FlowConfig, flow_estimator, flow_pair, flow_pairs, gray_uint8

cv2 = pytest.importorskip("cv2")  # the classical cues need opencv-python-headless (a project dependency)


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    gray = gray_uint8(benchmark_window(48, frames=8)["frames"])
    return list(zip(gray[:-1], gray[1:]))  # 7 pairs: an odd count, so the threads get unequal shares


@pytest.mark.parametrize("workers", [2, 3, 16])
def test_pairs_over_threads_are_the_serial_flows(pairs, workers: int) -> None:
    estimator = flow_estimator(48, FlowConfig())
    serial = [flow_pair(estimator, a, b) for a, b in pairs]
    threaded = flow_pairs(pairs, FlowConfig(), workers=workers)
    assert len(threaded) == len(serial)
    for (forward, backward), (expected_forward, expected_backward) in zip(threaded, serial):
        assert np.array_equal(forward, expected_forward) and np.array_equal(backward, expected_backward)
    assert max(np.abs(f).max() for f, _ in threaded) > 0.5  # the stream drifts: real flow was computed


def test_no_pairs_and_a_failing_pair(pairs) -> None:
    assert flow_pairs([], workers=2) == []
    bad = list(pairs)
    bad[4] = (pairs[4][0], pairs[4][1][:-3])  # images of different sizes: OpenCV refuses the pair
    with pytest.raises(cv2.error):
        flow_pairs(bad, workers=2)  # the worker's error reaches the caller, no pair is left out silently
