"""Rigid camera poses `world_T_cam [..., 4, 4]` (camera optical frame -> world), batched in torch.

Image and pose messages arrive at different instants; `interpolate_poses` gives the camera pose at
each image stamp (linear position, slerp rotation: the constant-velocity model between two samples).
"""
from __future__ import annotations

import torch
from torch import Tensor

from dgslrm_ros.core.rotations import matrix_to_quat, quat_to_matrix, slerp
from dgslrm_ros.core.shapes import broadcast_shape


def _check_poses(name: str, poses: Tensor) -> None:
    if not isinstance(poses, Tensor) or poses.dim() < 2 or tuple(poses.shape[-2:]) != (4, 4):
        shape = tuple(poses.shape) if isinstance(poses, Tensor) else type(poses).__name__
        raise ValueError(f"{name}: expected shape [..., 4, 4] rigid transforms, got {shape}")


def invert_pose(pose: Tensor) -> Tensor:
    """[..., 4, 4] rigid transform a_T_b -> b_T_a (closed form, no general matrix inverse)."""
    _check_poses("pose", pose)
    rotation_t = pose[..., :3, :3].transpose(-1, -2)
    translation = -(rotation_t @ pose[..., :3, 3:4])
    out = torch.zeros_like(pose)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3:4] = translation
    out[..., 3, 3] = 1.0
    return out


def pose_from_translation_quat(translation: Tensor, quat: Tensor) -> Tensor:
    """translation [..., 3] and wxyz quaternion [..., 4] -> [..., 4, 4] rigid transform."""
    if translation.shape[-1:] != (3,) or quat.shape[-1:] != (4,):
        raise ValueError(
            f"pose_from_translation_quat: expected translation [..., 3] and quat [..., 4] (wxyz), "
            f"got {tuple(translation.shape)} and {tuple(quat.shape)}"
        )
    batch = broadcast_shape(translation.shape[:-1], quat.shape[:-1])
    dtype = torch.promote_types(translation.dtype, quat.dtype)
    out = torch.zeros(*batch, 4, 4, dtype=dtype, device=translation.device)
    out[..., :3, :3] = quat_to_matrix(quat.to(dtype))
    out[..., :3, 3] = translation.to(dtype)
    out[..., 3, 3] = 1.0
    return out


def translation_quat_from_pose(pose: Tensor) -> tuple[Tensor, Tensor]:
    """[..., 4, 4] rigid transform -> (translation [..., 3], unit wxyz quaternion [..., 4], w >= 0)."""
    _check_poses("pose", pose)
    return pose[..., :3, 3].clone(), matrix_to_quat(pose[..., :3, :3])


def interpolate_poses(stamps: Tensor, world_T_cam: Tensor, query: Tensor, tolerance: float = 0.0) -> Tensor:
    """Poses at query times [Q] from samples (stamps [M] increasing, world_T_cam [M, 4, 4]) -> [Q, 4, 4].

    Queries must lie within [stamps[0] - tolerance, stamps[-1] + tolerance] (no extrapolation: a pose
    guessed beyond the data would silently misplace the whole window); those within the tolerance
    outside the range are clamped to the end sample. Use float64 stamps for absolute ROS times.
    """
    _check_poses("world_T_cam", world_T_cam)
    if stamps.dim() != 1 or world_T_cam.dim() != 3 or world_T_cam.shape[0] != stamps.shape[0]:
        raise ValueError(
            f"interpolate_poses: expected stamps [M] and world_T_cam [M, 4, 4], "
            f"got {tuple(stamps.shape)} and {tuple(world_T_cam.shape)}"
        )
    if stamps.numel() == 0:
        raise ValueError("interpolate_poses: expected at least one pose sample, got none")
    query = torch.as_tensor(query, dtype=stamps.dtype, device=stamps.device)
    if query.dim() != 1:
        raise ValueError(f"interpolate_poses: expected query [Q], got {tuple(query.shape)}")
    if stamps.numel() > 1 and not bool((stamps[1:] > stamps[:-1]).all()):
        raise ValueError("interpolate_poses: stamps must be strictly increasing; sort and deduplicate them first")
    first, last = stamps[0], stamps[-1]
    outside = (query < first - tolerance) | (query > last + tolerance)
    if bool(outside.any()):
        bad = query[outside][:3].tolist()
        raise ValueError(
            f"interpolate_poses: query times {bad} lie outside the pose samples [{first.item()}, {last.item()}] "
            f"(tolerance {tolerance} s); wait for later poses or drop those frames"
        )
    query = query.clamp(first, last)
    upper = torch.searchsorted(stamps, query, right=False).clamp(1, max(stamps.numel() - 1, 1))
    if stamps.numel() == 1:
        return world_T_cam.expand(query.shape[0], 4, 4).clone()
    lower = upper - 1
    span = stamps[upper] - stamps[lower]
    alpha = ((query - stamps[lower]) / span).to(world_T_cam.dtype)  # [Q] in [0, 1]
    t0, q0 = translation_quat_from_pose(world_T_cam[lower])
    t1, q1 = translation_quat_from_pose(world_T_cam[upper])
    translation = t0 + (t1 - t0) * alpha[:, None]
    quat = slerp(q0, q1, alpha)
    poses = pose_from_translation_quat(translation, quat)
    # Queries on a sample return that sample bit for bit (no quaternion round trip).
    poses = torch.where((alpha == 0)[:, None, None], world_T_cam[lower], poses)
    return torch.where((alpha == 1)[:, None, None], world_T_cam[upper], poses)
