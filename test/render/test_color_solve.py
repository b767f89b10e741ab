"""solve_keyframe_colors: keyframe colours that the two-layer drawing turns back into the keyframes."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from dgslrm_ros.core.cameras import project_points, unproject_depth
from dgslrm_ros.core.filters import gaussian_window
from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.geometry.classical import BACK_SCALE, COLOR_EPS, FOOTPRINT, KEYFRAME_FLOOR, KEYFRAME_SUPPORT, \
    OPACITY, precompensated_colors
from dgslrm_ros.metrics import psnr
from dgslrm_ros.render import color_drawing, render, render_instant
from dgslrm_ros.render.color_solve import BACK_CELL, COLOR_RANGE, _coarse_set, solve_keyframe_colors

SIZE, FOCAL, FRAMES, KEYFRAMES = 24, 24.0, 5, (0, 4)


def _window(seed: int = 0):
    """Two keyframes of a wall textured at the pixel scale, its depth jittered so that neighbouring splats
    cover each other in every order (what a linear unsharp mask cannot undo), drawn as `classical` draws:
    footprint-sized splats of its opacity, the keyframe fade and the wide back layer. The camera moves 0.1 m
    sideways between the keyframes. -> (gaussians, frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4])."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]]).expand(FRAMES, 3, 3).clone()
    poses = torch.eye(4).expand(FRAMES, 4, 4).clone()
    poses[:, 0, 3] = torch.linspace(0.0, 0.1, FRAMES)
    noise = torch.rand(FRAMES * 3, 1, SIZE + 4, SIZE + 4, generator=g)
    taps = gaussian_window(5, 0.7)
    smooth = F.conv2d(F.conv2d(noise, taps.view(1, 1, 1, 5)), taps.view(1, 1, 5, 1))  # detail at 1-2 px
    frames = (0.5 + 2.0 * (smooth - 0.5)).clamp(0.05, 0.95).reshape(FRAMES, 3, SIZE, SIZE)
    parts, index = [], []
    for k in KEYFRAMES:
        depth = 2.0 + 0.05 * torch.rand(1, SIZE, SIZE, generator=g)
        means = unproject_depth(depth, K[k], poses[k]).reshape(-1, 3)
        n = means.shape[0]
        colors = precompensated_colors(frames[k]).clamp(COLOR_EPS, 1 - COLOR_EPS).permute(1, 2, 0).reshape(n, 3)
        parts.append(Gaussians(means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                               scales=(FOOTPRINT * depth / FOCAL).reshape(n, 1).repeat(1, 3),
                               opacities=torch.full((n,), OPACITY), colors=colors))
        index += [k] * n
    static = DeformableGaussians.static(Gaussians.concat(parts), torch.arange(FRAMES, dtype=torch.float64) / 10,
                                        torch.tensor(index))
    drawing = replace(static, keyframe_support=KEYFRAME_SUPPORT, keyframe_floor=KEYFRAME_FLOOR, back_scale=BACK_SCALE)
    return drawing, frames, K, poses


def _keyframe_psnr(gaussians, frames, K, poses) -> list[float]:
    return [float(psnr(render_instant(gaussians, float(k), poses[k:k + 1], K[k:k + 1], SIZE, SIZE).rgb[0].clamp(0, 1),
                       frames[k]))
            for k in KEYFRAMES]


def test_solved_colours_give_each_keyframe_back_where_the_unsharp_mask_does_not():
    gaussians, frames, K, poses = _window()
    before = _keyframe_psnr(gaussians, frames, K, poses)
    solved = solve_keyframe_colors(gaussians, frames, K, poses, iterations=6)
    after = _keyframe_psnr(solved, frames, K, poses)
    for b, a in zip(before, after):
        assert b < 30.0  # pixel-scale texture, jittered depth: the pre-compensated colours come back blurred
        assert a > b + 8.0 and a > 35.0
    # more iterations come nearer (the iteration converges rather than oscillates)
    fewer = _keyframe_psnr(solve_keyframe_colors(gaussians, frames, K, poses, iterations=2), frames, K, poses)
    assert all(b < f < a for b, f, a in zip(before, fewer, after))
    # only the colours change, and they stay in the range the network's logit residuals need
    assert torch.equal(solved.means, gaussians.means) and torch.equal(solved.offsets, gaussians.offsets)
    assert torch.equal(solved.opacities, gaussians.opacities) and solved.drawing() == gaussians.drawing()
    assert float(solved.colors.min()) >= COLOR_RANGE[0] and float(solved.colors.max()) <= COLOR_RANGE[1]


