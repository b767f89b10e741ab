"""Pure-PyTorch tile rasterizer: front-to-back alpha compositing of projected 2D Gaussians.

Runs wherever torch runs (the CPU training and test path) and follows gsplat 1.5.3's "classic"
rasterizer rule for rule, so the two backends are interchangeable:

- a Gaussian is listed in every tile its footprint box touches, sorted by depth. gsplat uses 16x16
  tiles; we default to 4x4 because on a CPU every pixel-Gaussian pair costs the same whether it is
  visible or not, and small tiles waste fewer pairs (measured 2.5-3x faster than 16x16 at 128 px /
  50k Gaussians). Tiles in the box that the alpha >= 1/255 ellipse misses are dropped as well
  (`_ellipse_tiles`, ~40% of the pairs). Pixels outside the box or the ellipse would be
  skipped by the 1/255 rule anyway, so neither choice changes the image;
- pixel (u, v) is sampled at its centre (u + 0.5, v + 0.5);
- alpha = min(0.999, opacity * exp(-sigma)), sigma = 0.5 d^T conic d, d = mean2d - pixel;
  a Gaussian with sigma < 0 or alpha < 1/255 is skipped;
- a pixel stops at the first Gaussian that would bring its transmittance to <= 1e-4 (that Gaussian
  is excluded); rgb = sum w_i c_i + T_final * background, alpha = 1 - T_final.

Speed and memory: every tile's depth-sorted list is cut into rank windows; a window over the active
tiles is one batched [tiles, pixels, K] computation (sigma as one small matmul, see
`_sigma_coefficients`), and tiles whose pixels are all saturated drop out. The backward pass is
written by hand (`_CompositeTiles`), like gsplat's: the forward keeps per chunk only the starting
transmittance and the Gaussians' quadratic coefficients (a few floats per tile-Gaussian pair), and
the backward recomputes each chunk back to front, so the [tiles, pixels, K] tensors never pile up.
`composite_dense_reference` is the plain all-pairs autograd twin the tests compare against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dgslrm_ros.render.projection import ALPHA_THRESHOLD, ProjectedGaussians

MAX_ALPHA = 0.999  # gsplat 1.5.3 clamps per-Gaussian alpha here (keeps 1 - alpha invertible)
MIN_TRANSMITTANCE = 1e-4  # a pixel is saturated once its transmittance would drop to this
DEFAULT_TILE_SIZE = 4
DEFAULT_CHUNK_ELEMENTS = 1 << 18  # pixel-Gaussian pairs per batched step (1 MB per float32 tensor: stays in cache)


@dataclass(frozen=True)
class TileIntersections:
    """Which Gaussians touch which tile, each tile's list in front-to-back order."""

    gaussian_ids: Tensor  # [M] long, flat index c * N + n, grouped by (camera, tile), depth-sorted
    tile_offsets: Tensor  # [C * tiles_y * tiles_x + 1] long, tile t owns gaussian_ids[off[t]:off[t+1]]
    tiles_x: int
    tiles_y: int
    tile_size: int

    @property
    def tile_counts(self) -> Tensor:
        return self.tile_offsets[1:] - self.tile_offsets[:-1]


