"""The pure-PyTorch renderer: analytic single/two-Gaussian images, compositing rules, backgrounds,
the tiled path against the dense all-pairs reference, and gradients against finite differences."""
import math

import pytest
import torch

from dgslrm_ros.render import render
from dgslrm_ros.render.projection import ALPHA_THRESHOLD, project_gaussians
from dgslrm_ros.render.rasterize_torch import composite_dense_reference, composite_weights, intersect_tiles, \
    rasterize_torch

DT = torch.float64
F = 50.0


def render_one_camera(scenes, gaussians, width, height, **kwargs):
    return render(gaussians, scenes.identity_poses(), scenes.pinhole(F, width, height), width, height,
                  backend="torch", **kwargs)


def centred_on_pixel(u, v, z, width, height):
    """World point straight ahead that projects exactly onto the centre of pixel (u, v)."""
    return [(u + 0.5 - width / 2) * z / F, (v + 0.5 - height / 2) * z / F, z]


def test_single_isotropic_gaussian_peak_and_falloff_are_analytic(scenes):
    width, height, z, s, opacity = 40, 36, 5.0, 0.08, 0.7
    color = torch.tensor([0.2, 0.5, 0.9], dtype=DT)
    # On the optical axis (principal point at the centre of pixel (20, 17)) the projected covariance is
    # exactly isotropic: off-axis, the Jacobian's depth column would add a little z variance.
    K = torch.tensor([[[F, 0.0, 20.5], [0.0, F, 17.5], [0.0, 0.0, 1.0]]], dtype=DT)
    g = scenes.make_gaussians([[0.0, 0.0, z]], s, opacity, color[None])
    out = render(g, scenes.identity_poses(), K, width, height, backend="torch")
    variance = (F * s / z) ** 2 + 0.3
    assert out.alpha[0, 0, 17, 20].item() == pytest.approx(opacity, rel=1e-9)
    assert torch.allclose(out.rgb[0, :, 17, 20], color * opacity)
    for r in (1, 2, 3):
        expected = opacity * math.exp(-r * r / (2 * variance))
        assert out.alpha[0, 0, 17, 20 + r].item() == pytest.approx(expected, rel=1e-9)
        assert out.alpha[0, 0, 17 - r, 20].item() == pytest.approx(expected, rel=1e-9)
    diagonal = opacity * math.exp(-8 / (2 * variance))
    assert out.alpha[0, 0, 19, 22].item() == pytest.approx(diagonal, rel=1e-9)
    # Footprint: alpha is exactly zero where the Gaussian falls under 1/255, positive inside.
    row = out.alpha[0, 0, 17]
    cutoff = math.sqrt(2 * variance * math.log(opacity / ALPHA_THRESHOLD))
    offsets = torch.arange(width, dtype=DT) + 0.5 - 20.5
    assert torch.equal(row > 0, offsets.abs() <= cutoff)
    assert out.alpha.sum() > 0 and (out.alpha[0, 0, :, :10] == 0).all()


def test_expected_depth_of_single_opaque_gaussian_is_its_z(scenes):
    width, height, z = 32, 32, 3.7
    g = scenes.make_gaussians([centred_on_pixel(16, 16, z, width, height)], 0.2, 0.98, [[1, 1, 1]])
    out = render_one_camera(scenes, g, width, height)
    covered = out.alpha[0, 0] > 0
    assert covered.sum() > 50
    assert torch.allclose(out.depth[0, 0][covered], torch.full_like(out.depth[0, 0][covered], z))
    assert (out.depth[0, 0][~covered] == 0).all()