def test_each_gaussian_is_corrected_at_its_own_pixel_whatever_the_order():
    gaussians, frames, K, poses = _window(seed=1)
    order = torch.randperm(len(gaussians), generator=torch.Generator().manual_seed(0))
    shuffled = gaussians.select(order)
    solved = solve_keyframe_colors(gaussians, frames, K, poses, iterations=3)
    solved_shuffled = solve_keyframe_colors(shuffled, frames, K, poses, iterations=3)
    assert torch.allclose(solved_shuffled.colors, solved.colors[order], atol=1e-5)


def _own_pixels(gaussians, K, poses) -> dict:
    """keyframe -> (its Gaussians, where each lands in that keyframe, in front of it): what the solve passes."""
    own = {}
    for k in KEYFRAMES:
        index = (gaussians.keyframe_index == k).nonzero().squeeze(1)
        uv, z = project_points(gaussians.positions(k)[index], K[k], poses[k])
        own[k] = (index, uv, z > 0)
    return own


def test_the_back_layer_is_drawn_from_one_gaussian_per_cell_with_the_cells_mean_colour():
    gaussians, _, K, poses = _window(seed=3)
    coarse = _coarse_set(gaussians, _own_pixels(gaussians, K, poses), SIZE, SIZE)
    cells = SIZE // BACK_CELL
    assert len(coarse) == len(KEYFRAMES) * cells * cells
    for k in KEYFRAMES:  # _window lays each keyframe's Gaussians out row by row over its pixels
        mine = coarse.keyframe_index == k
        grid = gaussians.colors[gaussians.keyframe_index == k].reshape(SIZE, SIZE, 3)
        cell_means = grid.reshape(cells, BACK_CELL, cells, BACK_CELL, 3).mean(dim=(1, 3)).reshape(-1, 3)
        torch.testing.assert_close(coarse.colors[mine], cell_means)
        # each cell's Gaussian is the one at its middle pixel, wide enough with the back's widening to cover it
        middle = gaussians.means[gaussians.keyframe_index == k].reshape(SIZE, SIZE, 3)[BACK_CELL // 2::BACK_CELL,
                                                                                       BACK_CELL // 2::BACK_CELL]
        torch.testing.assert_close(coarse.means[mine], middle.reshape(-1, 3))
    own_scales = gaussians.scales.mean()
    assert float(coarse.scales.mean() * coarse.back_scale) >= 0.9 * BACK_CELL * float(own_scales)
    # the same cells whatever the order of the set
    order = torch.randperm(len(gaussians), generator=torch.Generator().manual_seed(1))
    shuffled = gaussians.select(order)
    coarse_shuffled = _coarse_set(shuffled, _own_pixels(shuffled, K, poses), SIZE, SIZE)
    assert torch.equal(coarse_shuffled.means, coarse.means)
    torch.testing.assert_close(coarse_shuffled.colors, coarse.colors)  # summed in another order


def test_zero_iterations_leave_the_gaussians_and_a_wrong_window_is_refused():
    gaussians, frames, K, poses = _window()
    assert solve_keyframe_colors(gaussians, frames, K, poses, iterations=0) is gaussians
    with pytest.raises(ValueError, match="window's 5 frames"):
        solve_keyframe_colors(gaussians, frames[:4], K[:4], poses[:4], iterations=2)


def test_color_drawing_composites_new_colours_over_the_fixed_geometry_as_render_does():
    """render.color_drawing (projection and tile lists once, then colours only) draws what render draws."""
    gaussians, _, K, poses = _window(seed=2)
    front = gaussians.at(0.0)
    draw = color_drawing(front, poses[:1], K[:1], SIZE, SIZE)
    for seed in (0, 1):
        colors = torch.rand(len(front), 3, generator=torch.Generator().manual_seed(seed)) * 2.0 - 0.5
        rgb, alpha = draw(colors)
        reference = render(replace(front, colors=colors), poses[:1], K[:1], SIZE, SIZE)
        assert torch.allclose(rgb, reference.rgb, atol=1e-6) and torch.allclose(alpha, reference.alpha, atol=1e-6)
