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
# An instant is drawn mostly from the keyframes around it (DeformableGaussians.keyframe_support/_floor):
# a keyframe's opacity fades over 1.5 keyframe spacings to 0.3 of itself, so a frame between two keyframes
# is drawn from those two, nearly opaque, while the other keyframes, faint, still fill what those two do
# not see (views off the camera path). DGS-LRM draws every keyframe at every instant; with our imperfect
# depth and motion that composites six slightly wrong copies. Measured (classical, 64 px; real = the
# hand-held clip's held-out frames, docs/results/real; synthetic = 16 held-out `dynamic` windows,
# between-frames / novel-view PSNR; demo = `make demo`'s novel view):
#   every keyframe, opacity 0.35 (before): real 21.74 dB, synthetic 18.61 / 14.18, demo novel 17.1
#   fade to 0 (support 1.5, opacity 0.8-0.95): real 23.6-23.8, synthetic 18.79 / 13.01, demo novel 13.6
#   floor 0.2 (opacity 0.8): real 22.70, demo novel 16.0;  floor 0.4: real 22.03, demo novel 17.3
#   floor 0.3 (opacity 0.8, this): synthetic 18.87 / 14.08; real and demo in docs/training.md
# Fading to 0 wins most between frames but loses views off the path; the floor keeps them.
KEYFRAME_SUPPORT = 1.5
KEYFRAME_FLOOR = 0.3
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
