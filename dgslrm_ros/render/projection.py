"""EWA projection of 3D Gaussians into pinhole cameras, the first stage of both rasterizers.

A pure, differentiable function that follows gsplat 1.5.3's `fully_fused_projection` (pinhole,
"classic" mode) term by term, so the pure-PyTorch rasterizer and gsplat see the same 2D Gaussians:

- the Jacobian of the perspective projection is evaluated at the Gaussian centre with x/z, y/z clamped
  to 1.3x the field of view (keeps Gaussians far outside the image from blowing up);
- `eps2d` (core.gaussians.EPS2D, 0.3 px^2) is added to the 2D covariance as a low-pass filter, without opacity
  compensation;
- the footprint half-size per axis is ceil(extend * sigma_axis) with the opacity-aware
  extend = min(3.33, sqrt(2 ln(255 * opacity))), i.e. the box outside which alpha < 1/255;
- Gaussians outside [near_plane, far_plane], with a degenerate covariance, opacity < 1/255 or a
  footprint wholly outside the image get radii 0 and are ignored downstream.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import EPS2D
from dgslrm_ros.core.rotations import quat_to_matrix

ALPHA_THRESHOLD = 1.0 / 255.0  # a Gaussian contributes to a pixel only at alpha >= this (gsplat)
MAX_EXTEND_SIGMAS = 3.33  # footprint cap in standard deviations (gsplat 1.5.3)


@dataclass(frozen=True)
class ProjectedGaussians:
    """Per-camera 2D Gaussians; entries with any radius 0 are culled and hold placeholder values."""

    means2d: Tensor  # [C, N, 2] pixel coordinates (pixel (u, v) has its centre at u + 0.5, v + 0.5)
    conics: Tensor  # [C, N, 3] inverse 2D covariance (a, b, c): [[a, b], [b, c]]
    depths: Tensor  # [C, N] camera-frame z
    radii: Tensor  # [C, N, 2] int32 footprint half-size in pixels (x, y); 0 = culled

    @property
    def visible(self) -> Tensor:
        """[C, N] bool: the Gaussian reaches the rasterizer for that camera."""
        return (self.radii > 0).all(dim=-1)


def covariances_from_quats_scales(quats: Tensor, scales: Tensor) -> Tensor:
    """[N, 4] wxyz (any norm), [N, 3] std devs -> [N, 3, 3] world covariance R S S^T R^T."""
    rotation_scaled = quat_to_matrix(quats) * scales[..., None, :]  # [N, 3, 3] = R diag(s)
    return rotation_scaled @ rotation_scaled.transpose(-1, -2)


def project_gaussians(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] wxyz
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    cam_T_world: Tensor,  # [C, 4, 4] world-to-camera (gsplat's viewmats)
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    eps2d: float = EPS2D,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> ProjectedGaussians:
    """Project N Gaussians into C cameras (differentiable in means2d, conics and depths)."""
    n = means.shape[0]
    if means.shape != (n, 3) or quats.shape != (n, 4) or scales.shape != (n, 3) or opacities.shape != (n,):
        raise ValueError(
            "project_gaussians: expected means [N, 3], quats [N, 4], scales [N, 3], opacities [N]; got "
            f"{tuple(means.shape)}, {tuple(quats.shape)}, {tuple(scales.shape)}, {tuple(opacities.shape)}"
        )
    c = cam_T_world.shape[0]
    if cam_T_world.shape != (c, 4, 4) or K.shape != (c, 3, 3):
        raise ValueError(
            f"project_gaussians: expected cam_T_world [C, 4, 4] and K [C, 3, 3], got "
            f"{tuple(cam_T_world.shape)} and {tuple(K.shape)}"
        )
    rotation = cam_T_world[:, None, :3, :3]  # [C, 1, 3, 3]
    translation = cam_T_world[:, None, :3, 3]  # [C, 1, 3]
    means_cam = (rotation @ means[None, :, :, None]).squeeze(-1) + translation  # [C, N, 3]
    covars_cam = rotation @ covariances_from_quats_scales(quats, scales)[None] @ rotation.transpose(-1, -2)

    x, y, z = means_cam.unbind(-1)  # [C, N] each
    in_depth_range = (z >= near_plane) & (z <= far_plane)
    # Culled Gaussians still flow through the arithmetic (masked at the end); a safe z keeps their
    # forward finite so their zero gradient does not turn into 0 * inf = NaN.
    z_safe = torch.where(in_depth_range, z, torch.ones_like(z))
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # [C, 1]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    tan_half_fov_x = 0.5 * width / fx
    tan_half_fov_y = 0.5 * height / fy
    x_over_z = torch.minimum(torch.maximum(x / z_safe, -(cx / fx + 0.3 * tan_half_fov_x)),
                             (width - cx) / fx + 0.3 * tan_half_fov_x)
    y_over_z = torch.minimum(torch.maximum(y / z_safe, -(cy / fy + 0.3 * tan_half_fov_y)),
                             (height - cy) / fy + 0.3 * tan_half_fov_y)
    zeros = torch.zeros_like(z_safe)
    jacobian = torch.stack(
        [
            torch.stack([fx / z_safe, zeros, -fx * x_over_z / z_safe], dim=-1),
            torch.stack([zeros, fy / z_safe, -fy * y_over_z / z_safe], dim=-1),
        ],
        dim=-2,
    )  # [C, N, 2, 3]
    covars2d = jacobian @ covars_cam @ jacobian.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)  # [C, N, 2]

    var_x = covars2d[..., 0, 0] + eps2d
    var_y = covars2d[..., 1, 1] + eps2d
    cov_xy = covars2d[..., 0, 1]
    det = var_x * var_y - cov_xy * cov_xy
    valid = in_depth_range & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([var_y / det_safe, -cov_xy / det_safe, var_x / det_safe], dim=-1)  # [C, N, 3]

    with torch.no_grad():
        opacity = opacities.detach()[None].expand_as(z)  # [C, N]
        valid = valid & (opacity >= ALPHA_THRESHOLD)
        extend = torch.sqrt(2.0 * torch.log(opacity.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp(max=MAX_EXTEND_SIGMAS)
        # Same float32 arithmetic as gsplat so the integer footprints (and tile lists) agree.
        radius_x = torch.ceil(extend.float() * torch.sqrt(var_x.detach().float().clamp_min(0)))
        radius_y = torch.ceil(extend.float() * torch.sqrt(var_y.detach().float().clamp_min(0)))
        valid = valid & ((radius_x > 0) | (radius_y > 0))
        centre = means2d.detach()
        valid = valid & ((centre[..., 0] + radius_x > 0) & (centre[..., 0] - radius_x < width))
        valid = valid & ((centre[..., 1] + radius_y > 0) & (centre[..., 1] - radius_y < height))
        radii = torch.stack([radius_x, radius_y], dim=-1).to(torch.int32) * valid[..., None]

    return ProjectedGaussians(means2d=means2d, conics=conics, depths=z, radii=radii)
