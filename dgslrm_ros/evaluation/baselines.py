"""The two baselines `dgslrm eval` scores beside the network, on the same representation.

- *static*: the network's own Gaussians with the deformation forced to zero (every track stands
  still), which isolates what the predicted motion buys.
- *optimised*: per-window test-time optimisation from a simple initialisation: one Gaussian per
  keyframe pixel, unprojected with the ground-truth depth of that keyframe (an RGB-D start a robot
  with a depth camera would have), zero motion, then Adam on the window's input frames
  (evaluation.refine.optimize_gaussians), the classic optimisation approach at a bounded budget.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from dgslrm_ros.core.cameras import unproject_depth
from dgslrm_ros.core.gaussians import DeformableGaussians


def static_baseline(gaussians: DeformableGaussians) -> DeformableGaussians:
    """The same Gaussians with zero offsets: every Gaussian stays where it was born."""
    return replace(gaussians, offsets=torch.zeros_like(gaussians.offsets))


def depth_initialization(frames: Tensor, depth: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor,
                         timestamps: Tensor, max_depth: float, opacity: float = 0.7) -> DeformableGaussians:
    """One Gaussian per keyframe pixel from depth; offsets zero.

    frames [T, 3, H, W], depth [T, 1, H, W] z-depth, K [T, 3, 3], world_T_cam [T, 4, 4] (all one frame),
    keyframe_index [Kf], timestamps [T]. Depth beyond `max_depth` (sky) or invalid is clamped to it.
    Ordered (keyframe, row, column) like GaussianPrediction.gaussians, so tracks line up pixel-wise.
    """
    t, _, height, width = frames.shape
    if depth.shape != (t, 1, height, width):
        raise ValueError(f"depth_initialization: expected depth [T={t}, 1, H={height}, W={width}], got {tuple(depth.shape)}")
    kf = keyframe_index.long().to(frames.device)
    d = depth[kf].float()  # [Kf, 1, H, W]
    d = torch.where(torch.isfinite(d) & (d > 0), d, torch.full_like(d, max_depth)).clamp(max=max_depth)
    points = unproject_depth(d, K[kf].float(), world_T_cam[kf].float())  # [Kf, H, W, 3]
    count = points.shape[0] * height * width
    focal = K[kf][:, 0, 0].float().view(-1, 1, 1, 1)
    footprint = (d / focal).permute(0, 2, 3, 1).reshape(count, 1)  # one pixel's width at that depth
    colors = frames[kf].float().permute(0, 2, 3, 1).reshape(count, 3)
    return DeformableGaussians(
        means=points.reshape(count, 3),
        quats=torch.tensor([1.0, 0.0, 0.0, 0.0], device=frames.device).expand(count, 4).clone(),
        scales=(0.7 * footprint).expand(count, 3).clone(),
        opacities=torch.full((count,), opacity, device=frames.device),
        colors=colors.clamp(0.0, 1.0),
        offsets=torch.zeros(count, t, 3, device=frames.device),
        timestamps=timestamps,
        keyframe_index=kf.repeat_interleave(height * width),
    )


def gaussian_tracks(gaussians: DeformableGaussians, num_keyframes: int, height: int, width: int) -> Tensor:
    """[N, T, 3] trajectories of pixel-ordered Gaussians -> keyframe_points layout [Kf, T, H, W, 3]."""
    n, t = len(gaussians), gaussians.num_frames
    if n != num_keyframes * height * width:
        raise ValueError(
            f"gaussian_tracks: {n} Gaussians, expected Kf*H*W = {num_keyframes}*{height}*{width} in pixel order"
        )
    positions = gaussians.means[:, None] + gaussians.offsets  # [N, T, 3]
    return positions.reshape(num_keyframes, height, width, t, 3).permute(0, 3, 1, 2, 4)
