"""The `classical` method: deformable Gaussians from the window's cues alone, no learned weights.

Per keyframe pixel: the pixel's colour, an isotropic footprint-sized scale at the sweep depth, a fixed
opacity, identity rotation, and the gated lifted motion as its deformation. The geometry-primed
network predicts residuals on exactly these fields, so an untrained network reproduces them.
"""
from __future__ import annotations

import torch
from torch import Tensor

from dgslrm_ros.geometry.cues import GeometryCues

COLOR_EPS = 0.02  # colours are clamped away from 0 and 1 so a logit residual stays trainable there
# Every keyframe's Gaussians are composited at every instant, so a render between frames mixes six
# keyframes whose depth and motion are imperfect. On the real hand-held clip's held-out frames (64 px,
# docs/results/real) a soft blend beat an opaque one: footprint/opacity 0.7/0.8 -> 20.45 dB,
# 0.6/0.35 -> 21.54 dB, 0.5/0.25 -> 21.28 dB, 1.6/0.98 -> 17.9 dB.
OPACITY = 0.35
FOOTPRINT = 0.6  # scale = this x the width of one pixel at the Gaussian's depth


def classical_fields(cues: GeometryCues, keyframe_rgb: Tensor, keyframe_K: Tensor, near: float, far: float,
                     scale_max: float) -> dict[str, Tensor]:
    """Gaussian fields of every keyframe pixel (leading dims [..., Kf] shared by all inputs).

    keyframe_rgb [..., Kf, 3, H, W] in [0, 1], keyframe_K [..., Kf, 3, 3]; the cues' tensors carry the
    same leading dims. -> depth, colors, quats, scales, opacities [..., Kf, C, H, W], offsets
    [..., Kf, T, 3, H, W], gate [..., Kf, 1, H, W].
    """
    depth = cues.depth.float().clamp(near, far)
    focal = keyframe_K[..., 0, 0].float()[..., None, None, None]  # [..., Kf, 1, 1, 1]
    scales = (FOOTPRINT * depth / focal).clamp(max=scale_max).expand(*depth.shape[:-3], 3, *depth.shape[-2:])
    quats = torch.zeros(*depth.shape[:-3], 4, *depth.shape[-2:], device=depth.device)
    quats[..., 0, :, :] = 1.0
    return dict(
        depth=depth,
        colors=keyframe_rgb.float().clamp(COLOR_EPS, 1.0 - COLOR_EPS),
        quats=quats,
        scales=scales.contiguous(),
        opacities=torch.full_like(depth, OPACITY),
        offsets=cues.offsets().float(),
        gate=cues.gate.float(),
    )
