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

Cost: the back layer of each keyframe's instant (every keyframe, wide splats: most of a render) is drawn once,
at half resolution, and held fixed; each iteration composites only the front layers (the keyframe's own
splats), their projection and tile lists kept (render.color_drawing). Drawing the back again in every
iteration changed the cube clip's held-out frames by 0.03 dB and cost 2.5x. Measured in
docs/results/color_solve.md.
"""
from __future__ import annotations

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
    targets, grids, members, fronts = {}, {}, {}, {}
    for k in torch.unique(gaussians.keyframe_index).tolist():
        index = (gaussians.keyframe_index == k).nonzero().squeeze(1)
        members[k] = index
        # Where each Gaussian lands in its own keyframe, as grid_sample's [-1, 1] coordinates (pixel centres
        # at +0.5, align_corners=False); behind the camera: outside, so its residual is 0.
        uv, z = project_points(gaussians.positions(k)[index], K[k], world_T_cam[k])  # [n, 2], [n]
        grid = torch.stack([uv[:, 0] / width, uv[:, 1] / height], dim=-1) * 2.0 - 1.0
        grids[k] = torch.where((z > 0)[:, None], grid, torch.full_like(grid, 2.0))[None, None]  # [1, 1, n, 2]
        # What the front has to draw: the frame less the back layer where the front leaves it uncovered,
        # i.e. frame - (1 - front alpha) x back; the back (premultiplied, black behind) drawn once.
        back_set = gaussians.layers_at(k)[1]
        half_w, half_h = max(1, width // 2), max(1, height // 2)
        back = render(back_set, world_T_cam[k:k + 1], scale_intrinsics(K[k:k + 1], half_w / width, half_h / height),
                      half_w, half_h, backend=backend).rgb
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
