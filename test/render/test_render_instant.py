"""render_instant: an instant of faded keyframes drawn in two layers (render/__init__.py)."""
from __future__ import annotations

from dataclasses import replace

import torch

from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.render import render, render_at_instants, render_instant

SIZE, FOCAL = 16, 16.0
K = torch.tensor([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]])
POSE = torch.eye(4)  # camera at the origin looking down +z


def _wall(columns: range, depth: float, rgb: tuple[float, float, float]) -> Gaussians:
    """Opaque splats on the pixel centres of `columns` (every row) at z = depth."""
    v, u = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.tensor(list(columns)) + 0.5, indexing="ij")
    xy = torch.stack([(u - SIZE / 2) / FOCAL, (v - SIZE / 2) / FOCAL], -1).reshape(-1, 2) * depth
    n = xy.shape[0]
    return Gaussians(means=torch.cat([xy, torch.full((n, 1), depth)], 1),
                     quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), scales=torch.full((n, 3), 0.8 * depth / FOCAL),
                     opacities=torch.full((n,), 0.99), colors=torch.tensor([rgb]).repeat(n, 1))


def _window(support: float, floor: float) -> DeformableGaussians:
    """Keyframe 0: a red wall over the left half at 2 m; keyframe 4: a green one over everything, nearer."""
    red, green = _wall(range(SIZE // 2), 2.0, (1.0, 0.0, 0.0)), _wall(range(SIZE), 1.9, (0.0, 1.0, 0.0))
    both = Gaussians.concat([red, green])
    index = torch.tensor([0] * len(red) + [4] * len(green))
    g = DeformableGaussians.static(both, torch.arange(5, dtype=torch.float64) / 10, index)
    return replace(g, keyframe_support=support, keyframe_floor=floor)


def test_the_keyframes_around_an_instant_cover_it_and_the_others_only_fill_what_they_leave():
    g = _window(support=1.0, floor=0.3)
    out = render_instant(g, 0, POSE[None], K[None], SIZE, SIZE)
    left, right = out.rgb[0, :, :, 2:SIZE // 2 - 2], out.rgb[0, :, :, SIZE // 2 + 2:-2]
    # At frame 0 keyframe 0 is the front layer: its red wall hides the (nearer) green one completely ...
    assert float(left[0].min()) > 0.9 and float(left[1].max()) < 0.05
    # ... and where it leaves the view uncovered, keyframe 4 fills in at full strength.
    assert float(right[1].min()) > 0.9 and float(right[0].max()) < 0.05
    assert float(out.alpha.min()) > 0.95
    # One set with the floor (what a single-pass viewer of the `gaussians` cloud draws) lets the faint green
    # keyframe tint the red wall; the two layers do not.
    single = render(g.at(0), POSE[None], K[None], SIZE, SIZE).rgb[0, :, :, 2:SIZE // 2 - 2]
    assert float(single[1].mean()) > 0.15
    # render_at_instants (eval, training, replay) draws the same.
    rgb, _ = render_at_instants(g, torch.tensor([0]), POSE[None], K[None], SIZE, SIZE)
    assert torch.allclose(rgb, out.rgb)


def test_without_a_fade_an_instant_is_one_set_of_every_keyframe():
    g = _window(support=0.0, floor=0.0)
    out = render_instant(g, 0, POSE[None], K[None], SIZE, SIZE)
    assert torch.equal(out.rgb, render(g.at(0), POSE[None], K[None], SIZE, SIZE).rgb)
    assert float(out.rgb[0, 1, :, 2:SIZE // 2 - 2].min()) > 0.9  # the nearer green wall in front everywhere


def test_a_wider_back_layer_fills_gaps_the_front_leaves_without_touching_what_the_front_covers():
    # Keyframe 0: a red wall over the left half; keyframe 4: narrow green splats on every third column of the
    # right half (a sparse surface, as a keyframe seen from off its path), nearer.
    red = _wall(range(SIZE // 2), 2.0, (1.0, 0.0, 0.0))
    sparse = _wall(range(SIZE // 2 + 1, SIZE, 3), 1.8, (0.0, 1.0, 0.0))
    sparse = replace(sparse, scales=sparse.scales * 0.4)
    index = torch.tensor([0] * len(red) + [4] * len(sparse))
    g = replace(DeformableGaussians.static(Gaussians.concat([red, sparse]), torch.arange(5, dtype=torch.float64) / 10,
                                           index), keyframe_support=1.0, keyframe_floor=0.3)
    narrow = render_instant(g, 0, POSE[None], K[None], SIZE, SIZE)
    wide = render_instant(replace(g, back_scale=3.0), 0, POSE[None], K[None], SIZE, SIZE)
    gaps = [c for c in range(SIZE // 2 + 1, SIZE - 1) if (c - SIZE // 2 - 1) % 3 == 1]  # between green columns
    assert float(narrow.alpha[0, 0][:, gaps].mean()) < 0.5  # the narrow back layer leaves the gaps open ...
    assert float(wide.alpha[0, 0][:, gaps].mean()) > 0.9  # ... the wide one fills them
    assert float(wide.rgb[0, 1][:, gaps].mean()) > 0.8
    # where the front covers the view the drawing is the front's, whatever the back layer's width
    left = slice(1, SIZE // 2 - 2)
    assert torch.allclose(wide.rgb[0, :, :, left], narrow.rgb[0, :, :, left], atol=1e-3)
