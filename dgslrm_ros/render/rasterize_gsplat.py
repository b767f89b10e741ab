"""gsplat 1.5.3 backend (CUDA only); the only module that imports gsplat, and only inside functions.

Importing gsplat is slow and, on a machine without a CUDA toolchain, may fail, so `dgslrm_ros.render`
must stay importable without touching it.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from torch import Tensor

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.gaussians import EPS2D


class GsplatUnavailableError(DgslrmError, RuntimeError):
    """The gsplat backend was asked for where it cannot run."""


@lru_cache(maxsize=1)
def gsplat_importable() -> bool:
    """True when `import gsplat` works (cached: the import is slow and does not change)."""
    try:
        importlib.import_module("gsplat")
    except Exception:  # a broken CUDA build raises more than ImportError
        return False
    return True


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] wxyz
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    colors: Tensor,  # [N, 3]
    cam_T_world: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor | None,  # [C, 3]
    near_plane: float,
    far_plane: float,
    eps2d: float = EPS2D,
) -> tuple[Tensor, Tensor, Tensor]:
    """-> rgb [C, 3, H, W], alpha [C, 1, H, W], expected z-depth [C, 1, H, W] (0 where alpha is 0)."""
    if means.device.type != "cuda":
        raise GsplatUnavailableError(
            f"gsplat backend: expected CUDA tensors, got tensors on {means.device}; "
            "move the Gaussians and cameras to a CUDA device or use backend='torch'")
    if not gsplat_importable():
        raise GsplatUnavailableError("gsplat backend: `import gsplat` failed; install gsplat==1.5.3 "
                                     "with CUDA support or use backend='torch'")
    if means.shape[0] == 0:  # gsplat's kernels do not take empty inputs
        num_cameras = cam_T_world.shape[0]
        zeros = means.new_zeros(num_cameras, 1, height, width)
        rgb = zeros.expand(num_cameras, 3, height, width).clone()
        if background is not None:
            rgb = rgb + background[:, :, None, None]
        return rgb, zeros, zeros.clone()
    from gsplat import rasterization

    # gsplat's kernels are float32 only.
    as32 = [t.float() for t in (means, quats, scales, opacities, colors, cam_T_world, K)]
    render_colors, render_alphas, _ = rasterization(
        *as32[:5], viewmats=as32[5], Ks=as32[6], width=width, height=height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
        render_mode="RGB+ED", rasterize_mode="classic", packed=True, tile_size=16,
    )  # [C, H, W, 4] (rgb + expected depth), [C, H, W, 1]
    rgb = render_colors[..., :3]
    if background is not None:  # composited here: gsplat 1.5.3's packed path refuses per-camera backgrounds
        rgb = rgb + (1.0 - render_alphas) * background.float()[:, None, None, :]  # (its assertion on the H100)
    dtype = means.dtype
    return (rgb.permute(0, 3, 1, 2).to(dtype), render_alphas.permute(0, 3, 1, 2).to(dtype),
            render_colors[..., 3:].permute(0, 3, 1, 2).to(dtype))

