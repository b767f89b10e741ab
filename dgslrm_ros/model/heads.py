"""Token -> per-pixel Gaussian parameters of its keyframe, and the prediction those parameters form.

Per keyframe pixel the head emits 12 + 3T raw values, in this channel order:
    depth 1 | rgb 3 | rotation 4 (wxyz) | scale 3 | opacity 1 | offsets 3T (frame-major: x, y, z per frame)
    | gate 1 (geometry-primed models only)
Without cues, activations follow GS-LRM where DGS-LRM is silent, chosen so that an untrained model
already renders a plausible blurry copy of its input (depth mid-range, moderate opacity, the pixel's
colour). A geometry-primed model's raw values are residuals on the `classical` fields
(geometry.classical): depth x exp(r), scale x exp(r), opacity and colour in logit space, rotation from
identity, offsets = (gate + r_gate) x lifted motion + r_offsets. Its output layer starts at zero, so
the untrained network is exactly the classical method. With `appearance_residuals` off only depth and
motion are predicted: colour, rotation and opacity are the classical ones and the scale is the
classical pixel footprint at the predicted depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgslrm_ros.core.cameras import camera_rays
from dgslrm_ros.core.gaussians import DRAWING_FIELDS, DeformableGaussians
from dgslrm_ros.geometry.classical import COLOR_EPS, classical_fields, footprint_scales
from dgslrm_ros.geometry.cues import GeometryCues
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.tokenizer import full_precision

# Channel slices of the raw head output (per pixel).
DEPTH = slice(0, 1)
RGB = slice(1, 4)
QUAT = slice(4, 8)
SCALE = slice(8, 11)
OPACITY = slice(11, 12)
OFFSETS_START = 12
GATE = slice(-1, None)  # geometry-primed heads: the gate residual is the last channel


class GaussianHead(nn.Module):
    """Two-layer MLP per token -> s^2 x (12 + 3T) values for the keyframe pixels of its cube."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.fc = nn.Linear(config.width, config.hidden)
        self.out = nn.Linear(config.hidden, config.head_channels * config.patch_size**2)

    def reset_parameters(self) -> None:
        """Zero-mean, small init, then per-quantity adjustments so an untrained model is usable.

        Geometry-primed: the output layer starts at exactly zero (residuals of zero = the classical
        method; the layer still gets gradients from the hidden activations, as ControlNet's zero convs).
        """
        nn.init.normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)
        nn.init.zeros_(self.out.bias)
        if self.config.geometry_primed:
            nn.init.zeros_(self.out.weight)
            return
        nn.init.normal_(self.out.weight, std=0.02)
        pixels = self.config.patch_size**2
        with torch.no_grad():
            weight = self.out.weight.view(self.config.head_channels, pixels, -1)  # channel-major, see unpatchify
            bias = self.out.bias.view(self.config.head_channels, pixels)
            weight[RGB].mul_(0.1)  # colour starts as the input pixel's (residual ~ 0)
            weight[OFFSETS_START:].mul_(0.01)  # offsets start near zero: the scene starts static
            bias[QUAT.start].fill_(1.0)  # rotations start near identity (and the raw quat is never ~0)

    def forward(self, tokens: Tensor) -> Tensor:  # [B, N, width] -> [B, N, (12 + 3T) * s * s]
        return self.out(F.gelu(self.fc(tokens)))


def refined_depth(base_depth: Tensor, raw_depth: Tensor, config: ModelConfig) -> Tensor:
    """A geometry-primed model's depth: the classical depth x exp(residual), inside [near, far]."""
    return torch.exp((torch.log(base_depth) + raw_depth).clamp(math.log(config.near), math.log(config.far)))


