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
# An instant is drawn from the keyframes around it (DeformableGaussians.keyframe_support/_floor): a
# keyframe's opacity fades over one keyframe spacing. Renders composite two layers (render.render_instant):
# the keyframes around the instant in front, every keyframe behind where those leave the view uncovered,
# so between frames the near keyframes decide and off the camera path the others still fill in. DGS-LRM
# draws every keyframe at every instant: with our imperfect depth and motion, six slightly wrong copies.
# A single-pass viewer of the `gaussians` cloud gets one set: the others at keyframe_floor of their opacity.
# Measured (classical, 64 px; real = the hand-held clip's held-out frames, docs/results/real; synthetic =
# 16 held-out `dynamic` windows, between-frames / novel-view PSNR):
#   every keyframe, opacity 0.35 (before):     real 21.74 dB, synthetic 18.61 / 14.18
#   one set, fade to 0 (opacity 0.8-0.95):     real 23.6-23.8,  synthetic 18.79 / 13.01 (off-path views lost)
#   one set, floor 0.3 (opacity 0.8):          real 22.32,      synthetic 18.87 / 14.08
#   two layers, support 1.5 (opacity 0.8):    real 24.73,      synthetic 19.95 / 14.99
#   two layers, support 1.0 (opacity 0.8; this): real 25.75,    synthetic 20.28 / 14.94
#   two layers, support 1.0 / 2.0 / 1.5 at opacity 0.95 / 0.8 / 0.95: real 25.30 / 24.00 / 24.29
KEYFRAME_SUPPORT = 1.0
KEYFRAME_FLOOR = 0.3
KEYFRAME_FADE = {"keyframe_support": KEYFRAME_SUPPORT, "keyframe_floor": KEYFRAME_FLOOR}  # the prediction's fields
OPACITY = 0.8
FOOTPRINT = 0.6  # scale = this x the width of one pixel at the Gaussian's depth


def footprint_scales(depth: Tensor, keyframe_K: Tensor, scale_max: float) -> Tensor:
    """The classical scale: isotropic, FOOTPRINT pixels wide at the Gaussian's depth.

    depth [..., Kf, 1, H, W] z-depth, keyframe_K [..., Kf, 3, 3] -> scales [..., Kf, 3, H, W].
    """
    focal = keyframe_K[..., 0, 0].float()[..., None, None, None]  # [..., Kf, 1, 1, 1]
    scales = (FOOTPRINT * depth / focal).clamp(max=scale_max)
    return scales.expand(*depth.shape[:-3], 3, *depth.shape[-2:]).contiguous()


def classical_depth(cues: GeometryCues, near: float, far: float) -> Tensor:
    """[..., Kf, 1, H, W] the cues' depth inside the model's [near, far]: what `classical` draws with."""
    return cues.depth.float().clamp(near, far)


def classical_fields(cues: GeometryCues, keyframe_rgb: Tensor, keyframe_K: Tensor, near: float, far: float,
                     scale_max: float) -> dict[str, Tensor]:
    """Gaussian fields of every keyframe pixel (leading dims [..., Kf] shared by all inputs).

    keyframe_rgb [..., Kf, 3, H, W] in [0, 1], keyframe_K [..., Kf, 3, 3]; the cues' tensors carry the
    same leading dims. -> depth, colors, quats, scales, opacities [..., Kf, C, H, W], offsets
    [..., Kf, T, 3, H, W], gate [..., Kf, 1, H, W].
    """
    depth = classical_depth(cues, near, far)
    quats = torch.zeros(*depth.shape[:-3], 4, *depth.shape[-2:], device=depth.device)
    quats[..., 0, :, :] = 1.0
    return dict(
        depth=depth,
        colors=keyframe_rgb.float().clamp(COLOR_EPS, 1.0 - COLOR_EPS),
        quats=quats,
        scales=footprint_scales(depth, keyframe_K, scale_max),
        opacities=torch.full_like(depth, OPACITY),
        offsets=cues.offsets().float(),
        gate=cues.gate.float(),
    )
