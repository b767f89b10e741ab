"""Pixels -> space-time tokens: per-pixel conditioning (RGB + Plücker ray + time), then s x s x l cubes.

A token covers an s x s patch over l consecutive frames (DGS-LRM's temporal tokenisation: 4x fewer
tokens than per-frame patches). There is no positional embedding: as in GS-LRM / Long-LRM the Plücker
rays already say where every pixel looks from, and the time channel says when.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor, nn

from dgslrm_ros.core.cameras import plucker_rays
from dgslrm_ros.model.config import INPUT_CHANNELS


def normalize_timestamps(timestamps: Tensor, window_timestamps: Tensor) -> Tensor:
    """Map seconds to [-1, 1] over the window (oldest -> -1, newest -> +1).

    timestamps [B, N] (window or reference frames), window_timestamps [B, T] -> [B, N]. Reference frames
    outside the window land outside [-1, 1], which is the information they carry. A window of one
    instant (span 0) maps to 0. Seconds rather than frame indices so an irregular frame rate shows.
    """
    # float64 for the differences: epoch seconds (~1.7e9) keep only ~2 min resolution in float32.
    timestamps, window_timestamps = timestamps.double(), window_timestamps.double()
    start = window_timestamps[:, :1]
    span = window_timestamps[:, -1:] - start
    safe = torch.where(span.abs() > 1e-9, span, torch.ones_like(span))
    normalised = 2.0 * (timestamps - start) / safe - 1.0
    return torch.where(span.abs() > 1e-9, normalised, torch.zeros_like(normalised)).float()


def full_precision(device: torch.device):
    """A context that turns autocast off: rays and points lose centimetres in bf16."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else nullcontext()


def pixel_conditioning(frames: Tensor, K: Tensor, world_T_cam: Tensor, times: Tensor) -> Tensor:
    """The 10 input channels of every pixel.

    frames [B, N, 3, H, W] in [0, 1], K [B, N, 3, 3], world_T_cam [B, N, 4, 4], times [B, N] (already
    normalised) -> [B, N, 10, H, W]: rgb mapped to [-1, 1], unit ray direction, ray moment o x d, time.
    """
    batch, count, _, height, width = frames.shape
    with full_precision(frames.device):
        rays = plucker_rays(K.float(), world_T_cam.float(), height, width)  # [B, N, 6, H, W]
        time_map = times.float()[:, :, None, None, None].expand(batch, count, 1, height, width)
        return torch.cat([frames.float() * 2.0 - 1.0, rays, time_map], dim=2)


def patchify(pixels: Tensor, stride: int, patch: int) -> Tensor:
    """[B, N, C, H, W] -> [B, G * h * w, l * C * s * s] with G = N / l groups, h = H / s, w = W / s.

    Token order is (group, patch row, patch column), the order `unpatchify` expects back.
    """
    batch, count, channels, height, width = pixels.shape
    groups, rows, cols = count // stride, height // patch, width // patch
    x = pixels.reshape(batch, groups, stride, channels, rows, patch, cols, patch)
    x = x.permute(0, 1, 4, 6, 2, 3, 5, 7)  # [B, G, h, w, l, C, s, s]
    return x.reshape(batch, groups * rows * cols, stride * channels * patch * patch)


def unpatchify(values: Tensor, groups: int, rows: int, cols: int, patch: int) -> Tensor:
    """[B, G * h * w, C * s * s] (per token, channel-major then s x s) -> [B, G, C, h * s, w * s]."""
    batch = values.shape[0]
    channels = values.shape[-1] // (patch * patch)
    x = values.reshape(batch, groups, rows, cols, channels, patch, patch)
    x = x.permute(0, 1, 4, 2, 5, 3, 6)  # [B, G, C, h, s, w, s]
    return x.reshape(batch, groups, channels, rows * patch, cols * patch)


class SpaceTimeTokenizer(nn.Module):
    """Linear embedding of s x s x l cubes of pixel conditioning."""

    def __init__(self, keyframe_stride: int, patch_size: int, width: int, reference_frames: bool = False,
                 cue_channels: int = 0):
        super().__init__()
        self.stride = keyframe_stride
        self.patch = patch_size
        self.embed = nn.Linear(keyframe_stride * INPUT_CHANNELS * patch_size * patch_size, width)
        # Classical cues of each token's keyframe pixels, added through their own zero-initialised
        # embedding so a geometry-primed model starts from what the plain tokens say (model.dgslrm).
        self.cue_embed = nn.Linear(cue_channels * patch_size * patch_size, width) if cue_channels else None
        # Reference tokens attend but are never decoded; a learned offset tells them apart from window
        # tokens (ours: the paper does not say how reference frames are marked). Only models configured
        # for reference frames own it: an always-unused parameter would break DDP.
        self.reference_embedding = nn.Parameter(torch.zeros(width)) if reference_frames else None

    def forward(self, pixels: Tensor, reference: bool = False, cues: Tensor | None = None) -> Tensor:
        """pixels [B, N, 10, H, W] (N a multiple of l), cues [B, N / l, C, H, W] (window only)
        -> tokens [B, N / l * H / s * W / s, width]."""
        tokens = self.embed(patchify(pixels, self.stride, self.patch))
        if cues is not None:
            if self.cue_embed is None:
                raise ValueError("SpaceTimeTokenizer: cues given to a tokenizer built without cue channels")
            tokens = tokens + self.cue_embed(patchify(cues, 1, self.patch))
        return tokens + self.reference_embedding if reference else tokens