def activate(raw: Tensor, keyframe_rgb: Tensor, config: ModelConfig, cues: GeometryCues | None = None,
             keyframe_K: Tensor | None = None) -> dict[str, Tensor]:
    """Raw head values [B, Kf, head_channels, H, W] (float32) -> activated Gaussian fields.

    keyframe_rgb [B, Kf, 3, H, W] in [0, 1] is the colour the rgb residual is added to. A geometry-primed
    config needs `cues` (batched [B, Kf, ...]) and keyframe_K [B, Kf, 3, 3].
    """
    batch, keyframes, _, height, width = raw.shape
    index = torch.arange(keyframes, device=raw.device) * config.keyframe_stride
    own = torch.arange(keyframes, device=raw.device)
    raw_offsets = raw[:, :, OFFSETS_START:OFFSETS_START + 3 * config.window_frames]
    raw_offsets = raw_offsets.reshape(batch, keyframes, config.window_frames, 3, height, width)
    if config.geometry_primed:
        if cues is None or keyframe_K is None:
            raise ValueError("activate: a geometry-primed model needs the window's cues and keyframe intrinsics")
        base = classical_fields(cues, keyframe_rgb, keyframe_K, config.near, config.far, config.scale_max)
        depth = refined_depth(base["depth"], raw[:, :, DEPTH], config)
        if config.appearance_residuals:
            colors = torch.sigmoid(torch.logit(base["colors"]) + raw[:, :, RGB])
            quats = F.normalize(base["quats"] + raw[:, :, QUAT], dim=2, eps=1e-8)
            scales = torch.clamp(base["scales"] * torch.exp(raw[:, :, SCALE]), max=config.scale_max)
            opacities = torch.sigmoid(torch.logit(base["opacities"]) + raw[:, :, OPACITY])
        else:
            # The classical appearance where the network put the Gaussian: a scale kept at the sweep's depth
            # is the wrong footprint once the depth moved (too large nearer, holes farther). Measured with the
            # geometry-only shipped weights, whose appearance residuals are exactly zero: 32 windows between
            # frames 19.15 -> 20.11 dB, real clip held-out 20.43 -> 23.20 dB (docs/results/hybrid).
            colors, quats, opacities = base["colors"], base["quats"], base["opacities"]
            scales = footprint_scales(depth.float().clamp(config.near, config.far), keyframe_K, config.scale_max)
        gate = base["gate"] + raw[:, :, GATE]
        lifted = cues.lifted.float()
        residual = raw_offsets - raw_offsets[:, own, index][:, :, None]  # zero at the own keyframe
        offsets = gate[:, :, None] * lifted + residual
        return dict(depth=depth, colors=colors, quats=quats, scales=scales, opacities=opacities, offsets=offsets,
                    gate=gate)
    # Depth: sigmoid interpolation in log-depth between near and far (ours; GS-LRM-like bounded activation).
    # Log space gives equal resolution per octave and an untrained model sits at sqrt(near * far).
    log_near, log_far = math.log(config.near), math.log(config.far)
    depth = torch.exp(log_near + (log_far - log_near) * torch.sigmoid(raw[:, :, DEPTH]))
    if config.color_residual:
        base_rgb = torch.logit(keyframe_rgb.float().clamp(COLOR_EPS, 1.0 - COLOR_EPS))
        colors = torch.sigmoid(base_rgb + raw[:, :, RGB])
    else:
        colors = torch.sigmoid(raw[:, :, RGB])
    quats = F.normalize(raw[:, :, QUAT], dim=2, eps=1e-8)
    # GS-LRM: scale = min(exp(x - 2.3), 0.3) in normalised scene units (std-devs, not per-pixel sizes).
    scales = torch.clamp(torch.exp(raw[:, :, SCALE] - config.scale_bias), max=config.scale_max)
    opacities = torch.sigmoid(raw[:, :, OPACITY] - config.opacity_bias)
    # Anchor: a Gaussian sits exactly on its pixel ray at its own keyframe (offset 0 there), so the depth
    # loss and the flow loss describe the same point (ours; the paper does not say).
    offsets = raw_offsets - raw_offsets[:, own, index][:, :, None]
    return dict(depth=depth, colors=colors, quats=quats, scales=scales, opacities=opacities, offsets=offsets)


