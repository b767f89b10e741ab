"""plumb_bob lens distortion (OpenCV's k1 k2 p1 p2 k3), for sensor_msgs/CameraInfo handling.

The model assumes a pinhole camera, so the node undistorts images whose CameraInfo carries non-zero
coefficients, keeping the same K. `K` here follows the library convention (pixel centres at +0.5,
see core/cameras.py); a CameraInfo K (OpenCV, centres at integers) needs +0.5 on cx and cy first
(`cameras.intrinsics_from_opencv`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import pixel_centers


def _coefficients(D, like: Tensor) -> tuple[Tensor, ...]:
    """Accept 4, 5 (plumb_bob) or 8 (rational: the extra 3 must be zero) coefficients."""
    d = torch.as_tensor(np.asarray(D, dtype=np.float64) if not isinstance(D, Tensor) else D)
    d = d.to(dtype=like.dtype, device=like.device).reshape(-1)
    if d.numel() == 4:
        d = torch.cat([d, d.new_zeros(1)])
    if d.numel() == 8 and bool((d[5:] == 0).all()):
        d = d[:5]
    if d.numel() != 5:
        raise ValueError(
            f"distortion: expected plumb_bob coefficients (k1, k2, p1, p2[, k3]), got {d.numel()} values; "
            "other models are not supported, publish rectified images instead"
        )
    return tuple(d.unbind())


def _check_uv(uv: Tensor) -> None:
    if not isinstance(uv, Tensor) or uv.dim() < 1 or uv.shape[-1] != 2:
        raise ValueError(f"points: expected pixel coordinates [..., 2], got {getattr(uv, 'shape', type(uv))}")


def distort_normalized(xy: Tensor, D) -> Tensor:
    """[..., 2] ideal normalised coordinates (x/z, y/z) -> [..., 2] distorted normalised coordinates."""
    k1, k2, p1, p2, k3 = _coefficients(D, xy)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def undistort_normalized(xy_distorted: Tensor, D, iterations: int = 20) -> Tensor:
    """Invert `distort_normalized` by fixed-point iteration (as OpenCV does); exact for D = 0."""
    k1, k2, p1, p2, k3 = _coefficients(D, xy_distorted)
    xd, yd = xy_distorted[..., 0], xy_distorted[..., 1]
    x, y = xd, yd
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    return torch.stack([x, y], dim=-1)


def _to_normalized(uv: Tensor, K: Tensor) -> Tensor:
    fx, fy, cx, cy, skew = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    return torch.stack([x, y], dim=-1)


def _to_pixels(xy: Tensor, K: Tensor) -> Tensor:
    u = K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2]
    v = K[1, 1] * xy[..., 1] + K[1, 2]
    return torch.stack([u, v], dim=-1)


def _check_K(K: Tensor, like: Tensor) -> Tensor:
    K = torch.as_tensor(K, dtype=like.dtype, device=like.device)
    if tuple(K.shape) != (3, 3):
        raise ValueError(f"K: expected one [3, 3] intrinsic matrix, got {tuple(K.shape)}")
    return K


def distort_points(uv: Tensor, K: Tensor, D) -> Tensor:
    """Ideal pinhole pixels [..., 2] -> where the distorting lens images them [..., 2] (same K)."""
    _check_uv(uv)
    K = _check_K(K, uv)
    return _to_pixels(distort_normalized(_to_normalized(uv, K), D), K)


def undistort_points(uv_distorted: Tensor, K: Tensor, D, iterations: int = 20) -> Tensor:
    """Distorted pixels [..., 2] -> ideal pinhole pixels [..., 2] (same K), iteratively."""
    _check_uv(uv_distorted)
    K = _check_K(K, uv_distorted)
    return _to_pixels(undistort_normalized(_to_normalized(uv_distorted, K), D, iterations), K)


def undistortion_grid(K: Tensor, D, height: int, width: int) -> Tensor:
    """[1, H, W, 2] grid_sample grid: for each output (undistorted) pixel, where to read the input.

    Compute it once per CameraInfo and pass it to `undistort_image` for every frame.
    """
    K = _check_K(K, torch.zeros((), dtype=torch.float64))
    centers = pixel_centers(height, width, dtype=torch.float64)  # [H, W, 2]
    source = distort_points(centers, K, D)  # [H, W, 2] pixel coordinates in the distorted image
    # grid_sample with align_corners=False maps -1/+1 to the outer pixel edges: x_norm = 2 x / W - 1.
    size = torch.tensor([width, height], dtype=torch.float64)
    return (2.0 * source / size - 1.0)[None].float()


def undistort_image(image, K, D, grid: Tensor | None = None):
    """Resample a distorted image [H, W, C] (numpy or torch, uint8 or float) to the pinhole image
    with the same K by bilinear remap; pixels whose source falls outside the frame become 0."""
    is_numpy = isinstance(image, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(image)) if is_numpy else image
    if not isinstance(tensor, Tensor) or tensor.dim() not in (2, 3):
        raise ValueError(f"undistort_image: expected an image [H, W, C] or [H, W], got {getattr(image, 'shape', type(image))}")
    squeeze = tensor.dim() == 2
    if squeeze:
        tensor = tensor[..., None]
    height, width = tensor.shape[:2]
    if grid is None:
        grid = undistortion_grid(torch.as_tensor(K, dtype=torch.float64), D, height, width)
    if tuple(grid.shape) != (1, height, width, 2):
        raise ValueError(f"undistort_image: grid is for {tuple(grid.shape[1:3])}, image is {(height, width)}")
    source = tensor.permute(2, 0, 1)[None].to(torch.float32)  # [1, C, H, W]
    out = F.grid_sample(source, grid.to(source.device), mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out[0].permute(1, 2, 0)  # [H, W, C]
    if not tensor.dtype.is_floating_point:
        info = torch.iinfo(tensor.dtype)
        out = out.round().clamp(info.min, info.max)
    out = out.to(tensor.dtype)
    if squeeze:
        out = out[..., 0]
    return out.numpy() if is_numpy else out
