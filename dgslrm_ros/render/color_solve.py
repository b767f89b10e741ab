"""Keyframe colours solved against the drawing: each keyframe, drawn at its own instant from its own camera,
gives its image back.

A keyframe pixel's Gaussian does not draw its pixel alone: its footprint and the renderer's low-pass spread it
over the neighbours, the neighbours' splats cover it in depth order, and the keyframes of the back layer fill
what the front leaves uncovered (render.render_instant). The drawing is still *linear* in the colours (the
compositing weights depend only on positions, shapes and opacities) and each Gaussian weighs most at its own
pixel, so the Richardson iteration

    colors <- clamp(colors + (image_k - render_k(colors)) at the Gaussian's pixel in its keyframe k)

converges towards colours that the drawing turns back into the keyframes. The pre-compensated colours of
geometry/classical.py (a linear unsharp mask for the blur alone, blind to the depth order) are its start.

Cost: each keyframe's front layer (its own splats) is projected, tiled and composited once; the compositing
weights are kept (render.color_drawing), so an iteration is one scatter-add per keyframe. The back layer of
each keyframe's instant (every keyframe, wide splats) is drawn once, with the colours it starts with, from
one Gaussian per BACK_CELL x BACK_CELL pixels of each keyframe at 1/BACK_CELL of the size: it only fills
what the front leaves uncovered. On the real clips (64 px, held-out frames) this back keeps 3.35 of the
3.7 dB that the full back (every splat, half size) gave on cube and realshort, 0.76 of 0.93 on cockatoo; the
frame itself as the back (nothing drawn) kept 2.7, 3.0 and 0.5. Both together took the solve from 453 to
264 ms a window (`bench --node`), so that the live node keeps up. Measured in docs/results/color_solve.md.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import project_points, scale_intrinsics
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.render import color_drawing, render

# The solved colours may leave [0, 1]: where a splat's neighbours cover part of its pixel it must overshoot
# for the pixel to come out right. Bounded so that no colour runs away where the system is badly conditioned
# (a pixel whose own splat is hidden); packing for messages clamps to [0, 1] (convert/fastcopy.py).
COLOR_RANGE = (-0.5, 1.5)
# The back layer is drawn from one Gaussian per BACK_CELL x BACK_CELL keyframe pixels, at 1/BACK_CELL of the size:
# the full back (every splat, half size) was two thirds of the solve's time.
BACK_CELL = 4


def solve_keyframe_colors(gaussians: DeformableGaussians, frames: Tensor, K: Tensor, world_T_cam: Tensor,
                          iterations: int, backend: str = "auto") -> DeformableGaussians:
    """`gaussians` with colours solved so that every keyframe drawn at its instant reproduces its frame.

    frames [T, 3, H, W] in [0, 1], K [T, 3, 3], world_T_cam [T, 4, 4]: the window's inputs in the Gaussians'
    frame. Each Gaussian is corrected by the residual of its own keyframe's drawing, sampled (bilinearly)
    where its centre projects at that instant. 0 iterations: `gaussians` itself.
    """
    if iterations <= 0 or len(gaussians) == 0:
        return gaussians
    num_frames, _, height, width = frames.shape
    if gaussians.num_frames != num_frames or K.shape[0] != num_frames or world_T_cam.shape[0] != num_frames:
        raise ValueError(f"solve_keyframe_colors: expected frames, K and world_T_cam for the window's "
                         f"{gaussians.num_frames} frames, got {num_frames}, {K.shape[0]}, {world_T_cam.shape[0]}")
    device, dtype = gaussians.device, gaussians.dtype
    frames, K, world_T_cam = frames.to(device, dtype), K.to(device, dtype), world_T_cam.to(device, dtype)
    front_only = replace(gaussians, keyframe_floor=0.0)  # at(k): the front layer of render_instant at k
    members, grids, own_pixels = {}, {}, {}
    for k in torch.unique(gaussians.keyframe_index).tolist():
        index = (gaussians.keyframe_index == k).nonzero().squeeze(1)
        members[k] = index
        # Where each Gaussian lands in its own keyframe, as grid_sample's [-1, 1] coordinates (pixel centres
        # at +0.5, align_corners=False); behind the camera: outside, so its residual is 0.
        uv, z = project_points(gaussians.positions(k)[index], K[k], world_T_cam[k])  # [n, 2], [n]
        grid = torch.stack([uv[:, 0] / width, uv[:, 1] / height], dim=-1) * 2.0 - 1.0
        grids[k] = torch.where((z > 0)[:, None], grid, torch.full_like(grid, 2.0))[None, None]  # [1, 1, n, 2]
        own_pixels[k] = (index, uv, z > 0)
    coarse = _coarse_set(gaussians, own_pixels, width, height)
    back_w, back_h = max(1, width // BACK_CELL), max(1, height // BACK_CELL)
    back_K = scale_intrinsics(K, back_w / width, back_h / height)
    targets, fronts = {}, {}
    for k in members:
        # What the front has to draw: the frame less the back layer where the front leaves it uncovered,
        # i.e. frame - (1 - front alpha) x back; the back (premultiplied, black behind) drawn once.
        back = render(coarse.layers_at(k)[1], world_T_cam[k:k + 1], back_K[k:k + 1], back_w, back_h,
                      backend=backend).rgb
        targets[k] = (frames[k:k + 1], F.interpolate(back, size=(height, width), mode="bilinear", align_corners=False))
        front_set, shown = front_only.drawn_at(float(k))  # the front layer and which Gaussians it holds
        fronts[k] = (color_drawing(front_set, world_T_cam[k:k + 1], K[k:k + 1], width, height, backend), shown)
    colors = gaussians.colors.clone()
    for _ in range(iterations):
        update = torch.zeros_like(colors)
        for k, index in members.items():
            draw, shown = fronts[k]
            rgb, alpha = draw(colors if shown is None else colors[shown])
            frame, back = targets[k]
            residual = frame - rgb - (1.0 - alpha) * back  # [1, 3, H, W]
            sampled = F.grid_sample(residual, grids[k], mode="bilinear", padding_mode="zeros", align_corners=False)
            update[index] = sampled[0, :, 0].transpose(0, 1)  # [n, 3]
        colors = (colors + update).clamp(*COLOR_RANGE)
    return replace(gaussians, colors=colors)


def _coarse_set(gaussians: DeformableGaussians, own_pixels: dict[int, tuple[Tensor, Tensor, Tensor]], width: int,
                height: int) -> DeformableGaussians:
    """One Gaussian per BACK_CELL x BACK_CELL cell of each keyframe's image, with the cell's mean colour: the back
    layer at 1/BACK_CELL of the size, for a fraction of the splats.

    own_pixels: keyframe -> (Gaussian indices [n], their pixel in that keyframe [n, 2], in front of it [n]). A
    cell keeps the Gaussian nearest its middle pixel's centre (by projection, so the set's order does not matter)."""
    columns, rows = -(-width // BACK_CELL), -(-height // BACK_CELL)
    kept, mean_colors = [], []
    for index, uv, in_front in own_pixels.values():
        inside = in_front & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        index, uv = index[inside], uv[inside]
        cell_xy = torch.div(uv, BACK_CELL, rounding_mode="floor").long()  # [m, 2]
        cell = cell_xy[:, 1] * columns + cell_xy[:, 0]  # [m]
        middle = cell_xy.to(uv.dtype) * BACK_CELL + (BACK_CELL // 2 + 0.5)
        distance = ((uv - middle) ** 2).sum(dim=-1)
        nearest = distance.new_full((rows * columns,), math.inf).scatter_reduce(0, cell, distance, "amin")
        candidate = distance <= nearest[cell]
        chosen = torch.full((rows * columns,), -1, dtype=torch.long, device=index.device).scatter_reduce(
            0, cell[candidate], index[candidate], "amax")  # an exact tie: the higher index
        colors = gaussians.colors.new_zeros(rows * columns, 3).index_add_(0, cell, gaussians.colors[index])
        counts = torch.bincount(cell, minlength=rows * columns).clamp_min(1).to(colors.dtype)
        occupied = chosen >= 0
        kept.append(chosen[occupied])
        mean_colors.append((colors / counts[:, None])[occupied])
    coarse = gaussians.select(torch.cat(kept))
    # The back layer draws back_scale wider already; a cell's Gaussian has to be at least a cell wide.
    widen = max(1.0, BACK_CELL / gaussians.back_scale)
    return replace(coarse, colors=torch.cat(mean_colors), scales=coarse.scales * widen)
