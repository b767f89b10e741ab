"""The `classical` method: deformable Gaussians from the window's cues alone, no learned weights.

Per keyframe pixel: the pixel's colour (pre-compensated for the drawing's blur), an isotropic
footprint-sized scale at the sweep depth, a fixed opacity, identity rotation, and the gated lifted
motion as its deformation. The geometry-primed network predicts residuals on exactly these fields, so
an untrained network reproduces them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.filters import gaussian_window
from dgslrm_ros.core.gaussians import EPS2D
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
# Footprint and back-layer width (DeformableGaussians.back_scale): a splat FOOTPRINT pixels wide plus the
# renderer's 0.3 px^2 low-pass lets each pixel's neighbours bleed into it (at 0.6: 37 % of the own weight one
# pixel away), so a keyframe drawn from its own camera came out blurred, below what copying a frame gives
# on a slow camera (the second real clip: keyframes 28.5 dB, held-out frames 28.4 against copy 31.4). Narrow
# splats alone lose the off-path views, where wide ones had smeared over the tears; drawing only the back
# layer wide gives both. Chosen on the second real clip (realshort, docs/results/real/realshort) and 16
# training-split windows each of `dynamic` / `wide` (seeds 12,000 on; 64 px; network between / novel /
# input PSNR), with the first real clip (cockatoo) among the probes:
#   footprint x back  realshort  cockatoo  dynamic               wide
#   0.6 x 1 (before)  28.36      25.87     20.56 / 14.92 / 27.45  20.39 / 15.25 / 27.22
#   0.3 x 1           30.03      26.79     (held out: novel -0.9 dB)
#   0.3 x 2           30.59      27.02     20.88 / 14.87 / 28.93  20.64 / 15.23 / 28.64
#   0.3 x 3           30.91      27.12     21.16 / 15.34 / 28.88  21.05 / 15.64 / 28.63
#   0.3 x 4 (this)    30.95      27.15     21.33 / 15.67 / 28.85  21.35 / 15.92 / 28.63
#   0.3 x 6           30.72      26.99     21.61 / 16.15 / 28.81  (synthetic off-path views like it wider)
#   0.3 x 8           30.40      26.82
#   0.4 x 2           -          -         21.04 / 15.22 / 28.53  20.89 / 15.55 / 28.28
#   0.4 x 3           30.41      27.02     21.28 / 15.69 / 28.51  21.32 / 15.95 / 28.31
#   0.4 x 4           30.39      26.99     21.48 / 16.03 / 28.50
# Surface-aligned (flat, tangent-plane) splats instead of round ones were tried for the off-path views:
# +0.06 dB novel on the held-out windows, not kept.
KEYFRAME_SUPPORT = 1.0
KEYFRAME_FLOOR = 0.3
BACK_SCALE = 4.0
DRAWING = {"keyframe_support": KEYFRAME_SUPPORT, "keyframe_floor": KEYFRAME_FLOOR,
           "back_scale": BACK_SCALE}  # the prediction's drawing fields (core.gaussians.DRAWING_FIELDS)
OPACITY = 0.8
FOOTPRINT = 0.3  # scale = this x the width of one pixel at the Gaussian's depth


# Colour pre-compensation. Drawn from its own camera, each keyframe splat spreads its colour over a Gaussian
# of variance FOOTPRINT^2 + the renderer's low-pass EPS2D (sigma 0.62 px), so detail at the pixel scale came
# back at a fraction of its contrast: on a third real clip (a textured poster, docs/results/real/cube) the
# keyframes drawn at their own cameras scored 25 dB. The colours are chosen instead so that, blurred by that
# kernel G, they give the image back: the first terms of G^-1 = sum_n (I - G)^n (one term: 2x - Gx, an
# unsharp mask with the drawing's own kernel). Measured on held-out frames of the three real clips at 64 px
# (`classical`) and on 16 training-split `dynamic` windows (network between / novel / input PSNR):
#   colours                    realshort  cockatoo  cube   training-split `dynamic`
#   raw (before)               30.95      27.15     23.87  21.33 / 15.67 / 28.85
#   half a term                31.63      27.41     24.51  21.25 / 15.58 / 29.00
#   one term (this)            32.07      27.57     24.90  21.13 / 15.50 / 29.03
#   two terms                  32.18      27.58     24.99  20.97 / 15.42 / 28.90
#   one term, static pixels only (gate 0)                   21.21 / 15.55 / 29.01
# The real clips gain at every strength; the synthetic windows lose between frames and off the path, also
# where nothing moves. Why: their frames are point-sampled (one ray per pixel centre, no optical low-pass),
# so their pixel-scale detail is aliased and does not carry to a new viewpoint, where a camera's does; on
# area-sampled frames (data.dataset.WindowDatasetConfig.pixel_samples) the loss turns into a small gain
# with the motion on (docs/results/history.md, "Colours pre-compensated").
# One term keeps nearly all of the real gain for about half the synthetic cost of two.
PRECOMPENSATION_TERMS = 1


def drawing_blur_px() -> float:
    """Standard deviation (px) of the blur a keyframe splat puts on its own image: footprint and low-pass."""
    return math.sqrt(FOOTPRINT ** 2 + EPS2D)


def precompensated_colors(keyframe_rgb: Tensor, terms: int | None = None) -> Tensor:
    """Keyframe colours [..., 3, H, W] that the drawing's blur turns back into the image (not clamped).

    x + (I - G) x + (I - G)^2 x + ... with `terms` (default PRECOMPENSATION_TERMS) correction terms, G the
    separable Gaussian of drawing_blur_px() with replicated borders. A flat image is returned unchanged.
    """
    terms = PRECOMPENSATION_TERMS if terms is None else terms
    if terms <= 0:
        return keyframe_rgb
    sigma = drawing_blur_px()
    radius = max(1, math.ceil(3.0 * sigma))
    kernel = gaussian_window(2 * radius + 1, sigma, device=keyframe_rgb.device)
    shape = keyframe_rgb.shape
    image = keyframe_rgb.float().reshape(-1, 1, *shape[-2:])  # [N, 1, H, W]: every channel of every keyframe

    def blur(x: Tensor) -> Tensor:
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        return F.conv2d(F.conv2d(x, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))

    out, term = image, image
    for _ in range(terms):
        term = term - blur(term)
        out = out + term
    return out.reshape(shape)


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
        colors=precompensated_colors(keyframe_rgb.float()).clamp(COLOR_EPS, 1.0 - COLOR_EPS),
        quats=quats,
        scales=footprint_scales(depth, keyframe_K, scale_max),
        opacities=torch.full_like(depth, OPACITY),
        offsets=cues.offsets().float(),
        gate=cues.gate.float(),
    )
