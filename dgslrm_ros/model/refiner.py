"""Per-pixel refinement of a geometry-primed model's depth and gate residuals.

The head decodes every 8 x 8 patch from one token, so its residual is a function of the token: it cannot
follow a depth edge or an outlier of the sweep inside a patch, and on the pixels where the sweep is
right it adds its patch-level error (the shipped network's median AbsRel is worse than the sweep's on
held-out windows while its mean is better). The refiner sees each pixel's own cues and colour beside the
head's residuals, in a 5 x 5 neighbourhood, and adds a correction to the depth and gate residuals. Its
output convolution starts at zero, so adding it to trained weights changes nothing until it is trained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgslrm_ros.geometry.cues import CUE_CHANNELS
from dgslrm_ros.model.heads import DEPTH, GATE

REFINED = 2  # depth and gate residuals
INPUTS = REFINED + CUE_CHANNELS + 3  # the two residuals, the pixel's cue channels and its colour


class PixelRefiner(nn.Module):
    """Two 3 x 3 convolutions and a zero-initialised 1 x 1 output over the keyframe pixels."""

    def __init__(self, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(INPUTS, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, REFINED, 1)

    def reset_parameters(self) -> None:
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # GELU: close enough to keep unit scale
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.out.weight)  # zero correction until trained (a gradient still reaches it)
        nn.init.zeros_(self.out.bias)

    def forward(self, raw: Tensor, cue_channels: Tensor, keyframe_rgb: Tensor) -> Tensor:
        """raw [B, Kf, C, H, W] head values, cue_channels [B, Kf, CUE_CHANNELS, H, W], keyframe_rgb
        [B, Kf, 3, H, W] in [0, 1] -> raw with its depth and gate residuals corrected (same shape)."""
        batch, keyframes, _, height, width = raw.shape
        residuals = torch.cat([raw[:, :, DEPTH], raw[:, :, GATE]], dim=2)
        x = torch.cat([residuals, cue_channels.float(), keyframe_rgb.float() * 2.0 - 1.0], dim=2)
        x = x.reshape(batch * keyframes, INPUTS, height, width)
        x = self.out(F.gelu(self.conv2(F.gelu(self.conv1(x)))))
        correction = x.reshape(batch, keyframes, REFINED, height, width)
        depth, gate = raw[:, :, DEPTH] + correction[:, :, :1], raw[:, :, GATE] + correction[:, :, 1:]
        return torch.cat([depth, raw[:, :, DEPTH.stop:GATE.start], gate], dim=2)  # depth first, gate last
