"""Rendering of 3D Gaussians: one entry point, `render`, over two interchangeable backends.

`torch` is our own differentiable pure-PyTorch rasterizer (runs anywhere, the CPU path); `gsplat`
calls gsplat 1.5.3 on CUDA. Both follow gsplat's classic-mode rules, so an image rendered by one can
be compared with the other (test/render/test_gsplat_agreement.py). gsplat is imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import EPS2D, DeformableGaussians, Gaussians  # EPS2D: the drawing's low-pass
from dgslrm_ros.render.projection import ProjectedGaussians, project_gaussians
# Modules, not their same-named functions: binding `rasterize_torch` the function here would shadow
# the submodule `dgslrm_ros.render.rasterize_torch` for `import ... as` users.
from dgslrm_ros.render import rasterize_gsplat as gsplat_backend
from dgslrm_ros.render import rasterize_torch as torch_backend
from dgslrm_ros.render.rasterize_gsplat import GsplatUnavailableError, gsplat_importable

BACKENDS = ("auto", "torch", "gsplat")

__all__ = ["BACKENDS", "GsplatUnavailableError", "RenderOutput", "color_drawing", "render", "render_at_instants",
           "render_instant", "resolve_backend"]


@dataclass(frozen=True)
class RenderOutput:
    """Images of C cameras, channels first."""

    rgb: Tensor  # [C, 3, H, W]
    alpha: Tensor  # [C, 1, H, W] accumulated opacity, 1 - final transmittance
    depth: Tensor  # [C, 1, H, W] expected z-depth sum(w_i z_i) / alpha, 0 where alpha is 0


def resolve_backend(backend: str, device: torch.device) -> str:
    """'auto' -> 'gsplat' for CUDA tensors when gsplat imports, else 'torch'."""
    if backend not in BACKENDS:
        raise ValueError(f"render: expected backend in {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    return "gsplat" if device.type == "cuda" and gsplat_importable() else "torch"


def render(
    gaussians: Gaussians,
    world_T_cam: Tensor,  # [C, 4, 4] camera-to-world, OpenCV optical frame
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor | None = None,  # [3] or [C, 3] rgb; None = black
    backend: str = "auto",
    near_plane: float = 0.01,
    far_plane: float = 1e10,
) -> RenderOutput:
    """Render `gaussians` from C cameras; differentiable with respect to every Gaussian field."""
    if not isinstance(gaussians, Gaussians):
        raise TypeError(f"render: expected a dgslrm_ros.core.gaussians.Gaussians, got {type(gaussians).__name__}")
    if world_T_cam.dim() != 3 or world_T_cam.shape[1:] != (4, 4):
        raise ValueError(f"render: expected world_T_cam [C, 4, 4], got {tuple(world_T_cam.shape)}")
    num_cameras = world_T_cam.shape[0]
    if K.shape != (num_cameras, 3, 3):
        raise ValueError(f"render: expected K [C={num_cameras}, 3, 3] (one per camera), got {tuple(K.shape)}")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"render: expected a positive image size, got width={width}, height={height}")
    if not 0 < near_plane < far_plane:
        raise ValueError(f"render: expected 0 < near_plane < far_plane, got {near_plane}, {far_plane}")
    dtype, device = gaussians.dtype, gaussians.device
    world_T_cam = world_T_cam.to(device=device, dtype=dtype)
    K = K.to(device=device, dtype=dtype)
    if background is not None:
        background = background.to(device=device, dtype=dtype)
        if background.shape == (3,):
            background = background.expand(num_cameras, 3)
        if background.shape != (num_cameras, 3):
            raise ValueError(f"render: expected background [3] or [C={num_cameras}, 3], got {tuple(background.shape)}")
    cam_T_world = torch.linalg.inv(world_T_cam)
    width, height = int(width), int(height)

    if resolve_backend(backend, device) == "gsplat":
        rgb, alpha, depth = gsplat_backend.rasterize_gsplat(
            gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, gaussians.colors,
            cam_T_world, K, width, height, background, near_plane, far_plane, EPS2D)
        return RenderOutput(rgb=rgb, alpha=alpha, depth=depth)

    projected: ProjectedGaussians = project_gaussians(
        gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, cam_T_world, K,
        width, height, eps2d=EPS2D, near_plane=near_plane, far_plane=far_plane)
    # Depth rides along as a fourth colour channel (as in gsplat's "RGB+ED"), then is normalised.
    channels = torch.cat([gaussians.colors[None].expand(num_cameras, -1, -1), projected.depths[..., None]], dim=-1)
    if background is not None:
        background = torch.cat([background, background.new_zeros(num_cameras, 1)], dim=-1)
    image, alpha = torch_backend.rasterize_torch(projected, channels, gaussians.opacities, width, height, background)
    depth = image[:, 3:] / alpha.clamp_min(1e-10)
    return RenderOutput(rgb=image[:, :3], alpha=alpha, depth=depth)


def color_drawing(
    gaussians: Gaussians,
    world_T_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    backend: str = "auto",
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """`render` of these Gaussians as a function of their colours [N, 3] alone: colors -> (rgb [C, 3, H, W],
    alpha [C, 1, H, W]), black behind. On the torch backend the projection, the tiles' depth-sorted lists and
    the compositing weights are computed once (the drawing is linear in the colours), so a solver that changes
    only colours (render/color_solve.py) pays one scatter-add per drawing; gsplat renders in full each time."""
    if resolve_backend(backend, gaussians.device) == "gsplat":
        def draw_gsplat(colors: Tensor) -> tuple[Tensor, Tensor]:
            out = render(replace(gaussians, colors=colors), world_T_cam, K, width, height, None, backend)
            return out.rgb, out.alpha

        return draw_gsplat
    dtype, device = gaussians.dtype, gaussians.device
    cam_T_world = torch.linalg.inv(world_T_cam.to(device=device, dtype=dtype))
    K = K.to(device=device, dtype=dtype)
    projected = project_gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
                                  cam_T_world, K, int(width), int(height), eps2d=EPS2D)
    weights = torch_backend.composite_weights(projected, gaussians.opacities, int(width), int(height))
    num_cameras = cam_T_world.shape[0]

    def draw(colors: Tensor) -> tuple[Tensor, Tensor]:
        return weights.apply(colors.to(dtype)[None].expand(num_cameras, -1, -1))

    return draw


def render_instant(
    gaussians: DeformableGaussians,
    frame: float,  # window frame, fractional between frames
    world_T_cam: Tensor,  # [C, 4, 4]
    K: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    background: Tensor | None = None,
    backend: str = "auto",
) -> RenderOutput:
    """The deformable Gaussians drawn at a window frame. With a keyframe fade (keyframe_support > 0), in two
    layers: the keyframes around the instant in front, and every keyframe behind them where those leave the
    view uncovered (rgb = front + (1 - front alpha) x back): between frames the near keyframes decide, off
    the camera path the others still fill in (docs/training.md). Without a fade: `render(gaussians.at(frame))`."""
    if gaussians.keyframe_support == 0:
        return render(gaussians.at(frame), world_T_cam, K, width, height, background, backend)
    front_set, back_set = gaussians.layers_at(frame)
    front = render(front_set, world_T_cam, K, width, height, None, backend)  # premultiplied: black behind it
    back = render(back_set, world_T_cam, K, width, height, background, backend)
    uncovered = 1.0 - front.alpha
    alpha = front.alpha + uncovered * back.alpha
    depth = (front.depth * front.alpha + uncovered * back.alpha * back.depth) / alpha.clamp_min(1e-10)
    return RenderOutput(rgb=front.rgb + uncovered * back.rgb, alpha=alpha, depth=depth)


def render_at_instants(gaussians: DeformableGaussians, frame_index: Tensor, world_T_cam: Tensor, K: Tensor,
                       height: int, width: int, background: float = 0.0) -> tuple[Tensor, Tensor]:
    """Render views [S] each at its own window frame -> (rgb [S, 3, H, W], alpha [S, 1, H, W]).

    A fractional frame (float frame_index) interpolates the offsets between its two window frames.
    Views sharing an instant share one deformed Gaussian set and one renderer call.
    """
    if frame_index.dim() != 1 or world_T_cam.shape[0] != frame_index.shape[0] or K.shape[0] != frame_index.shape[0]:
        raise ValueError(
            f"render_at_instants: expected frame_index [S], world_T_cam [S, 4, 4], K [S, 3, 3]; got "
            f"{tuple(frame_index.shape)}, {tuple(world_T_cam.shape)}, {tuple(K.shape)}"
        )
    s = frame_index.shape[0]
    rgb = world_T_cam.new_zeros(s, 3, height, width)
    alpha = world_T_cam.new_zeros(s, 1, height, width)
    bg = torch.full((3,), float(background), dtype=world_T_cam.dtype, device=world_T_cam.device)
    for frame in torch.unique(frame_index).tolist():
        views = (frame_index == frame).nonzero().squeeze(1)
        out = render_instant(gaussians, frame, world_T_cam[views], K[views], width, height, background=bg)
        rgb = rgb.index_copy(0, views, out.rgb.to(rgb.dtype))
        alpha = alpha.index_copy(0, views, out.alpha.to(alpha.dtype))
    return rgb, alpha