def test_two_overlapping_gaussians_composite_front_to_back(scenes):
    width, height = 32, 32
    red, green = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]

    def render_pair(z_red, z_green, opacities=(0.6, 0.8)):
        means = [centred_on_pixel(15, 15, z_red, width, height), centred_on_pixel(15, 15, z_green, width, height)]
        # Scale with depth so both have the same footprint in pixels.
        g = scenes.make_gaussians(means, [0.02 * z_red, 0.02 * z_green], opacities, [red, green])
        return render_one_camera(scenes, g, width, height)

    red_front = render_pair(3.0, 6.0)
    a_red, a_green = 0.6, 0.8
    assert torch.allclose(red_front.rgb[0, :, 15, 15], torch.tensor([a_red, (1 - a_red) * a_green, 0], dtype=DT))
    assert red_front.alpha[0, 0, 15, 15].item() == pytest.approx(1 - (1 - a_red) * (1 - a_green))
    expected_depth = (a_red * 3.0 + (1 - a_red) * a_green * 6.0) / (1 - (1 - a_red) * (1 - a_green))
    assert red_front.depth[0, 0, 15, 15].item() == pytest.approx(expected_depth)
    green_front = render_pair(6.0, 3.0)
    assert torch.allclose(green_front.rgb[0, :, 15, 15], torch.tensor([(1 - a_green) * a_red, a_green, 0], dtype=DT))
    # With equal opacities and footprints the front colour dominates every pixel, and swapping the
    # depths swaps the channels exactly.
    red_front, green_front = render_pair(3.0, 6.0, (0.7, 0.7)), render_pair(6.0, 3.0, (0.7, 0.7))
    covered = red_front.alpha[0, 0] > 0
    assert covered.sum() > 9
    assert (red_front.rgb[0, 0][covered] > red_front.rgb[0, 1][covered]).all()
    assert torch.allclose(green_front.rgb[0, [1, 0, 2]], red_front.rgb[0])


def test_saturated_pixel_stops_before_the_gaussian_that_would_drop_transmittance_below_1e4(scenes):
    width, height = 16, 16
    means = [centred_on_pixel(8, 8, z, width, height) for z in (2.0, 3.0, 4.0)]
    g = scenes.make_gaussians(means, [0.3, 0.45, 0.6], 1.0, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    out = render_one_camera(scenes, g, width, height)
    # First: alpha clamped to 0.999 -> T = 1e-3. Second would give 1e-6 <= 1e-4: it and all after are dropped.
    assert out.alpha[0, 0, 8, 8].item() == pytest.approx(0.999)
    assert torch.allclose(out.rgb[0, :, 8, 8], torch.tensor([0.999, 0, 0], dtype=DT))


def test_empty_and_unseen_scenes_give_background_and_zero_alpha(scenes):
    width, height = 24, 20
    background = torch.tensor([0.1, 0.4, 0.7], dtype=DT)
    empty = scenes.make_gaussians(torch.zeros(0, 3), torch.zeros(0), torch.zeros(0), torch.zeros(0, 3))
    unseen = scenes.make_gaussians([[0, 0, -3.0], [50.0, 0, 3.0], [0, 0, 0.001]], 0.2, 0.9, [[1, 1, 1]] * 3)
    for g in (empty, unseen):
        out = render_one_camera(scenes, g, width, height, background=background)
        assert out.rgb.shape == (1, 3, height, width)
        assert (out.alpha == 0).all() and (out.depth == 0).all()
        assert torch.equal(out.rgb[0], background[:, None, None].expand(3, height, width))


def test_background_is_blended_by_transmittance_per_camera(scenes):
    width, height = 30, 22
    g = scenes.random_gaussians(60, seed=1)
    world_T_cam = scenes.identity_poses(2)
    world_T_cam[1, 0, 3] = 0.4
    K = scenes.pinhole(F, width, height, 2)
    backgrounds = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.9, 0.1]], dtype=DT)
    plain = render(g, world_T_cam, K, width, height, backend="torch")
    shared = render(g, world_T_cam, K, width, height, background=backgrounds[0], backend="torch")
    per_camera = render(g, world_T_cam, K, width, height, background=backgrounds, backend="torch")
    assert 0.05 < plain.alpha.mean() < 0.95
    assert torch.allclose(shared.rgb, plain.rgb + (1 - plain.alpha) * backgrounds[0, None, :, None, None])
    assert torch.allclose(per_camera.rgb, plain.rgb + (1 - plain.alpha) * backgrounds[:, :, None, None])
    assert torch.equal(per_camera.alpha, plain.alpha) and torch.equal(per_camera.depth, plain.depth)


