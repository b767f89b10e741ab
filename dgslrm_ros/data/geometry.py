"""Small pinhole helpers for the data package.

Kept here (not imported from core.cameras) so the ground truth depends on nothing but these few
lines, which the data tests check against the ray caster directly. Conventions are the library's:
pixel (col u, row v) has its centre at (u + 0.5, v + 0.5); `world_T_cam` is REP 103 optical
(x right, y down, z forward); ray directions have camera-frame z = 1, so a ray parameter is z-depth.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def pixel_centers(height: int, width: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """-> [H, W, 2] (u, v) pixel-centre coordinates."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5, indexing="ij"
    )
    return torch.stack([u, v], dim=-1)


def rays_through_pixels(K: Tensor, world_T_cam: Tensor, uv: Tensor) -> tuple[Tensor, Tensor]:
    """K [C, 3, 3], world_T_cam [C, 4, 4], uv [C, P, 2] -> origins [C, 1, 3], dirs [C, P, 3] (camera z = 1)."""
    x = (uv[..., 0] - K[:, None, 0, 2]) / K[:, None, 0, 0]
    y = (uv[..., 1] - K[:, None, 1, 2]) / K[:, None, 1, 1]
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [C, P, 3]
    rotation = world_T_cam[:, :3, :3]
    dirs = dirs_cam @ rotation.transpose(-1, -2)
    origins = world_T_cam[:, None, :3, 3]  # shared by all rays of a frame
    return origins, dirs


def world_to_camera(points: Tensor, world_T_cam: Tensor) -> Tensor:
    """points [C, P, 3] in world, world_T_cam [C, 4, 4] -> [C, P, 3] in the camera frame."""
    rotation = world_T_cam[:, :3, :3]
    return (points - world_T_cam[:, None, :3, 3]) @ rotation


def project(points: Tensor, K: Tensor, world_T_cam: Tensor) -> tuple[Tensor, Tensor]:
    """points [C, P, 3] -> (uv [C, P, 2] continuous pixel coordinates, z [C, P] camera depth)."""
    cam = world_to_camera(points, world_T_cam)
    z = cam[..., 2]
    safe_z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    u = K[:, None, 0, 0] * cam[..., 0] / safe_z + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * cam[..., 1] / safe_z + K[:, None, 1, 2]
    return torch.stack([u, v], dim=-1), z


def intrinsics_from_fov(horizontal_fov_deg: float, height: int, width: int) -> Tensor:
    """Square pixels, principal point at the image centre -> [3, 3]."""
    focal = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
    return torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def look_at(position: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """position, target [..., 3] -> world_T_cam [..., 4, 4] looking at target (z forward, y down, world z up)."""
    if up is None:
        up = position.new_tensor([0.0, 0.0, 1.0])
    forward = target - position
    forward = forward / forward.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    right = torch.linalg.cross(forward, up.expand_as(forward), dim=-1)
    right = right / right.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    down = torch.linalg.cross(forward, right, dim=-1)
    pose = torch.zeros(*position.shape[:-1], 4, 4, dtype=position.dtype)
    pose[..., :3, 0] = right
    pose[..., :3, 1] = down
    pose[..., :3, 2] = forward
    pose[..., :3, 3] = position
    pose[..., 3, 3] = 1.0
    return pose


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """[..., 3] rotation vectors -> [..., 3, 3] (Rodrigues; exact at zero angle)."""
    angle = axis_angle.norm(dim=-1, keepdim=True)  # [..., 1]
    axis = axis_angle / angle.clamp_min(1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    sin = torch.sin(angle)[..., None]
    cos = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype).expand_as(skew)
    return eye + sin * skew + (1 - cos) * (skew @ skew)
