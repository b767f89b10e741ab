"""Photometric check of a learned motion against the window it was predicted from.

A geometry-primed network adds learned motion to the classical lifted tracks (offsets = gate x lift +
residual). On static real scenes that motion is spurious: on the cube clip the network's Gaussians drew the
held-out frames 1.7 dB worse than the same Gaussians standing still, where `classical`'s gated motion cost
nothing. The frames can tell, as they do for depth (geometry/depth_check.py): a keyframe pixel's point, moved
as the candidate motion says, should land in every other frame of the window on a pixel of its own colour.
Where the candidate motion makes the frames disagree clearly more than the classical motion does, it is
refused there and the classical motion stays.

Pure function of the window; no learned weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import project_points


@dataclass(frozen=True)
class MotionCheckConfig:
    """When a candidate motion is refused: cost(candidate) > cost(base) x (1 + relative) + absolute, costs the
    mean absolute colour difference over the window's other frames, box-filtered over `patch` pixels."""

    # Next to no margin (session 26): the depth check's (0.1, 0.002), used at first, let small spurious motions
    # through on the static cube clip (docs/results/motion_check.md). 1e-4 keeps the network's motion where it
    # costs the same as the classical one to float noise (an fp16 model, a neighbour's refined cue), so ties do
    # not flip between the two.
    relative_margin: float = 0.0
    absolute_margin: float = 1e-4  # colour units (0..1)
    patch: int = 3

    def __post_init__(self) -> None:
        if self.relative_margin < 0 or self.absolute_margin < 0 or self.patch < 1 or self.patch % 2 == 0:
            raise ValueError(f"MotionCheckConfig: need margins >= 0 and an odd patch >= 1, got "
                             f"{self.relative_margin}, {self.absolute_margin}, {self.patch}")


def trajectory_cost(frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor, points: Tensor,
                    patch: int = 3) -> Tensor:
    """How much the window's frames disagree with keyframe pixels moving along `points` -> [Kf, 1, H, W].

    frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4]; keyframe_index [Kf]; points [Kf, T, H, W, 3] the
    pixel's point at every window frame. Mean over the frames other than the keyframe where the point projects
    inside (in front of the camera) of the absolute colour difference to the keyframe pixel; inf where it
    projects inside none."""
    num_frames, _, height, width = frames.shape
    costs = []
    for slot, k in enumerate(keyframe_index.tolist()):
        # every frame at once: [T, HW] projections, one grid_sample over the T frames
        uv, z = project_points(points[slot].reshape(num_frames, -1, 3), K, world_T_cam)  # [T, HW, 2], [T, HW]
        inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] <= width) & (uv[..., 1] >= 0) & (uv[..., 1] <= height)
        inside[k] = False  # the keyframe itself says nothing
        grid = torch.stack([uv[..., 0] / width, uv[..., 1] / height], dim=-1) * 2.0 - 1.0
        sampled = F.grid_sample(frames, grid[:, None], mode="bilinear", padding_mode="border",
                                align_corners=False)[:, :, 0]  # [T, 3, HW]
        difference = (sampled - frames[k].reshape(1, 3, -1)).abs().mean(dim=1)  # [T, HW]
        total = torch.where(inside, difference, torch.zeros_like(difference)).sum(dim=0)
        count = inside.sum(dim=0).to(total.dtype)
        cost = torch.where(count > 0, total / count.clamp_min(1.0), torch.full_like(total, float("inf")))
        costs.append(cost.reshape(1, height, width))
    cost = torch.stack(costs)  # [Kf, 1, H, W]
    if patch > 1:
        finite = torch.isfinite(cost)
        summed = F.avg_pool2d(torch.where(finite, cost, torch.zeros_like(cost)), patch, 1, patch // 2,
                              count_include_pad=False)
        share = F.avg_pool2d(finite.to(cost.dtype), patch, 1, patch // 2, count_include_pad=False)
        cost = torch.where(finite, summed / share.clamp_min(1e-6), cost)
    return cost


def motion_agrees(frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor, means: Tensor,
                  base_offsets: Tensor, candidate_offsets: Tensor,
                  config: MotionCheckConfig = MotionCheckConfig()) -> Tensor:
    """Where the candidate motion may replace the base motion -> bool [Kf, 1, H, W].

    frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4] of one window; keyframe_index [Kf]; means
    [Kf, H, W, 3] the keyframe pixels' points; base_offsets and candidate_offsets [Kf, T, 3, H, W] (the
    classical motion and the network's)."""
    with torch.no_grad():
        def points(offsets: Tensor) -> Tensor:
            return means[:, None] + offsets.permute(0, 1, 3, 4, 2)  # [Kf, T, H, W, 3]

        base = trajectory_cost(frames, K, world_T_cam, keyframe_index, points(base_offsets), config.patch)
        candidate = trajectory_cost(frames, K, world_T_cam, keyframe_index, points(candidate_offsets), config.patch)
        worse = candidate > base * (1.0 + config.relative_margin) + config.absolute_margin
        return ~(worse & torch.isfinite(base))