def projected_scene(scenes, n=250, seed=0, width=40, height=35, num_cameras=2):
    g = scenes.random_gaussians(n, seed=seed, spread=1.5, scale_range=(0.02, 0.4))
    world_T_cam = scenes.identity_poses(num_cameras)
    world_T_cam[1:, :3, 3] = torch.tensor([0.5, -0.3, -0.6], dtype=DT)
    K = scenes.pinhole(F, width, height, num_cameras)
    p = project_gaussians(g.means, g.quats, g.scales, g.opacities, torch.linalg.inv(world_T_cam), K, width, height)
    colors = torch.cat([g.colors[None].expand(num_cameras, -1, -1), p.depths[..., None]], dim=-1)  # [C, N, 4]
    background = torch.rand(num_cameras, 4, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return p, colors, g.opacities, background, width, height


@pytest.mark.parametrize("tile_size, chunk_elements", [(4, 20_000), (16, 20_000), (16, 1 << 21)])  # many chunks / one
def test_tiled_path_equals_dense_reference_forward_and_backward(scenes, tile_size, chunk_elements):
    p, colors, opacities, background, width, height = projected_scene(scenes)
    inputs = [p.means2d, p.conics, opacities, colors, background]
    cotangents = None
    results = []
    for fn in (lambda *a: rasterize_torch(*a, tile_size=tile_size, chunk_elements=chunk_elements), composite_dense_reference):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        projected = type(p)(means2d=leaves[0], conics=leaves[1], depths=p.depths, radii=p.radii)
        image, alpha = fn(projected, leaves[3], leaves[2], width, height, leaves[4])
        if cotangents is None:
            gen = torch.Generator().manual_seed(5)
            cotangents = (torch.randn(image.shape, generator=gen, dtype=DT), torch.randn(alpha.shape, generator=gen, dtype=DT))
        ((image * cotangents[0]).sum() + (alpha * cotangents[1]).sum()).backward()
        results.append((image, alpha, [leaf.grad for leaf in leaves]))
    (tiled_image, tiled_alpha, tiled_grads), (dense_image, dense_alpha, dense_grads) = results
    assert tiled_image.shape == (2, 4, height, width) and tiled_alpha.shape == (2, 1, height, width)
    assert 0.3 < dense_alpha.mean() < 0.999 and (dense_alpha > 0.99).any()  # saturated pixels occur
    torch.testing.assert_close(tiled_image, dense_image, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tiled_alpha, dense_alpha, rtol=1e-10, atol=1e-12)
    for name, tiled, dense in zip(["means2d", "conics", "opacities", "colors", "background"], tiled_grads, dense_grads):
        assert dense.abs().max() > 0, name
        torch.testing.assert_close(tiled, dense, rtol=1e-8, atol=1e-9, msg=name)


@pytest.mark.parametrize("chunk_elements", [20_000, 1 << 21])  # many chunks / one
def test_kept_compositing_weights_draw_any_colours_as_the_rasterizer_does(scenes, chunk_elements):
    """composite_weights: one pass, then new colours (several channels, two cameras, saturated pixels) by the
    kept weights alone give rasterize_torch's image to rounding."""
    p, colors, opacities, _, width, height = projected_scene(scenes)
    kept = composite_weights(p, opacities, width, height, chunk_elements=chunk_elements)
    for seed in (0, 1):
        new_colors = torch.randn(colors.shape, generator=torch.Generator().manual_seed(seed), dtype=DT)
        image, alpha = kept.apply(new_colors)
        reference_image, reference_alpha = rasterize_torch(p, new_colors, opacities, width, height,
                                                           chunk_elements=chunk_elements)
        assert reference_image.abs().amax(dim=(0, 2, 3)).min() > 0.5  # every channel of both cameras drawn
        torch.testing.assert_close(image, reference_image, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(alpha, reference_alpha, rtol=1e-10, atol=1e-12)
    assert (kept.weights > 0).all()  # only the pairs that draw are kept


def test_tile_lists_match_gsplat_isect_tiles(scenes):
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    p, *_ = projected_scene(scenes, n=40, seed=2, width=40, height=35)
    ours = intersect_tiles(p, 40, 35, tile_size=16)  # gsplat's tile size
    p32 = [t.float() for t in (p.means2d, p.depths)]
    _, isect_ids, flatten_ids = torch_impl._isect_tiles(p32[0], p.radii, p32[1], 16, ours.tiles_x, ours.tiles_y)
    assert torch.equal(ours.gaussian_ids, flatten_ids.long())
    tiles = ours.tiles_x * ours.tiles_y
    tile_bits = tiles.bit_length()  # gsplat's key: image | tile | depth bits
    flat_tile = (isect_ids >> (32 + tile_bits)) * tiles + ((isect_ids >> 32) & ((1 << tile_bits) - 1))
    assert torch.equal(ours.tile_counts, torch.bincount(flat_tile, minlength=ours.tile_counts.numel()))


def test_gradients_match_finite_differences(scenes):
    # float64 gradcheck through projection + tiled compositing (2x2 tiles), every Gaussian field.
    width, height = 20, 18
    base = scenes.random_gaussians(5, seed=4, depth=3.0, spread=0.25, scale_range=(0.1, 0.3), max_opacity=0.9)
    world_T_cam = scenes.identity_poses(2)
    world_T_cam[1, :3, 3] = torch.tensor([0.1, 0.05, -0.2], dtype=DT)
    K = scenes.pinhole(25.0, width, height, 2)
    background = torch.tensor([0.3, 0.2, 0.1], dtype=DT)
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(2, c, height, width, generator=gen, dtype=DT) for c in (3, 1, 1)]

    def loss(means, quats, scales, opacities, colors):
        g = type(base)(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors)
        out = render(g, world_T_cam, K, width, height, background=background, backend="torch")
        return (out.rgb * weights[0]).sum() + (out.alpha * weights[1]).sum() + (out.depth * out.alpha * weights[2]).sum()

    leaves = [t.detach().clone().requires_grad_(True) for t in (base.means, base.quats, base.scales, base.opacities, base.colors)]
    # fast_mode compares J u for random u on every input: one mismatch anywhere shows up.
    assert torch.autograd.gradcheck(loss, leaves, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_ellipse_culling_drops_only_tiles_where_every_pixel_is_below_the_alpha_cut(scenes):
    p, _, opacities, _, width, height = projected_scene(scenes, n=150, seed=6, width=37, height=29, num_cameras=1)
    boxes = intersect_tiles(p, width, height, tile_size=4)
    culled = intersect_tiles(p, width, height, tile_size=4, opacities=opacities)
    pairs = lambda isect: set(zip(torch.repeat_interleave(torch.arange(isect.tile_counts.numel()), isect.tile_counts).tolist(),
                                  isect.gaussian_ids.tolist()))
    box_pairs, kept_pairs = pairs(boxes), pairs(culled)
    assert kept_pairs < box_pairs and len(kept_pairs) < 0.9 * len(box_pairs)
    v, u = torch.meshgrid(torch.arange(height, dtype=DT), torch.arange(width, dtype=DT), indexing="ij")
    for tile, gaussian in box_pairs - kept_pairs:
        row, col = divmod(tile, boxes.tiles_x)
        in_tile = (u // 4 == col) & (v // 4 == row)
        d = p.means2d[0, gaussian] - torch.stack([u[in_tile], v[in_tile]], dim=-1) - 0.5  # [pixels, 2]
        a, b, c = p.conics[0, gaussian]
        sigma = 0.5 * (a * d[:, 0] ** 2 + c * d[:, 1] ** 2) + b * d[:, 0] * d[:, 1]
        assert (opacities[gaussian] * torch.exp(-sigma) < ALPHA_THRESHOLD).all()


def test_needles_and_screen_filling_gaussians_match_the_dense_reference(scenes):
    # Extreme footprints stress the tile lists: a tilted needle (conic a c - b^2 ~ 7e-8, which is 0
    # in float32) and a Gaussian right in front of the camera covering everything.
    width, height = 36, 30
    tilt = math.radians(30) / 2
    quats = [[math.cos(tilt), 0.0, 0.0, math.sin(tilt)], [1.0, 0.0, 0.0, 0.0], [0.9, 0.3, -0.2, 0.1]]
    g = scenes.make_gaussians([[0.1, 0.0, 3.0], [0.0, 0.1, 0.3], [0.2, -0.2, 4.0]],
                              [[400.0, 0.001, 0.001], [0.5, 0.4, 0.1], [0.3, 0.05, 0.1]],
                              [0.9, 0.3, 0.8], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], quats=quats)
    p = project_gaussians(g.means, g.quats, g.scales, g.opacities, scenes.identity_poses(),
                          scenes.pinhole(F, width, height), width, height)
    assert p.visible.all() and p.radii.max() > 1000
    colors = torch.cat([g.colors[None], p.depths[..., None]], dim=-1)
    tiled = rasterize_torch(p, colors, g.opacities, width, height)
    dense = composite_dense_reference(p, colors, g.opacities, width, height)
    torch.testing.assert_close(tiled, dense, rtol=1e-10, atol=1e-12)
    assert dense[1].min() > 0.25  # the near Gaussian covers the whole image
