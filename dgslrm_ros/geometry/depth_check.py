"""Photometric check of a learned depth against the window it was predicted from.

A geometry-primed network moves the sweep's depth by a learned residual. Where its training windows
resemble the input, that residual is right more often than the sweep (synthetic held-out windows:
median AbsRel 0.069 against 0.124). On real video it is not: on the hand-held clip the network's
depth raised the window's mean matching cost by 35-52 % (synthetic windows: a median of 2 %), and its
held-out frames were 1.8 dB below the sweep's depth (docs/results/depth_check.md). The frames
themselves can tell: a depth that makes the window's frames disagree much more than the sweep's depth
did, at a pixel where the sweep found a minimum at all, is refused there, and the sweep's depth stays.

Pure function of the window; no learned weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgslrm_ros.geometry.plane_sweep import SweepConfig, photometric_cost


@dataclass(frozen=True)
class DepthCheckConfig:
    """When a candidate depth is refused: cost(candidate) > cost(base) x (1 + relative) + absolute at a
    pixel whose sweep confidence is above min_confidence.

    First chosen (0.5, 0.01) on 20 training windows (10 `dynamic`, 10 `wide`, depth AbsRel against the ground
    truth) and on the first real clip (held-out PSNR), docs/results/depth_check.md: every rule costs some
    synthetic depth (the network's best corrections are where the sweep was photometrically fooled), looser
    margins less. Narrowed to (0.1, 0.002) once static scenes were measured ("Static scenes and narrower
    margins" there): on 16 area-sampled `static` windows the network's checked depth drew the frames
    between the inputs 1.3 dB worse than its cue depth, and the real clips are mostly static scenes.
    Chosen on 16 training-split windows each of `static` and `dynamic` and on the cube and cockatoo clips;
    (0, 0) drew a little better still but raised the `dynamic` windows' mean AbsRel by half (0.146 ->
    0.223), (0.1, 0.002) by a tenth (0.146 -> 0.161).
    """

    relative_margin: float = 0.1
    absolute_margin: float = 0.002  # colour units (0..1), the sweep's SAD scale
    min_confidence: float = 0.05  # below it the sweep's cost curve has no distinct minimum to argue with

    def __post_init__(self) -> None:
        if self.relative_margin < 0 or self.absolute_margin < 0 or not 0 <= self.min_confidence < 1:
            raise ValueError(f"DepthCheckConfig: need margins >= 0 and 0 <= min_confidence < 1, got "
                             f"{self.relative_margin}, {self.absolute_margin}, {self.min_confidence}")


def depth_agrees(frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor, base_depth: Tensor,
                 candidate_depth: Tensor, sweep_confidence: Tensor, config: DepthCheckConfig = DepthCheckConfig(),
                 sweep: SweepConfig = SweepConfig()) -> Tensor:
    """Where the candidate depth may replace the base depth -> bool [Kf, 1, H, W].

    frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4] of one window; keyframe_index [Kf]; base_depth,
    candidate_depth and sweep_confidence [Kf, 1, H, W] (the cues' depth and confidence, the network's depth).
    """
    with torch.no_grad():
        both = photometric_cost(frames, K, world_T_cam, keyframe_index, torch.cat([base_depth, candidate_depth], dim=1),
                                sweep)  # [Kf, 2, H, W]: one pass over the sources for both maps
        base, candidate = both[:, :1], both[:, 1:]
        worse = candidate > base * (1.0 + config.relative_margin) + config.absolute_margin
        return ~(worse & (sweep_confidence.float() > config.min_confidence))