@torch.no_grad()
def intersect_tiles(projected: ProjectedGaussians, width: int, height: int,
                    tile_size: int = DEFAULT_TILE_SIZE, opacities: Tensor | None = None) -> TileIntersections:
    """Bin visible Gaussians into tiles by their footprint box (gsplat's isect_tiles rule).

    With `opacities` [N], tiles that the box touches but the alpha >= 1/255 ellipse misses are
    left out too (about 40% of the pairs for randomly rotated, anisotropic Gaussians); no pixel of
    such a tile could accept the Gaussian, so the image does not change.
    """
    num_cameras, n = projected.depths.shape
    tiles_x = math.ceil(width / tile_size)
    tiles_y = math.ceil(height / tile_size)
    device = projected.depths.device
    flat_ids = projected.visible.reshape(-1).nonzero().squeeze(1)  # [V]
    # Depth order first, then a stable sort by tile keeps each tile's list in depth order (ties by
    # index, as gsplat's stable radix sort does).
    flat_ids = flat_ids[torch.sort(projected.depths.reshape(-1)[flat_ids], stable=True).indices]
    centre = projected.means2d.detach().reshape(-1, 2)[flat_ids].float() / tile_size  # [V, 2] in tiles
    radius = projected.radii.reshape(-1, 2)[flat_ids].float() / tile_size
    limit = torch.tensor([tiles_x, tiles_y], device=device, dtype=torch.float32)
    # Clamped in float before the int cast, so huge footprints cannot overflow.
    tile_min = torch.minimum(torch.floor(centre - radius).clamp_min(0), limit).int()  # [V, 2]
    tile_max = torch.minimum(torch.ceil(centre + radius).clamp_min(0), limit).int()  # exclusive
    if opacities is None:
        span = tile_max - tile_min  # [V, 2]
        # One entry per (Gaussian, tile of its box); `owner` is the Gaussian's rank in depth order.
        owner, local = _enumerate(span[:, 0] * span[:, 1])
        span_x = span[:, 0].contiguous()[owner]
        tile_col = tile_min[:, 0].contiguous()[owner] + local % span_x  # [M]
        tile_row = tile_min[:, 1].contiguous()[owner] + local // span_x
    else:
        owner, tile_col, tile_row = _ellipse_tiles(projected, opacities, flat_ids, tile_min, tile_max,
                                                   tile_size, width, height)
    camera = (flat_ids // n).int()[owner]
    key = (camera * tiles_y + tile_row) * tiles_x + tile_col  # [M] int32: (camera, tile)
    key, order = torch.sort(key, stable=True)
    tile_counts = torch.bincount(key, minlength=num_cameras * tiles_y * tiles_x)
    offsets = torch.zeros(tile_counts.numel() + 1, dtype=torch.long, device=device)
    offsets[1:] = torch.cumsum(tile_counts, 0)
    return TileIntersections(flat_ids[owner[order].long()], offsets, tiles_x, tiles_y, tile_size)


def _enumerate(counts: Tensor) -> tuple[Tensor, Tensor]:
    """counts [K] int -> (owner, local), each [sum(counts)] int32: entry j of item k is (k, j)."""
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device, dtype=torch.int32), counts)
    first = torch.cumsum(counts, 0, dtype=torch.int32) - counts
    local = torch.arange(owner.numel(), device=counts.device, dtype=torch.int32) - first[owner]
    return owner, local


