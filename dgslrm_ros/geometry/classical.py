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
# An instant is drawn from the keyframes around it (DeformableGaussians.keyframe_support): a keyframe's
# Gaussians fade out over 1.5 keyframe spacings, so a frame between two keyframes shows mostly those two,
# not all six with their imperfect depth and motion composited (as DGS-LRM draws them), and each can be
# nearly opaque. Chosen on the real hand-held clip's held-out frames (64 px, docs/results/real) and checked
# on held-out synthetic windows (docs/training.md): every keyframe at opacity 0.35 (before) 21.74 dB;
# support 1.5 at 0.8 23.77 dB, at 0.95 23.58; support 1 at 0.95 23.77 (but a lone keyframe after the last
# one leaves holes: 21.0 dB at the input frames against 22.9); support 2 at 0.95 23.26; the two nearest
# keyframes at 0.6 23.56.
KEYFRAME_SUPPORT = 1.5
OPACITY = 0.8
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
