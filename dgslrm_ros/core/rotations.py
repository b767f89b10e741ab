"""Unit quaternions (w, x, y, z) and rotation matrices, batched in torch.

wxyz is the order of the 3DGS PLY layout, gsplat and the `rot_w..rot_z` fields of our point clouds,
so it is the only order used inside the library; ROS messages (x, y, z, w) are reordered at the edge.
"""
from __future__ import annotations

import torch
from torch import Tensor


def quat_normalize(quats: Tensor, eps: float = 1e-12) -> Tensor:
    """[..., 4] -> [..., 4] unit quaternions with w >= 0 (a canonical sign for comparisons)."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(eps)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(quats: Tensor) -> Tensor:
    """[..., 4] wxyz (any norm) -> [..., 3, 3] rotation matrices; differentiable."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(matrices: Tensor) -> Tensor:
    """[..., 3, 3] rotation matrices -> [..., 4] unit wxyz with w >= 0.

    Shepperd's method: pick the largest of the four squared components to divide by, so the result
    stays accurate near 180-degree rotations where the trace formula loses precision.
    """
    m = matrices
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # [..., 4, 4]: row i = 4 * q_i * q
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(dim=-1, keepdim=True)  # [..., 1]
    row = torch.gather(candidates, -2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    return quat_normalize(row)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of [..., 4] wxyz quaternions (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_conjugate(q: Tensor) -> Tensor:
    """[..., 4] -> [..., 4]; the inverse of a unit quaternion."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def slerp(q0: Tensor, q1: Tensor, alpha: Tensor | float) -> Tensor:
    """Spherical linear interpolation along the short arc; alpha in [0, 1], broadcast over [...]."""
    q0 = q0 / q0.norm(dim=-1, keepdim=True)
    q1 = q1 / q1.norm(dim=-1, keepdim=True)
    alpha = torch.as_tensor(alpha, dtype=q0.dtype, device=q0.device)
    if alpha.dim() > 0:
        alpha = alpha[..., None]
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)  # short arc: q and -q are the same rotation
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6  # nearly identical: fall back to normalised lerp
    safe_sin = torch.where(near, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(near, 1 - alpha, torch.sin((1 - alpha) * theta) / safe_sin)
    w1 = torch.where(near, alpha, torch.sin(alpha * theta) / safe_sin)
    return quat_normalize(w0 * q0 + w1 * q1)


def axis_angle_to_quat(axis_angle: Tensor) -> Tensor:
    """[..., 3] rotation vectors (axis * angle in radians) -> [..., 4] unit wxyz; exact at angle 0."""
    angle = axis_angle.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(half) / angle -> 1/2 as angle -> 0; the series keeps the small-angle case differentiable.
    small = angle < 1e-6
    safe_angle = torch.where(small, torch.ones_like(angle), angle)
    factor = torch.where(small, 0.5 - angle * angle / 48.0, torch.sin(half) / safe_angle)
    return torch.cat([torch.cos(half), axis_angle * factor], dim=-1)


def quat_to_axis_angle(quats: Tensor) -> Tensor:
    """[..., 4] wxyz -> [..., 3] rotation vectors with angle in [0, pi] (the short arc)."""
    q = quat_normalize(quats)  # w >= 0, so the angle 2 * atan2(|v|, w) lies in [0, pi]
    vec = q[..., 1:]
    sin_half = vec.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-8
    factor = torch.where(small, 2.0 / q[..., :1].clamp_min(1e-12), angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return vec * factor


def rotation_angle_between(q0: Tensor, q1: Tensor) -> Tensor:
    """[...] geodesic angle in radians between two orientations [..., 4] wxyz (sign-invariant)."""
    # atan2 of the relative rotation keeps precision for tiny angles, where acos(dot) would not.
    relative = quat_multiply(quat_conjugate(quat_normalize(q0)), quat_normalize(q1))
    return 2.0 * torch.atan2(relative[..., 1:].norm(dim=-1), relative[..., 0].abs())
