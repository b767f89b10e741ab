"""A collated batch of data samples (docs/architecture.md) in the model's normalised frame, and its targets;
shared by training and evaluation, so it sits in `data`, below both. Every metric quantity of a sample
(poses, GT depth, GT scene flow) goes through the same `SceneNormalization` as the input poses, so the
losses compare like with like and the model never sees metres.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dgslrm_ros.core.normalization import SceneNormalization, normalize_window

POSE_KEYS = ("world_T_cam", "sup_world_T_cam", "ref_world_T_cam")
DEPTH_KEYS = ("depth", "sup_depth")
POINT_KEYS = ("keyframe_points",)
REQUIRED_KEYS = ("frames", "K", "world_T_cam", "timestamps", "depth", "keyframe_index", "keyframe_points",
                 "sup_frames", "sup_K", "sup_world_T_cam", "sup_frame_index")


def add_batch_dim(sample: dict[str, Any]) -> dict[str, Any]:
    """One data sample -> a batch of one (tensors get a leading 1, other values a 1-list)."""
    return {k: v.unsqueeze(0) if isinstance(v, Tensor) else [v] for k, v in sample.items()}


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def normalize_batch(batch: dict[str, Any], scene_scale: float) -> tuple[dict[str, Any], list[SceneNormalization]]:
    """Collated batch (metric) -> (same keys in each window's normalised frame, one normalisation each).

    Poses become norm_T_cam, depths are divided by the scale, scene-flow points are mapped as points.
    """
    missing = [k for k in REQUIRED_KEYS if k not in batch]
    if missing:
        raise KeyError(f"normalize_batch: the batch lacks {missing}; expected the data sample of docs/architecture.md")
    frames = batch["frames"]
    if frames.dim() != 5:
        raise ValueError(f"normalize_batch: expected frames [B, T, 3, H, W], got {tuple(frames.shape)}")
    out = dict(batch)
    norms: list[SceneNormalization] = []
    for key in POSE_KEYS + DEPTH_KEYS + POINT_KEYS:
        if key in batch:
            out[key] = batch[key].clone()
    for b in range(frames.shape[0]):
        norm_T_cam, normalization = normalize_window(batch["world_T_cam"][b], scene_scale)
        norms.append(normalization)
        out["world_T_cam"][b] = norm_T_cam
        for key in POSE_KEYS[1:]:
            if key in batch:
                out[key][b] = normalization.poses_to_norm(batch[key][b])
        for key in DEPTH_KEYS:
            if key in batch:
                out[key][b] = batch[key][b] / normalization.scale
        out["keyframe_points"][b] = normalization.points_to_norm(batch["keyframe_points"][b])
    return out, norms


def reference_inputs(batch: dict[str, Any]) -> dict[str, Tensor]:
    """The optional far-away reference frames as DGSLRM.forward keyword arguments (empty when absent)."""
    keys = ("ref_frames", "ref_K", "ref_world_T_cam", "ref_timestamps")
    return {k: batch[k] for k in keys if k in batch} if all(k in batch for k in keys) else {}


def scene_flow_targets(keyframe_points: Tensor, keyframe_index: Tensor) -> Tensor:
    """GT displacement of every keyframe pixel's point from its own keyframe instant.

    keyframe_points [B, Kf, T, H, W, 3] (where each pixel's surface point is at every frame),
    keyframe_index [Kf] -> [B, Kf, T, H, W, 3], zero at the own keyframe.
    """
    kf = keyframe_index.long().to(keyframe_points.device)
    own = keyframe_points[:, torch.arange(kf.numel(), device=kf.device), kf]  # [B, Kf, H, W, 3]
    return keyframe_points - own[:, :, None]
