"""Keyframe depth of independently moving regions: one robust depth per region instead of the sweep's.

The plane sweep assumes a static scene, so on pixels that move on their own its per-pixel depth is
mostly wrong (on 40 training `dynamic` windows at 64 px: mean L1 2.7 normalised units on moving pixels
against 1.5 on still ones, AbsRel 1.5). Yet enough of a region's pixels land near the right depth that
the region's median is far better. Motion itself leaves depth undetermined (an object moving at constant
velocity seen from a camera moving at constant velocity fits every depth along its rays), so the region
and a robust statistic over it are what this module adds:

    region  = pixels the gate flags (seeds), grown through 8-connected pixels whose static-fit residual
              still shows some motion evidence (hysteresis), at most `grow_steps` pixels from a seed;
    depth   = the median sweep depth of each connected region, given to its seeds and to its pixels where
              the sweep is not confident (a confident static surface inside the grown part keeps its own);
    limit   = every pixel that shows motion at most the window's near quantile of depth (motion_depth_quantile).

Measured (training windows for the choices, held-out windows in docs/results/moving_depth.md): see
MovingDepthConfig. On held-out windows it trades the sweep's median AbsRel (0.107 -> 0.123) and
0.2 dB between frames for the mean AbsRel (0.63 -> 0.48) and the motion of moving points (1.32x -> 1.01x
standing still). The medians run in torch on the inputs' device, the regions in scipy on the CPU; no
learned weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


@dataclass(frozen=True)
class MovingDepthConfig:
    """How moving regions are found and which of their pixels take the region's depth.

    Tuned on 40 training windows (train64-dynamic-s6), mean depth L1 on moving / still / all pixels
    (sweep alone 2.71 / 1.53 / 1.86): the gate's pixels alone 2.16 / 1.53 / 1.71 (they hold 40 % of the
    moving pixels); grown without a limit 1.00 / 1.69 / 1.50 (grows into still surfaces); grown at most
    12 px and replacing only unconfident pixels (this) 1.07 / 1.50 / 1.38. A depth from the static ring
    around a region (its 10-50 % quantile), from the static pixels below it (contact with the floor), or
    min(region median, ring) did no better than the median; see docs/results/moving_depth.md.
    """

    enabled: bool = True
    seed_gate: float = 0.5  # gate above which a pixel seeds a moving region
    grow_residual_px: float = 0.75  # a region grows into pixels whose static-fit residual exceeds this
    grow_steps: int = 12  # at most this many pixels (8-connected steps) from a seed
    max_confidence: float = 0.6  # grown pixels with sweep confidence below this take the region's depth
    # Pixels that show motion (gate > 0) are put no farther than this quantile of the window's keyframe depth
    # (1 = no limit). Their depth is the least observed of the window (the sweep assumes a static scene, a
    # still camera resolves none), and its error counts twice: the lifted motion scales with it, so a depth
    # too far inflates the motion without bound, while one too near errs by at most the motion itself (never
    # worse than standing still across the view). Where they err, they err far: moving objects pass in front
    # of the static scene. 24 training-split `dynamic` windows (seeds 12,000 on, 64 px), no limit -> 0.25:
    # classical median / mean AbsRel 0.203 / 0.446 -> 0.188 / 0.428, moving-point flow 0.300 -> 0.284 m,
    # all-pixel flow 0.084 -> 0.074, track EPE 1.638 -> 1.624 m, between frames / input 21.05 / 29.25 ->
    # 21.11 / 29.37 dB (network: moving flow 0.281 -> 0.273, between 21.26 -> 21.34); on 26 pan / still
    # training windows the published moving tracks 1.20x -> 0.87x standing still (docs/results/moving_depth.md).
    # Limiting only the lifting depth (not the Gaussians') moved the motion off what the renders draw
    # (classical between frames -0.07 dB). At 128 px, where the tuned gate misfires on a quarter of the still
    # pixels, it cost classical's median AbsRel (held out 0.061 -> 0.082 on translating windows) until the
    # regions and the limit read a gate grown with the resolution (below: 0.049).
    motion_depth_quantile: float = 0.25
    # The gate these regions and the limit read has its threshold grown on images wider than 64 px, as
    # (width / 64) ** this (lifting.gate_threshold; 5.05 px at 128 px); the motion itself keeps the tuned gate.
    # A still pixel's motion evidence grows with the resolution (a depth error's parallax in px with it, the
    # flow's error more slowly): at 128 px the 3 px gate opened on a quarter of the still pixels (64 px: a
    # tenth), and the regions and the limit then moved their depth. The renders want the motion of every
    # pixel the tuned gate finds; the depth only the pixels that certainly move (one grown gate for both lost
    # 0.1-0.2 dB between frames and 0.4 dB on the real cockatoo clip). 16 training-split `dynamic` windows at
    # 128 px, `classical`, tuned gate everywhere -> this: median / mean AbsRel 0.199 / 0.479 -> 0.095 / 0.404,
    # track EPE 1.744 -> 1.399 m, between / novel frames 20.63 / 14.62 -> 21.09 / 15.21 dB. Held out (32,
    # 128 px): median 0.095 -> 0.050, track 1.324 -> 1.215 m, between / novel +0.14 / +0.36 dB, moving and
    # all-pixel flow +0.008 / +0.006 m; the shipped network's geometry loses a little (track EPE 0.643 ->
    # 0.676 m: it was trained at 64 px, where the two gates are one). docs/results/moving_motion.md.
    region_threshold_exponent: float = 0.75

    def __post_init__(self) -> None:
        if not 0.0 < self.motion_depth_quantile <= 1.0:
            raise ValueError(f"MovingDepthConfig: need 0 < motion_depth_quantile <= 1, got "
                             f"{self.motion_depth_quantile}")
        if self.region_threshold_exponent < 0.0:
            raise ValueError(f"MovingDepthConfig: need region_threshold_exponent >= 0, got "
                             f"{self.region_threshold_exponent}")
        if not 0.0 < self.seed_gate <= 1.0 or self.grow_residual_px < 0.0 or self.grow_steps < 0:
            raise ValueError(f"MovingDepthConfig: need 0 < seed_gate <= 1, grow_residual_px >= 0 and grow_steps >= 0, "
                             f"got {self.seed_gate}, {self.grow_residual_px}, {self.grow_steps}")


_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity


def moving_regions(gate: Tensor, residual: Tensor, config: MovingDepthConfig = MovingDepthConfig()) -> Tensor:
    """Seeds (gate > seed_gate) grown through motion evidence: gate, residual [N, 1, H, W] -> labels
    [N, 1, H, W] long, 0 off the regions, one positive id per 8-connected region (unique over the batch).

    On the CPU with scipy.ndimage (a geodesic dilation and a labelling in C, under 1 ms per 64 px
    keyframe; max-label propagation in torch took 60 ms per window): only two small masks cross devices.
    """
    seeds = (gate > config.seed_gate).cpu().numpy()[:, 0]  # [N, H, W]
    grow = seeds | (residual > config.grow_residual_px).cpu().numpy()[:, 0]
    labels = np.zeros(seeds.shape, dtype=np.int64)
    offset = 0
    for i in range(seeds.shape[0]):
        region = seeds[i]
        if config.grow_steps > 0 and region.any():
            region = ndimage.binary_dilation(region, structure=_EIGHT, iterations=config.grow_steps, mask=grow[i])
        found, count = ndimage.label(region, structure=_EIGHT)
        labels[i] = np.where(found > 0, found + offset, 0)
        offset += count
    return torch.from_numpy(labels)[:, None].to(gate.device)


def region_medians(values: Tensor, labels: Tensor) -> Tensor:
    """Median of values over each labelled region, at every labelled pixel (lower median for even counts).

    values, labels [N, 1, H, W] -> [N, 1, H, W] (unlabelled pixels keep their value). One sort by value,
    one stable sort by label: each region's values in order, the middle read off by the region's start.
    """
    flat, ids = values.reshape(-1), labels.reshape(-1)
    inside = ids > 0
    if not bool(inside.any()):
        return values.clone()
    v, l = flat[inside], ids[inside]
    by_value = torch.argsort(v)
    by_label = torch.sort(l[by_value], stable=True).indices
    order = by_value[by_label]  # pixels grouped by label, ascending value within each group
    sorted_labels = l[order]
    _, inverse, counts = torch.unique_consecutive(sorted_labels, return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    medians = v[order][starts + (counts - 1) // 2]  # [regions]
    region_of_pixel = torch.empty_like(inverse)
    region_of_pixel[order] = inverse
    out = flat.clone()
    out[inside] = medians[region_of_pixel]
    return out.reshape(values.shape)


def moving_depth(depth: Tensor, confidence: Tensor, gate: Tensor, residual: Tensor,
                 config: MovingDepthConfig = MovingDepthConfig()) -> Tensor:
    """Keyframe depth with each moving region's pixels set to the region's median sweep depth, and every
    pixel that shows motion (gate > 0) no farther than the window's `motion_depth_quantile`.

    depth (sweep z-depth), confidence (sweep), gate, residual (static fit, px) all [Kf, 1, H, W]
    -> depth [Kf, 1, H, W]. Outside the moving regions and the pixels with gate > 0 the sweep's depth is
    returned unchanged.
    """
    if not config.enabled:
        return depth
    for name, tensor in (("confidence", confidence), ("gate", gate), ("residual", residual)):
        if tensor.shape != depth.shape:
            raise ValueError(f"moving_depth: expected {name} of the depth's shape {tuple(depth.shape)}, got "
                             f"{tuple(tensor.shape)}")
    labels = moving_regions(gate.float(), residual.float(), config)
    medians = region_medians(depth.float(), labels)
    take = (labels > 0) & ((gate > config.seed_gate) | (confidence < config.max_confidence))
    out = torch.where(take, medians.to(depth.dtype), depth)
    if config.motion_depth_quantile < 1.0:
        limit = torch.quantile(out.float().reshape(-1), config.motion_depth_quantile).to(out.dtype)
        out = torch.where(gate > 0, torch.minimum(out, limit), out)
    return out
