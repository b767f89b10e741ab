"""DIS flow of frame pairs the previous window already computed (consecutive windows overlap).

The node's windows share `window_frames - window_stride` frames (12 of 24 by default), so 11 of a
window's 23 consecutive-pair flows were computed for the window before. The cache keeps the pairs of
the last window only (bounded: window_frames - 1 pairs), keyed by the two frame stamps, and reuses a
pair only when both grey images are also byte-identical to the ones it was computed from: a reused
flow is exactly the flow recomputation would give (DIS keeps no state between pairs). A new window
sequence (stamp jump, stamps going backwards, reset) clears it.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.geometry.flow_tracks import FlowConfig, flow_pairs, gray_uint8, stack_flows
from dgslrm_ros.stream.window_cache import PreviousWindowCache

PairKey = tuple[float, float]
Entry = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # grey a, grey b, flow a->b, flow b->a


class PairFlowCache(PreviousWindowCache[PairKey, Entry]):
    """pairwise_flow with the previous window's pairs reused; one worker thread uses it."""

    def __init__(self, config: FlowConfig = FlowConfig()) -> None:
        super().__init__()
        self.config = config

    def pairwise(self, frames: Tensor, stamps: np.ndarray, sequence: int = 0) -> tuple[Tensor, Tensor]:
        """frames [T, 3, H, W] in [0, 1], stamps [T] (s), the window's sequence -> (forward, backward)
        [T-1, 2, H, W] as flow_tracks.pairwise_flow(frames, config) gives them."""
        if len(stamps) != frames.shape[0]:
            raise ValueError(f"PairFlowCache.pairwise: expected one stamp per frame ({frames.shape[0]}), "
                             f"got {len(stamps)}")
        self._start_window(sequence)
        gray = gray_uint8(frames)
        keys = [(float(a), float(b)) for a, b in zip(stamps[:-1], stamps[1:])]
        entries: list[Entry | None] = []
        for key, a, b in zip(keys, gray[:-1], gray[1:]):
            entry = self._entries.get(key)
            reusable = entry is not None and np.array_equal(entry[0], a) and np.array_equal(entry[1], b)
            entries.append(entry if reusable else None)
        missing = [k for k, entry in enumerate(entries) if entry is None]
        flows = flow_pairs([(gray[k], gray[k + 1]) for k in missing], self.config)  # over torch's threads
        for k, (forward, backward) in zip(missing, flows):
            entries[k] = (gray[k], gray[k + 1], forward, backward)
        self.computed += len(missing)
        self.reused += len(entries) - len(missing)
        self._entries = dict(zip(keys, entries))  # only this window's pairs: the next window can reuse no others
        return stack_flows([(e[2], e[3]) for e in entries], *frames.shape[-2:], frames.device)