@dataclass(frozen=True)
class GaussianPrediction:
    """What one forward pass predicts: a Gaussian per keyframe pixel, with its trajectory over the window.

    Everything is differentiable. The camera fields are the keyframes' own, so each Gaussian's centre is
    `o + depth * d` on its pixel ray (z-depth, docs/architecture.md).
    """

    depth: Tensor  # [B, Kf, 1, H, W] z-depth in [near, far]
    colors: Tensor  # [B, Kf, 3, H, W] rgb in (0, 1)
    quats: Tensor  # [B, Kf, 4, H, W] unit wxyz
    scales: Tensor  # [B, Kf, 3, H, W] standard deviations
    opacities: Tensor  # [B, Kf, 1, H, W] in (0, 1)
    offsets: Tensor  # [B, Kf, T, 3, H, W] translation to window frame n; zero at the own keyframe
    keyframe_index: Tensor  # [Kf] long: window frame of each keyframe
    keyframe_K: Tensor  # [B, Kf, 3, 3]
    keyframe_world_T_cam: Tensor  # [B, Kf, 4, 4]
    timestamps: Tensor  # [B, T] seconds
    gate: Tensor | None = None  # [B, Kf, 1, H, W] how much of the lifted motion is used (geometry-primed only)
    keyframe_support: float = 0.0  # DeformableGaussians' drawing fields (core.gaussians.DRAWING_FIELDS), set by
    keyframe_floor: float = 0.0  # geometry.classical.DRAWING for the geometry-primed heads
    back_scale: float = 1.0

    @property
    def batch_size(self) -> int:
        return self.depth.shape[0]

    @property
    def num_keyframes(self) -> int:
        return self.depth.shape[1]

    @property
    def num_frames(self) -> int:
        return self.offsets.shape[2]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)"""
        return self.depth.shape[-2], self.depth.shape[-1]

    def detach(self) -> GaussianPrediction:
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)
                                if isinstance(getattr(self, f.name), Tensor)})

    def means(self) -> Tensor:
        """[B, Kf, H, W, 3] Gaussian centres at their keyframe: o + depth * d_z1 (float32)."""
        height, width = self.image_size
        # Outside autocast: a bf16 ray would move a point at depth 10 by centimetres.
        with full_precision(self.depth.device):
            origins, dirs = camera_rays(self.keyframe_K.float(), self.keyframe_world_T_cam.float(), height, width)
            return origins + self.depth.float().squeeze(2)[..., None] * dirs

    def keyframe_points(self) -> Tensor:
        """[B, Kf, T, H, W, 3] position of each keyframe pixel's Gaussian at every window frame."""
        return self.means()[:, :, None] + self.offsets.permute(0, 1, 2, 4, 5, 3)

    def gaussians(self, b: int) -> DeformableGaussians:
        """The N = Kf * H * W deformable Gaussians of batch item b, ordered (keyframe, row, column)."""
        if not -self.batch_size <= b < self.batch_size:
            raise IndexError(f"GaussianPrediction.gaussians: batch index {b} out of range for B={self.batch_size}")
        height, width = self.image_size
        keyframes, frames = self.num_keyframes, self.num_frames
        count = keyframes * height * width

        def per_pixel(field: Tensor) -> Tensor:  # [Kf, C, H, W] -> [N, C]
            return field.permute(0, 2, 3, 1).reshape(count, field.shape[1])

        return DeformableGaussians(
            means=self.means()[b].reshape(count, 3),
            quats=per_pixel(self.quats[b]),
            scales=per_pixel(self.scales[b]),
            opacities=per_pixel(self.opacities[b]).squeeze(1),
            colors=per_pixel(self.colors[b]),
            offsets=self.offsets[b].permute(0, 3, 4, 1, 2).reshape(count, frames, 3),
            # float64 stays float64: epoch seconds in float32 would round to minutes.
            timestamps=self.timestamps[b] if self.timestamps.dtype.is_floating_point else self.timestamps[b].double(),
            keyframe_index=self.keyframe_index.to(self.depth.device).repeat_interleave(height * width),
            **{name: getattr(self, name) for name in DRAWING_FIELDS},
        )