def _ellipse_tiles(projected: ProjectedGaussians, opacities: Tensor, flat_ids: Tensor, tile_min: Tensor,
                   tile_max: Tensor, tile_size: int, width: int, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """(owner, tile_col, tile_row) [M]: the tiles of each box that hold a pixel with alpha >= 1/255.

    Alpha reaches 1/255 inside the ellipse sigma = 0.5 (a u^2 + 2 b u v + c v^2) <= ln(255 opacity)
    (u, v relative to the mean). For each tile row of the box, the ellipse's u-range over the row's
    band of pixel centres is exact in closed form: the right end u(v) = (-b v + sqrt(2 a L - det v^2)) / a
    is concave, so its maximum over the band is at the ellipse's rightmost point's v clamped into the
    band (and symmetrically on the left). Only the tile columns of that range are listed, with a small
    outward margin for rounding: keeping a tile is always safe.
    """
    # float64: for needle-like Gaussians (conic eigenvalues 3 and 1e-6) a c - b^2 cancels in float32.
    mean = projected.means2d.detach().reshape(-1, 2)[flat_ids].double()  # [V, 2]
    a, b, c = projected.conics.detach().reshape(-1, 3)[flat_ids].double().T.contiguous()  # [V] each
    level = torch.log(255.0 * opacities.detach()[flat_ids % opacities.shape[0]].double()) + 1e-3
    det = a * c - b * b  # > 0 for a positive definite conic; otherwise fall back to the whole box row
    degenerate = ~(det > 0)
    det = torch.where(degenerate, torch.ones_like(det), det)
    u_extent = torch.sqrt(2 * level * c / det)  # rightmost point of the ellipse: (u_extent, v_at_right)
    v_extent = torch.where(degenerate, torch.full_like(det, math.inf), torch.sqrt(2 * level * a / det))
    v_at_right = -b * u_extent / c

    row_owner, local = _enumerate(tile_max[:, 1] - tile_min[:, 1])  # one entry per (Gaussian, tile row)
    g = row_owner.long()
    tile_row = tile_min[:, 1].contiguous()[g] + local
    mean_x, mean_y = mean[:, 0].contiguous()[g], mean[:, 1].contiguous()[g]
    v_low = (tile_row * tile_size).double().add_(0.5).sub_(mean_y)  # band of pixel-centre rows
    v_high = ((tile_row + 1) * tile_size).clamp_(max=height).double().sub_(0.5).sub_(mean_y)
    a, b, c, det, v_extent, v_at_right = a[g], b[g], c[g], det[g], v_extent[g], v_at_right[g]
    level = level[g]

    def half_chord(v: Tensor) -> Tensor:  # ellipse half-width along u at height v
        return torch.sqrt((2 * a * level - det * v * v).clamp_min(0)) / a

    v_right = torch.minimum(torch.maximum(v_at_right, v_low), v_high)
    v_left = torch.minimum(torch.maximum(-v_at_right, v_low), v_high)
    u_right = -b * v_right / a + half_chord(v_right) + 1e-3
    u_left = -b * v_left / a - half_chord(v_left) - 1e-3
    # Pixel column p has its centre at p + 0.5: the columns with centres in [mean + u_left, mean + u_right].
    first_col = torch.ceil(mean_x + u_left - 0.5).clamp(0, width).int() // tile_size
    last_col = torch.floor(mean_x + u_right - 0.5).clamp(-1, width).int().div(tile_size, rounding_mode="floor")
    box_first, box_last = tile_min[:, 0].contiguous()[g], tile_max[:, 0].contiguous()[g] - 1
    first_col = torch.where(degenerate[g], box_first, torch.maximum(first_col, box_first))  # inside gsplat's box
    last_col = torch.where(degenerate[g], box_last, torch.minimum(last_col, box_last))
    reaches = (v_low <= v_extent) & (v_high >= -v_extent)
    counts = torch.where(reaches, (last_col - first_col + 1).clamp_min(0), torch.zeros_like(last_col))
    pair_row, local = _enumerate(counts)
    pair = pair_row.long()
    return row_owner[pair], first_col[pair] + local, tile_row[pair]


@dataclass
class _Chunk:
    """One batched compositing step, kept so the backward pass can recompute it."""

    tiles: Tensor  # [A] long, tile indices (over all cameras)
    ids: Tensor  # [A, Kc] long, flat Gaussian ids (0 where padded)
    present: Tensor  # [A, Kc] bool, false on padding
    transmittance_start: Tensor  # [A, P]
    done_start: Tensor  # [A, P] bool
    exponent_coef: Tensor  # [A, 6, Kc] -sigma as a quadratic in tile coordinates (see _exponent_coefficients)
    factors: tuple[Tensor, ...]  # (mx, my, a, b, c), each [A, Kc]: what the coefficients are made of
    opacity: Tensor  # [A, Kc], 0 on padding (so the alpha threshold alone rejects padding)


class _TileGeometry:
    """Pixel centres of every tile as a quadratic basis around the tile centre."""

    def __init__(self, isect: TileIntersections, num_cameras: int, width: int, height: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        size = isect.tile_size
        tiles = torch.arange(num_cameras * isect.tiles_y * isect.tiles_x, device=device)
        origin_x = (tiles % isect.tiles_x) * size  # [num_tiles]
        origin_y = ((tiles // isect.tiles_x) % isect.tiles_y) * size
        self.centre_x = (origin_x + 0.5 * size).to(dtype)
        self.centre_y = (origin_y + 0.5 * size).to(dtype)
        local = torch.arange(size * size, device=device)
        x = (local % size).to(dtype) + 0.5 - 0.5 * size  # [P] pixel centre minus tile centre
        y = (local // size).to(dtype) + 0.5 - 0.5 * size
        self.basis = torch.stack([torch.ones_like(x), x, y, x * x, x * y, y * y], dim=-1)  # [P, 6]
        self.inside = ((origin_x[:, None] + (local % size) < width)
                       & (origin_y[:, None] + (local // size) < height))  # [num_tiles, P]


def _exponent_coefficients(geometry: _TileGeometry, tiles: Tensor, ids: Tensor, means2d: Tensor,
                           conics: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """-sigma(pixel) = basis(pixel) . coef: the Gaussian's exponent as a quadratic in tile coordinates.

    One [P, 6] x [6, Kc] matmul per tile then replaces ~10 elementwise passes over [A, P, Kc]. Around
    the tile centre the terms stay small, so float32 keeps sigma accurate where alpha is visible
    (1e-6 from float64 in the tests).
    """
    mx = means2d[ids, 0] - geometry.centre_x[tiles, None]  # [A, Kc]
    my = means2d[ids, 1] - geometry.centre_y[tiles, None]
    a, b, c = conics[ids].unbind(-1)  # [A, Kc] each
    coef = torch.stack([0.5 * a * mx * mx + 0.5 * c * my * my + b * mx * my, -(a * mx + b * my),
                        -(c * my + b * mx), 0.5 * a, b, 0.5 * c], dim=1)  # [A, 6, Kc] of +sigma
    return coef.neg_(), (mx, my, a, b, c)


def _chunk_terms(geometry: _TileGeometry, chunk: _Chunk) -> dict[str, Tensor]:
    """Alpha, transmittance and weights of one chunk, with gsplat's skip and stop rules.

    gsplat also skips sigma < 0; with a positive definite conic (guaranteed by the eps2d blur and the
    det > 0 cull) that only happens through rounding, and here the quadratic form's rounding can dip
    a hair below 0 at the very centre, so that check is left out on purpose.
    """
    # Capping sigma at 20 changes nothing (exp(-20) is far below the 1/255 cut) but keeps exp out of
    # denormal floats, which are ~50x slower on x86.
    raw_alpha = (torch.matmul(geometry.basis, chunk.exponent_coef)  # [A, P, Kc] = -sigma
                 .clamp_(min=-20.0).exp_().mul_(chunk.opacity[:, None, :]))
    alpha = raw_alpha.clamp(max=MAX_ALPHA)
    alpha.masked_fill_(alpha < ALPHA_THRESHOLD, 0.0)
    # Saturated pixels start at transmittance 0, so everything they meet is masked as saturated.
    start = chunk.transmittance_start.masked_fill(chunk.done_start, 0.0)[:, :, None]  # [A, P, 1]
    after = torch.cumprod(1 - alpha, dim=-1).mul_(start)  # transmittance after each, if all were taken
    # Transmittance only falls: the first Gaussian that takes it to <= 1e-4 is the stopping one,
    # and it and every Gaussian after it are masked. Before it, "after" is already exact.
    saturated = after <= MIN_TRANSMITTANCE
    before = torch.cat([start, after[..., :-1]], dim=-1)
    weights = (alpha * before).masked_fill_(saturated, 0.0)
    newly_done = saturated[..., -1]
    if bool(newly_done.any()):
        end = torch.minimum(after.masked_fill(saturated, math.inf).amin(dim=-1), start[..., 0])
    else:
        end = after[..., -1]
    return {
        "raw_alpha": raw_alpha, "alpha": alpha, "before": before, "weights": weights,
        "transmittance_end": torch.where(chunk.done_start, chunk.transmittance_start, end),
        "newly_done": newly_done,
    }


MIN_WINDOW = 16  # Gaussians per tile per step, at least: fewer and Python overhead dominates


def _plan_chunks_and_composite(isect: TileIntersections, geometry: _TileGeometry, means2d: Tensor,
                               conics: Tensor, opacities: Tensor, colors: Tensor,
                               chunk_elements: int, weights_out: list | None = None
                               ) -> tuple[Tensor, Tensor, list[_Chunk]]:
    """Forward compositing, rank window by rank window; -> (sum w c [tiles, P, D], T [tiles, P], chunks).

    A window holds the next `window` Gaussians of every still-active tile; when the active tiles are
    too many for `chunk_elements`, the window is split into groups of tiles. `weights_out` collects each
    chunk's nonzero weights as (tile-pixel row, Gaussian id, weight) for CompositeWeights.
    """
    counts = isect.tile_counts
    num_tiles, pixels = geometry.inside.shape
    transmittance = torch.ones(num_tiles, pixels, dtype=means2d.dtype, device=means2d.device)
    done = ~geometry.inside
    accumulated = torch.zeros(num_tiles, pixels, colors.shape[-1], dtype=colors.dtype, device=colors.device)
    chunks: list[_Chunk] = []
    last_position = max(isect.gaussian_ids.numel() - 1, 0)
    group_size = max(1, chunk_elements // (pixels * MIN_WINDOW))
    active = (counts > 0).nonzero().squeeze(1)
    rank = 0
    while active.numel() > 0:
        remaining = int((counts[active] - rank).max())
        window = max(MIN_WINDOW, min(remaining, chunk_elements // (min(active.numel(), group_size) * pixels)))
        slot = rank + torch.arange(window, device=counts.device)  # [Kc]
        for tiles in active.split(group_size):
            present = slot[None, :] < counts[tiles, None]  # [A, Kc]
            position = (isect.tile_offsets[tiles, None] + slot[None, :]).clamp(max=last_position)
            ids = torch.where(present, isect.gaussian_ids[position], torch.zeros_like(position))
            exponent_coef, factors = _exponent_coefficients(geometry, tiles, ids, means2d, conics)
            opacity = opacities[ids].masked_fill_(~present, 0.0)
            chunk = _Chunk(tiles, ids, present, transmittance[tiles], done[tiles], exponent_coef, factors, opacity)
            terms = _chunk_terms(geometry, chunk)
            accumulated[tiles] += torch.bmm(terms["weights"], colors[ids])  # [A, P, D]
            if weights_out is not None:
                weights_out.append(_nonzero_pairs(terms["weights"], tiles, ids, pixels))
            transmittance[tiles] = terms["transmittance_end"]
            done[tiles] = chunk.done_start | terms["newly_done"]
            chunks.append(chunk)
        rank += window
        active = active[(counts[active] > rank) & ~done[active].all(dim=-1)]
    return accumulated, transmittance, chunks


def _nonzero_pairs(weights: Tensor, tiles: Tensor, ids: Tensor, pixels: int) -> tuple[Tensor, Tensor, Tensor]:
    """weights [A, P, Kc] of one chunk -> (rows [M] = tile * P + pixel, Gaussian ids [M], weights [M])."""
    a, p, k = weights.nonzero(as_tuple=True)
    return tiles[a] * pixels + p, ids[a, k], weights[a, p, k]


@dataclass(frozen=True)
class CompositeWeights:
    """The compositing of fixed projected Gaussians as a linear map of their colours.

    With positions, shapes and opacities fixed, every pixel is sum_i w_i c_i with weights that do not depend
    on the colours: kept as the nonzero (pixel, Gaussian, weight) triples, drawing new colours is one gather
    and one scatter-add instead of a compositing pass (render.color_drawing, the colour solve)."""

    rows: Tensor  # [M] long, tile-pixel index tile * P + pixel (tiles over all cameras)
    gaussian_ids: Tensor  # [M] long, flat index c * N + n
    weights: Tensor  # [M]
    alpha: Tensor  # [C, 1, H, W] = 1 - final transmittance, the same for any colours
    intersections: TileIntersections
    num_cameras: int
    width: int
    height: int

    def apply(self, colors: Tensor) -> tuple[Tensor, Tensor]:
        """colors [C, N, D] -> (image [C, D, H, W] black behind, alpha [C, 1, H, W]), as rasterize_torch."""
        isect = self.intersections
        channels = colors.shape[-1]
        pixels = isect.tile_size * isect.tile_size
        num_tiles = self.num_cameras * isect.tiles_y * isect.tiles_x
        flat = colors.reshape(-1, channels)
        tiles = flat.new_zeros(num_tiles * pixels, channels).index_add_(
            0, self.rows, self.weights.to(flat.dtype)[:, None] * flat[self.gaussian_ids])
        image = _tiles_to_image(tiles.reshape(num_tiles, pixels, channels), self.num_cameras, isect, self.width,
                                self.height)
        return image, self.alpha


@torch.no_grad()
def composite_weights(projected: ProjectedGaussians, opacities: Tensor, width: int, height: int,
                      tile_size: int = DEFAULT_TILE_SIZE, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
                      ) -> CompositeWeights:
    """One compositing pass that keeps its weights: rasterize_torch for any colours, as a CompositeWeights."""
    num_cameras, n = projected.depths.shape
    if opacities.shape != (n,):
        raise ValueError(f"composite_weights: expected opacities [N={n}], got {tuple(opacities.shape)}")
    dtype, device = projected.means2d.dtype, projected.means2d.device
    isect = intersect_tiles(projected, width, height, tile_size, opacities)
    geometry = _TileGeometry(isect, num_cameras, width, height, dtype, device)
    collected: list[tuple[Tensor, Tensor, Tensor]] = []
    unit = torch.ones(num_cameras * n, 1, dtype=dtype, device=device)  # the colours do not matter here
    _, transmittance, _ = _plan_chunks_and_composite(
        isect, geometry, projected.means2d.reshape(-1, 2), projected.conics.reshape(-1, 3),
        opacities[None].expand(num_cameras, n).reshape(-1), unit, chunk_elements, weights_out=collected)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    rows, ids, weights = (torch.cat(parts) for parts in zip(*collected)) if collected else (empty, empty,
                                                                                           empty.to(dtype))
    alpha = _tiles_to_image(1 - transmittance[..., None], num_cameras, isect, width, height)
    return CompositeWeights(rows, ids, weights, alpha, isect, num_cameras, int(width), int(height))


class _CompositeTiles(torch.autograd.Function):
    """Differentiable tile compositing with a hand-written, chunk-recomputing backward."""

    @staticmethod
    def forward(ctx, means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor,
                background: Tensor, isect: TileIntersections, geometry: _TileGeometry,
                pixel_camera: Tensor, chunk_elements: int) -> tuple[Tensor, Tensor]:
        # means2d [G, 2], conics [G, 3], opacities [G], colors [G, D], background [C, D]
        accumulated, transmittance, chunks = _plan_chunks_and_composite(
            isect, geometry, means2d, conics, opacities, colors, chunk_elements)
        tile_colors = accumulated + transmittance[..., None] * background[pixel_camera][:, None, :]
        ctx.save_for_backward(means2d, conics, opacities, colors, background, transmittance)
        ctx.chunks, ctx.geometry, ctx.pixel_camera = chunks, geometry, pixel_camera
        return tile_colors, transmittance  # [tiles, P, D], [tiles, P]

    @staticmethod
    def backward(ctx, grad_colors: Tensor, grad_transmittance: Tensor):
        means2d, conics, opacities, colors, background, final = ctx.saved_tensors
        geometry, pixel_camera = ctx.geometry, ctx.pixel_camera
        grad_colors = grad_colors.contiguous()
        grad_background = torch.zeros_like(background).index_add_(
            0, pixel_camera, (final[..., None] * grad_colors).sum(dim=1))
        # Everything behind a pixel's current Gaussian, as seen by the loss: starts with what the
        # background and the alpha output contribute through the final transmittance.
        behind = final * ((grad_colors * background[pixel_camera][:, None, :]).sum(-1) + grad_transmittance)
        grad_means2d = torch.zeros_like(means2d)
        grad_conics = torch.zeros_like(conics)
        grad_opacities = torch.zeros_like(opacities)
        grad_colors_in = torch.zeros_like(colors)
        for chunk in reversed(ctx.chunks):
            terms = _chunk_terms(geometry, chunk)
            ids = chunk.ids
            grad_pixel = grad_colors[chunk.tiles]  # [A, P, D]
            weights = terms["weights"]  # [A, P, Kc]
            grad_colors_in.index_add_(0, ids.reshape(-1), torch.bmm(weights.transpose(1, 2), grad_pixel).flatten(0, 1))
            color_dot = torch.bmm(grad_pixel, colors[ids].transpose(1, 2))  # [A, P, Kc]: g . c_k
            contribution = color_dot * weights
            total = contribution.sum(-1, keepdim=True)
            behind_k = behind[chunk.tiles][:, :, None] + (total - contribution.cumsum(-1))  # later ones
            behind[chunk.tiles] += total.squeeze(-1)
            alpha, raw_alpha = terms["alpha"], terms["raw_alpha"]
            grad_alpha = color_dot.mul_(terms["before"]).sub_(behind_k.div_(1 - alpha))
            # No gradient through the 0.999 clamp, the skip threshold or the stopping rule (gsplat);
            # a Gaussian contributes exactly where its weight is positive.
            grad_alpha.masked_fill_((weights <= 0) | (raw_alpha > MAX_ALPHA), 0.0)
            # alpha = opacity * exp(-sigma): d alpha / d opacity = alpha / opacity (opacity >= 1/255 here).
            safe_opacity = chunk.opacity.masked_fill(~chunk.present, 1.0)
            grad_opacities.index_add_(0, ids.reshape(-1), ((grad_alpha * raw_alpha).sum(1) / safe_opacity).reshape(-1))
            # d alpha / d(-sigma) = alpha, and -sigma = basis . exponent_coef = -(basis . coef).
            grad_coef = torch.matmul(geometry.basis.T, grad_alpha.mul_(raw_alpha)).neg_()  # [A, 6, Kc] w.r.t. +sigma
            mx, my, a, b, c = chunk.factors
            g0, g1, g2, g3, g4, g5 = grad_coef.unbind(1)
            grad_mean = torch.stack([(a * mx + b * my) * g0 - a * g1 - b * g2,
                                     (c * my + b * mx) * g0 - b * g1 - c * g2], dim=-1)  # [A, Kc, 2]
            grad_conic = torch.stack([0.5 * mx * mx * g0 - mx * g1 + 0.5 * g3,
                                      mx * my * g0 - my * g1 - mx * g2 + g4,
                                      0.5 * my * my * g0 - my * g2 + 0.5 * g5], dim=-1)  # [A, Kc, 3]
            grad_conics.index_add_(0, ids.reshape(-1), grad_conic.reshape(-1, 3))
            grad_means2d.index_add_(0, ids.reshape(-1), grad_mean.reshape(-1, 2))
        return grad_means2d, grad_conics, grad_opacities, grad_colors_in, grad_background, None, None, None, None


def _check_rasterizer_inputs(projected: ProjectedGaussians, colors: Tensor, opacities: Tensor,
                             background: Tensor | None) -> tuple[int, int, int]:
    num_cameras, n = projected.depths.shape
    if colors.dim() != 3 or colors.shape[:2] != (num_cameras, n):
        raise ValueError(f"rasterizer: expected colors [C={num_cameras}, N={n}, D], got {tuple(colors.shape)}")
    if opacities.shape != (n,):
        raise ValueError(f"rasterizer: expected opacities [N={n}], got {tuple(opacities.shape)}")
    channels = colors.shape[-1]
    if background is not None and background.shape != (num_cameras, channels):
        raise ValueError(f"rasterizer: expected background [C={num_cameras}, D={channels}], "
                         f"got {tuple(background.shape)}")
    return num_cameras, n, channels


def rasterize_torch(
    projected: ProjectedGaussians,
    colors: Tensor,  # [C, N, D] per-camera colour channels (rgb, plus depth for expected depth)
    opacities: Tensor,  # [N]
    width: int,
    height: int,
    background: Tensor | None = None,  # [C, D]; None = zeros
    tile_size: int = DEFAULT_TILE_SIZE,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[Tensor, Tensor]:
    """Composite projected Gaussians -> (colors [C, D, H, W], alpha [C, 1, H, W]); differentiable."""
    num_cameras, n, channels = _check_rasterizer_inputs(projected, colors, opacities, background)
    dtype, device = colors.dtype, colors.device
    if background is None:
        background = torch.zeros(num_cameras, channels, dtype=dtype, device=device)
    isect = intersect_tiles(projected, width, height, tile_size, opacities)
    geometry = _TileGeometry(isect, num_cameras, width, height, dtype, device)
    pixel_camera = torch.arange(num_cameras, device=device).repeat_interleave(isect.tiles_y * isect.tiles_x)
    tile_colors, transmittance = _CompositeTiles.apply(
        projected.means2d.reshape(-1, 2).to(dtype), projected.conics.reshape(-1, 3).to(dtype),
        opacities[None].expand(num_cameras, n).reshape(-1), colors.reshape(-1, channels),
        background.to(dtype), isect, geometry, pixel_camera, chunk_elements)
    image = _tiles_to_image(tile_colors, num_cameras, isect, width, height)  # [C, D, H, W]
    alpha = _tiles_to_image(1 - transmittance[..., None], num_cameras, isect, width, height)
    return image, alpha


def _tiles_to_image(tiles: Tensor, num_cameras: int, isect: TileIntersections, width: int, height: int) -> Tensor:
    """[C * ty * tx, P, D] -> [C, D, H, W] (cropping the padding of the last tile row/column)."""
    size = isect.tile_size
    grid = tiles.reshape(num_cameras, isect.tiles_y, isect.tiles_x, size, size, -1)
    image = grid.permute(0, 5, 1, 3, 2, 4).reshape(num_cameras, -1, isect.tiles_y * size, isect.tiles_x * size)
    return image[:, :, :height, :width]


def composite_dense_reference(
    projected: ProjectedGaussians,
    colors: Tensor,  # [C, N, D]
    opacities: Tensor,  # [N]
    width: int,
    height: int,
    background: Tensor | None = None,  # [C, D]
) -> tuple[Tensor, Tensor]:
    """All pixels x all visible Gaussians, plain autograd: the slow twin of `rasterize_torch`.

    No tiles and no chunks; only the compositing rules are shared. Footprint boxes do not limit it,
    so it also checks that the box contains every pixel a Gaussian reaches with alpha >= 1/255.
    """
    num_cameras, _, channels = _check_rasterizer_inputs(projected, colors, opacities, background)
    dtype, device = colors.dtype, colors.device
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing="ij")
    pixel = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1) + 0.5  # [P, 2]
    images, alphas = [], []
    for c in range(num_cameras):
        ids = projected.visible[c].nonzero().squeeze(1)
        ids = ids[torch.sort(projected.depths[c, ids], stable=True).indices]
        delta = projected.means2d[c, ids][None] - pixel[:, None]  # [P, V, 2]
        conic = projected.conics[c, ids]  # [V, 3]
        sigma = (0.5 * (conic[:, 0] * delta[..., 0] ** 2 + conic[:, 2] * delta[..., 1] ** 2)
                 + conic[:, 1] * delta[..., 0] * delta[..., 1])
        alpha = (opacities[ids] * torch.exp(-sigma)).clamp(max=MAX_ALPHA)  # [P, V]
        accepted = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD)
        alpha = torch.where(accepted, alpha, torch.zeros_like(alpha))
        stops = accepted & (torch.cumprod(1 - alpha.detach(), dim=-1) <= MIN_TRANSMITTANCE)
        alpha = torch.where(accepted & ~stops, alpha, torch.zeros_like(alpha))
        after = torch.cumprod(1 - alpha, dim=-1)
        before = torch.cat([torch.ones_like(after[:, :1]), after[:, :-1]], dim=-1)
        final = after[:, -1] if ids.numel() else torch.ones(pixel.shape[0], dtype=dtype, device=device)
        image = (alpha * before) @ colors[c, ids]  # [P, D]
        if background is not None:
            image = image + final[:, None] * background[c]
        images.append(image.T.reshape(channels, height, width))
        alphas.append((1 - final).reshape(1, height, width))
    return torch.stack(images), torch.stack(alphas)
