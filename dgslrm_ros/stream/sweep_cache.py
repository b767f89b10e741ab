"""Plane-sweep depth of the keyframes a window shares with the window before (consecutive windows overlap).

At the defaults consecutive windows share 12 of their 24 frames, and with them half of their keyframes
(window_stride is a multiple of keyframe_stride). The sweep of a keyframe is about 25 ms of the cues'
~300 ms at 64 px, per keyframe, so the node sweeps only the keyframes that are new to it and takes the
others from the window before, where they were swept against that window's frames (the issue's "and
recent stream history in the node"). Unlike the reused DIS flows (flow_cache.py) a reused sweep is not
the bits recomputation would give: its sources were the earlier window's frames around the keyframe.

A keyframe is reused only when its stamp, image and intrinsics are exactly the ones it was swept with;
a new sequence (stamp jump, reset) clears the cache, and only the last window's keyframes are kept.
Depth is stored in metres (the normalised depth times the window's scale) and converted into the new
window's units; a pixel that won at the farthest plane (no parallax seen) stays at the farthest plane.
The far-end prior (plane_sweep.far_end_prior) is applied afterwards over all of the window's keyframes,
reused and new, exactly as plane_sweep applies it to a window swept at once.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.geometry.plane_sweep import SweepConfig, SweepResult, at_far_end, far_end_prior, plane_sweep
from dgslrm_ros.stream.window_cache import PreviousWindowCache


@dataclass(frozen=True)
class _SweptKeyframe:
    image: Tensor  # [3, H, W] the keyframe as swept
    K: Tensor  # [3, 3]
    scale: float  # metres per normalised unit of the window it was swept in
    result: SweepResult  # [1, 1, H, W] fields, before the far-end prior


def _tensors(result: SweepResult) -> tuple[Tensor, ...]:
    """The result's fields in order, the tensors themselves (dataclasses.astuple would deep-copy each)."""
    return tuple(getattr(result, field.name) for field in dataclasses.fields(result))


class KeyframeSweepCache(PreviousWindowCache[float, _SweptKeyframe]):
    """plane_sweep for a window's keyframes, with those the previous window swept reused; one worker thread."""

    def __init__(self, config: SweepConfig = SweepConfig()) -> None:
        super().__init__()
        self.config = config
        self._raw_config = dataclasses.replace(config, far_end_prior=False)

    def sweep(self, frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframes: list[int], stamps: np.ndarray,
              scale: float, sequence: int = 0) -> SweepResult:
        """frames [T, 3, H, W] in [0, 1], K [T, 3, 3], world_T_cam [T, 4, 4] (normalised), keyframes (window
        indices), stamps [T] (s), scale (metres per normalised unit) -> SweepResult [Kf, 1, H, W] in the
        window's normalised units, as plane_sweep gives it but for the sources of the reused keyframes."""
        if len(stamps) != frames.shape[0]:
            raise ValueError(f"KeyframeSweepCache.sweep: expected one stamp per frame ({frames.shape[0]}), "
                             f"got {len(stamps)}")
        if not scale > 0:
            raise ValueError(f"KeyframeSweepCache.sweep: expected a positive scale, got {scale}")
        self._start_window(sequence)
        frames = frames.float()
        reusable = {index: self._entries.get(float(stamps[index])) for index in keyframes}
        reusable = {index: entry for index, entry in reusable.items() if entry is not None
                    and torch.equal(entry.image, frames[index]) and torch.equal(entry.K, K[index].float())}
        new = [index for index in keyframes if index not in reusable]
        swept = plane_sweep(frames, K, world_T_cam, new, self._raw_config) if new else None
        parts: list[SweepResult] = []
        for index in keyframes:
            if index in reusable:
                parts.append(self._in_units(reusable[index], scale))
            else:
                row = new.index(index)
                parts.append(SweepResult(*(value[row:row + 1] for value in _tensors(swept))))
        self.reused += len(reusable)
        self.computed += len(new)
        self._entries = {float(stamps[index]): _SweptKeyframe(frames[index].clone(), K[index].float().clone(), scale, part)
                         for index, part in zip(keyframes, parts)}
        raw = SweepResult(*(torch.cat(values) for values in zip(*(_tensors(part) for part in parts))))
        return far_end_prior(raw, self.config) if self.config.far_end_prior else raw

    def _in_units(self, entry: _SweptKeyframe, scale: float) -> SweepResult:
        """A reused keyframe's sweep with its depth in the units of a window of `scale` metres per unit."""
        if entry.scale == scale:
            return entry.result
        cfg = self.config
        depth = (entry.result.depth * (entry.scale / scale)).clamp(cfg.near, cfg.far)
        depth = torch.where(at_far_end(entry.result.depth, cfg), torch.full_like(depth, cfg.far), depth)
        return dataclasses.replace(entry.result, depth=depth)
