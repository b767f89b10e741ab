"""Pinhole cameras in the REP 103 optical frame (x right, y down, z forward), batched in torch.

Pixel (col u, row v) covers [u, u+1) x [v, v+1) and has its centre at (u + 0.5, v + 0.5); with that
convention a resize by s maps every continuous image coordinate x to s * x, so K scales exactly (no
half-pixel corrections) and crops only shift the principal point. Poses are `world_T_cam` (camera
points -> world). Depth is z-depth: a pixel's 3D point is `o + depth * d` with `d = R K^-1 [u, v, 1]`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.shapes import broadcast_shape


def _check_matrix(name: str, tensor: Tensor, size: int) -> None:
    if not isinstance(tensor, Tensor) or tensor.dim() < 2 or tuple(tensor.shape[-2:]) != (size, size):
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"{name}: expected shape [..., {size}, {size}], got {shape}")


def _check_size(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"image size: expected positive height and width, got H={height}, W={width}")


def pixel_centers(height: int, width: int, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """[H, W, 2] (u + 0.5, v + 0.5) image coordinates of every pixel centre, x (column) first."""
    _check_size(height, width)
    u = torch.arange(width, device=device, dtype=dtype) + 0.5
    v = torch.arange(height, device=device, dtype=dtype) + 0.5
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


def camera_rays(K: Tensor, world_T_cam: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Per-pixel ray origins and directions in the world frame.

    K [..., 3, 3], world_T_cam [..., 4, 4] (broadcast together) -> origins, dirs [..., H, W, 3]; the
    directions are not unit: their camera-frame z is 1, so `origin + depth * dir` uses z-depth.
    """
    _check_matrix("K", K, 3)
    _check_matrix("world_T_cam", world_T_cam, 4)
    batch = broadcast_shape(K.shape[:-2], world_T_cam.shape[:-2])
    dtype = torch.promote_types(K.dtype, world_T_cam.dtype)
    K = K.to(dtype).expand(*batch, 3, 3)
    world_T_cam = world_T_cam.to(dtype).expand(*batch, 4, 4)
    uv = pixel_centers(height, width, device=K.device, dtype=dtype)  # [H, W, 2]
    pixels = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)  # [H, W, 3]
    dirs_cam = torch.einsum("...ij,hwj->...hwi", torch.linalg.inv(K), pixels)  # [..., H, W, 3], z = 1
    rotation = world_T_cam[..., None, None, :3, :3]  # [..., 1, 1, 3, 3]
    dirs = (rotation @ dirs_cam[..., None]).squeeze(-1)  # [..., H, W, 3]
    origins = world_T_cam[..., None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def plucker_rays(K: Tensor, world_T_cam: Tensor, height: int, width: int) -> Tensor:
    """[..., 6, H, W] Plücker ray map: unit direction d, then moment o x d (channels first)."""
    origins, dirs = camera_rays(K, world_T_cam, height, width)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    moment = torch.linalg.cross(origins, unit, dim=-1)
    rays = torch.cat([unit, moment], dim=-1)  # [..., H, W, 6]
    return rays.movedim(-1, -3)


def pixel_length(offset: Tensor) -> Tensor:
    """Length of 2D offsets [..., 2] -> [...]. `Tensor.norm` over a last dim of 2 (worse when it is
    strided, as grid_sample's outputs are) cost the classical cues 5-10x more on a CPU than hypot."""
    return torch.hypot(offset[..., 0], offset[..., 1])


def inside_image(uv: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates [..., 2] (centres at +0.5) -> bool [...]: on the image, edges included (where
    bilinear sampling with border padding still reads real pixels)."""
    return (uv[..., 0] >= 0) & (uv[..., 0] <= width) & (uv[..., 1] >= 0) & (uv[..., 1] <= height)


def safe_divisor(values: Tensor) -> Tensor:
    """`values` with magnitudes below 1e-12 replaced by 1e-12: a divisor that is never zero (a point on
    the camera plane projects far away instead of to inf/NaN; callers mask points behind the camera)."""
    return torch.where(values.abs() < 1e-12, torch.full_like(values, 1e-12), values)


def project_points(points: Tensor, K: Tensor, world_T_cam: Tensor) -> tuple[Tensor, Tensor]:
    """World points [..., N, 3] -> image coordinates [..., N, 2] (continuous, centre at +0.5) and
    z-depth [..., N] in the camera; points behind the camera get depth <= 0 and meaningless uv."""
    if not isinstance(points, Tensor) or points.dim() < 2 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape [..., N, 3], got {getattr(points, 'shape', type(points))}")
    _check_matrix("K", K, 3)
    _check_matrix("world_T_cam", world_T_cam, 4)
    rotation = world_T_cam[..., :3, :3]
    translation = world_T_cam[..., :3, 3]
    # cam = R^T (p - t)   (rows of R^T applied via p @ R)
    cam = (points - translation[..., None, :]) @ rotation  # [..., N, 3]
    depth = cam[..., 2]
    safe = safe_divisor(depth)
    pix = cam @ K.transpose(-1, -2)  # [..., N, 3]
    uv = pix[..., :2] / safe[..., None]
    return uv, depth


def unproject_depth(depth: Tensor, K: Tensor, world_T_cam: Tensor) -> Tensor:
    """z-depth [..., 1, H, W] -> world points [..., H, W, 3] at the pixel centres."""
    if not isinstance(depth, Tensor) or depth.dim() < 3 or depth.shape[-3] != 1:
        raise ValueError(f"depth: expected shape [..., 1, H, W] (z-depth), got {getattr(depth, 'shape', type(depth))}")
    height, width = depth.shape[-2:]
    origins, dirs = camera_rays(K, world_T_cam, height, width)
    return origins + depth.squeeze(-3)[..., None] * dirs


def scale_intrinsics(K: Tensor, scale_x: float, scale_y: float | None = None) -> Tensor:
    """K [..., 3, 3] for an image resized by (scale_x, scale_y) (new_size / old_size)."""
    _check_matrix("K", K, 3)
    scale_y = scale_x if scale_y is None else scale_y
    if scale_x <= 0 or scale_y <= 0:
        raise ValueError(f"scale_intrinsics: expected positive scales, got ({scale_x}, {scale_y})")
    factors = K.new_tensor([[scale_x, scale_x, scale_x], [scale_y, scale_y, scale_y], [1.0, 1.0, 1.0]])
    return K * factors


def crop_intrinsics(K: Tensor, top: float, left: float) -> Tensor:
    """K [..., 3, 3] for the image cropped so that pixel (left, top) becomes (0, 0)."""
    _check_matrix("K", K, 3)
    out = K.clone()
    out[..., 0, 2] = K[..., 0, 2] - left
    out[..., 1, 2] = K[..., 1, 2] - top
    return out


def center_crop_box(height: int, width: int, out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w): the largest centred crop with the aspect ratio of out_hw."""
    _check_size(height, width)
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    _check_size(out_h, out_w)
    if width * out_h > height * out_w:  # too wide: crop columns
        crop_h, crop_w = height, max(1, round(height * out_w / out_h))
    else:
        crop_h, crop_w = max(1, round(width * out_h / out_w)), width
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    return top, left, crop_h, crop_w


def resize_crop_frames(frames: Tensor, K: Tensor, out_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Centre-crop to the aspect of out_hw, then resize (antialiased bilinear); K follows exactly.

    frames [..., C, H, W] float, K [..., 3, 3] -> frames [..., C, out_h, out_w], K [..., 3, 3].
    """
    if not isinstance(frames, Tensor) or frames.dim() < 3:
        raise ValueError(f"frames: expected shape [..., C, H, W], got {getattr(frames, 'shape', type(frames))}")
    if not frames.dtype.is_floating_point:
        raise ValueError(f"frames: expected float images in [0, 1], got dtype {frames.dtype}; convert first")
    _check_matrix("K", K, 3)
    height, width = frames.shape[-2:]
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    top, left, crop_h, crop_w = center_crop_box(height, width, (out_h, out_w))
    cropped = frames[..., top:top + crop_h, left:left + crop_w]
    K_out = crop_intrinsics(K, top, left)
    if (crop_h, crop_w) != (out_h, out_w):
        lead = cropped.shape[:-3]
        flat = cropped.reshape(-1, *cropped.shape[-3:])
        downsampling = out_h < crop_h or out_w < crop_w
        flat = F.interpolate(flat, size=(out_h, out_w), mode="bilinear", align_corners=False,
                             antialias=downsampling)
        cropped = flat.reshape(*lead, *flat.shape[-3:])
        K_out = scale_intrinsics(K_out, out_w / crop_w, out_h / crop_h)
    return cropped, K_out


def intrinsics_from_opencv(K_opencv: Tensor) -> Tensor:
    """K [..., 3, 3] in the OpenCV/CameraInfo convention (pixel centres at integers) -> ours (+0.5)."""
    _check_matrix("K_opencv", K_opencv, 3)
    out = K_opencv.clone()
    out[..., 0, 2] = K_opencv[..., 0, 2] + 0.5
    out[..., 1, 2] = K_opencv[..., 1, 2] + 0.5
    return out


def intrinsics_to_opencv(K: Tensor) -> Tensor:
    """K [..., 3, 3] in our convention (pixel centres at +0.5) -> OpenCV/CameraInfo (integers)."""
    _check_matrix("K", K, 3)
    out = K.clone()
    out[..., 0, 2] = K[..., 0, 2] - 0.5
    out[..., 1, 2] = K[..., 1, 2] - 0.5
    return out
