"""Keyframe depth by plane-sweep multi-view stereo against the other frames of the window.

For every reference pixel and every depth hypothesis (uniform in inverse depth between `near` and
`far`, fronto-parallel planes of the reference camera) the pixel's 3D point is projected into each
source frame and the colours are compared (SAD over a small box window). The per-source costs are
aggregated robustly: the mean of the best `best_fraction` of the sources, so occlusions and objects
that move between frames (the sweep assumes a static scene) spoil only some sources. The winning
hypothesis is refined by a parabola through its neighbours in inverse depth.

The issue's probe measured SAD, ZNCC and AlexNet-conv1 costs: SAD on the box-filtered colour did best
at 64-128 px, so that is the cost here. No learned weights; batched torch, runs on any device.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import inside_image, pixel_centers, pixel_length


@dataclass(frozen=True)
class SweepConfig:
    """Hypotheses, sources and cost aggregation of the sweep (units: the poses' frame, e.g. normalised)."""

    num_planes: int = 48
    near: float = 0.25  # nearest hypothesis (z-depth)
    far: float = 20.0  # farthest hypothesis
    spacing: str = "inverse"  # planes uniform in "inverse" depth (equal parallax steps; most planes near the
    # camera) or in "log" depth (equal relative depth steps)
    max_sources: int = 6  # source frames per reference, spread evenly over the window. 12 cost twice the
    # time for the same depth (16 held-out 64 px windows: median AbsRel 0.117 with 12, 0.114 with 6)
    best_fraction: float = 0.5  # share of the sources (lowest cost) averaged per hypothesis
    box: int = 3  # side of the box window the per-pixel SAD is averaged over (odd)
    min_step_px: float = 0.25  # a hypothesis step at the winner must move the point this far in some source
    blur: float = 0.0  # Gaussian blur (sigma, px) of the frames before matching; 0 = off
    # Semi-global aggregation of the cost volume before the arg-min (smooth_p2 = 0: off, winner-take-all per
    # pixel): penalties, in SAD units, for a one-plane step and for any larger jump between neighbouring
    # pixels along each scanline; the jump penalty shrinks across colour edges (halved at a mean colour
    # difference of smooth_edge), where depth edges are likely. Tuned on 32 training windows (64 px,
    # classical depth after the moving regions, per-window median / mean AbsRel / mean L1 in units):
    # off 0.216 / 0.443 / 1.41; 0.001/0.005 0.212 / 0.440 / 1.37; 0.002/0.01 (this) 0.198 / 0.442 / 1.37;
    # 0.005/0.03 and 0.01/0.06 worse than off (over-smoothed); 8 paths no better than 4 at twice the cost.
    smooth_p1: float = 0.05
    smooth_p2: float = 0.0
    smooth_edge: float = 0.05
    smooth_paths: int = 4  # 4 (rows and columns, both ways) or 8 (also the diagonals)
    far_end_prior: bool = True  # winners at the farthest plane take the confident pixels' median depth
    far_end_confidence: float = 0.3  # ... of the pixels above this confidence
    far_end_min_pixels: int = 100  # ... when there are at least this many (else they stay at `far`)
    smooth_floor: float = 1e-4  # the least curve depth (SAD) a pixel's curve is normalised by
    smooth_min_observable: float = 0.5  # share of a reference's pixels with parallax (min_step_px) it needs

    def __post_init__(self) -> None:
        if self.num_planes < 3 or not 0 < self.near < self.far:
            raise ValueError(f"SweepConfig: need num_planes >= 3 and 0 < near < far, got {self.num_planes}, "
                             f"{self.near}, {self.far}")
        if self.spacing not in ("inverse", "log"):
            raise ValueError(f"SweepConfig.spacing: expected 'inverse' or 'log', got {self.spacing!r}")
        if self.smooth_p1 < 0 or self.smooth_p2 < 0 or self.smooth_edge <= 0 or self.smooth_paths not in (4, 8):
            raise ValueError(f"SweepConfig: need smooth_p1, smooth_p2 >= 0, smooth_edge > 0 and smooth_paths 4 or 8, "
                             f"got {self.smooth_p1}, {self.smooth_p2}, {self.smooth_edge}, {self.smooth_paths}")
        if self.max_sources < 1 or not 0 < self.best_fraction <= 1 or self.box < 1 or self.box % 2 == 0:
            raise ValueError(f"SweepConfig: need max_sources >= 1, 0 < best_fraction <= 1 and an odd box, got "
                             f"{self.max_sources}, {self.best_fraction}, {self.box}")

    def hypotheses(self, device: torch.device | str | None = None) -> Tensor:
        """[D] the planes in their uniform coordinate (inverse or log depth), nearest first."""
        if self.spacing == "log":
            return torch.linspace(math.log(self.near), math.log(self.far), self.num_planes, device=device)
        return torch.linspace(1.0 / self.near, 1.0 / self.far, self.num_planes, device=device)

    def to_depth(self, hypothesis: Tensor) -> Tensor:
        """z-depth of (fractional) hypothesis coordinates."""
        return hypothesis.exp() if self.spacing == "log" else 1.0 / hypothesis

    def inverse_depths(self, device: torch.device | str | None = None) -> Tensor:
        """[D] hypotheses in inverse depth, nearest first."""
        return 1.0 / self.to_depth(self.hypotheses(device))


@dataclass(frozen=True)
class SweepResult:
    """Depth of every reference frame and how much to trust it."""

    depth: Tensor  # [R, 1, H, W] z-depth
    confidence: Tensor  # [R, 1, H, W] in [0, 1]: distinct cost minimum and enough parallax
    cost_min: Tensor  # [R, 1, H, W] aggregated SAD at the winner (colour units, 0..1)
    spread: Tensor  # [R, 1, H, W] std of the hypothesis index under a softmin over the cost curve


def select_sources(num_frames: int, reference: int, max_sources: int) -> list[int]:
    """Other frames of the window, evenly spread in time (wider baselines than only the neighbours)."""
    others = [n for n in range(num_frames) if n != reference]
    if len(others) <= max_sources:
        return others
    picks = torch.linspace(0, len(others) - 1, max_sources).round().long().tolist()
    return [others[i] for i in sorted(set(picks))]


def _source_uv(depth: Tensor, direction: Tensor, offset: Tensor) -> tuple[Tensor, Tensor]:
    """Where points at z-depth `depth` on the reference rays land in a source camera.

    Plane-induced homography: a point at z-depth z on ray p lands at K_s (z R p + t) in source s, so every
    hypothesis is one multiply-add of two per-pixel vectors. depth [..., HW, 1] (broadcast), direction
    [HW, 3], offset [3] -> uv [..., HW, 2] (pixel coordinates, centres at +0.5), source z [..., HW].
    """
    homogeneous = depth * direction + offset  # [..., HW, 3]
    z = homogeneous[..., 2:]
    uv = homogeneous[..., :2] / torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    return uv, z[..., 0]


def _gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of images [N, C, H, W] (reflect-padded borders, 3 sigma wide)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous(), groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1).contiguous(), groups=channels)


def _box_mean(values: Tensor, box: int, count: Tensor) -> Tensor:
    """Mean over a box x box window of values [N, 1, H, W], only over pixels inside the image (`count`
    [1, 1, H, W] = how many there are). Sums of shifted slices: on a CPU 3x cheaper than avg_pool2d."""
    height, width = values.shape[-2:]
    padded = F.pad(values, (box // 2,) * 4)
    rows = padded[..., :height, :]
    for i in range(1, box):
        rows = rows + padded[..., i:i + height, :]  # [N, 1, H, W + box - 1]
    total = rows[..., :width]
    for j in range(1, box):
        total = total + rows[..., j:j + width]
    return total / count


@functools.lru_cache(maxsize=None)
def _sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n inputs (the network for the next
    power of two, minus comparators that touch the padding, which would only meet +inf there)."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(pairs)


def smallest(values: Tensor, keep: int) -> Tensor:
    """The `keep` smallest of values [S, ...] along dim 0, ascending -> [keep, ...].

    A sorting network of elementwise min/max over whole rows: for the sweep's few sources and many
    pixels 7x faster on a CPU than topk over a last dim of S, same values in the same order.
    """
    rows = list(values.unbind(0))
    for i, j in _sorting_network(len(rows)):
        rows[i], rows[j] = torch.minimum(rows[i], rows[j]), torch.maximum(rows[i], rows[j])
    return torch.stack(rows[:keep])


def plane_sweep(frames: Tensor, K: Tensor, world_T_cam: Tensor, reference_index: Tensor | list[int],
                config: SweepConfig = SweepConfig()) -> SweepResult:
    """Depth for each reference frame from the window's other frames.

    frames [T, 3, H, W] in [0, 1], K [T, 3, 3], world_T_cam [T, 4, 4], reference_index [R] -> SweepResult.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"plane_sweep: expected frames [T, 3, H, W], got {tuple(frames.shape)}")
    t, _, height, width = frames.shape
    if K.shape != (t, 3, 3) or world_T_cam.shape != (t, 4, 4):
        raise ValueError(f"plane_sweep: expected K [T={t}, 3, 3] and world_T_cam [T={t}, 4, 4], got "
                         f"{tuple(K.shape)}, {tuple(world_T_cam.shape)}")
    refs = [int(r) for r in (reference_index.tolist() if isinstance(reference_index, Tensor) else reference_index)]
    frames, K, world_T_cam = frames.float(), K.float(), world_T_cam.float()
    device = frames.device
    if config.blur > 0:
        frames = _gaussian_blur(frames, config.blur)
    hypotheses = config.hypotheses(device)  # [D] uniform coordinate of the planes
    depths = config.to_depth(hypotheses)[:, None, None]  # [D, 1, 1]
    d = hypotheses.numel()
    ones = torch.ones(height, width, 1, device=device)
    pixels = torch.cat([pixel_centers(height, width, device=device), ones], dim=-1).reshape(-1, 3)  # [HW, 3]
    to_grid = torch.tensor([2.0 / width, 2.0 / height], device=device)  # pixels -> grid_sample's [-1, 1]
    count = _box_mean(torch.ones(1, 1, height, width, device=device), config.box, torch.ones((), device=device))  # [1, 1, H, W]
    cam_T_world = torch.linalg.inv(world_T_cam)
    volumes, geometry, observed = [], [], []  # per reference with sources: agg [D, H, W], (directions, offsets)
    for r in refs:
        sources = select_sources(t, r, config.max_sources) if t > 1 else []
        if not sources:  # a single-frame window: nothing to compare with
            continue
        rays = pixels @ torch.linalg.inv(K[r]).t()  # [HW, 3] camera-r rays with z = 1
        s_T_r = cam_T_world[sources] @ world_T_cam[r]  # [S, 4, 4]
        directions = rays @ (K[sources] @ s_T_r[:, :3, :3]).transpose(-1, -2)  # [S, HW, 3]
        offsets = (K[sources] @ s_T_r[:, :3, 3:])[..., 0]  # [S, 3]
        cost = torch.empty(len(sources), d, height * width, device=device)  # inf where the point leaves the source
        for j, s in enumerate(sources):
            uv, z = _source_uv(depths, directions[j], offsets[j])  # [D, HW, 2], [D, HW]
            warped = F.grid_sample(frames[s:s + 1].expand(d, -1, -1, -1), (uv * to_grid - 1.0).reshape(d, height, width, 2),
                                   mode="bilinear", padding_mode="border", align_corners=False)  # [D, 3, H, W]
            sad = (warped - frames[r][None]).abs().mean(dim=1, keepdim=True)  # [D, 1, H, W]
            # SAD over a box window per source (aggregating after the robust selection instead was 12x
            # cheaper but lost a third of the accuracy on held-out windows).
            sad = _box_mean(sad, config.box, count).reshape(d, -1)
            inside = (z > 1e-6) & inside_image(uv, height, width)
            cost[j] = torch.where(inside, sad, torch.full_like(sad, float("inf")))
        # Robust aggregation: mean of the best `best_fraction` of the sources that see the point.
        keep = max(1, math.ceil(len(sources) * config.best_fraction))
        best = smallest(cost, keep)  # [keep, D, HW]
        finite = torch.isfinite(best)
        agg = torch.where(finite, best, torch.zeros_like(best)).sum(0) / finite.sum(0).clamp_min(1)
        volumes.append(torch.where(finite[0], agg, torch.ones_like(agg)).reshape(d, height, width))  # unseen = worst
        geometry.append((directions, offsets))
        observed.append(r)
    plane_depth = depths.view(-1)  # [D]

    def parallax_step(i: int, winner: Tensor) -> Tensor:
        """[H, W] how far one hypothesis step at the winner moves the point, in the source where it moves most."""
        directions, offsets = geometry[i]
        step = winner.reshape(-1).clamp(max=d - 2)
        near, _ = _source_uv(plane_depth[step][None, :, None], directions, offsets[:, None])  # [S, HW, 2]
        far, _ = _source_uv(plane_depth[step + 1][None, :, None], directions, offsets[:, None])
        return pixel_length(far - near).nan_to_num(0.0).amax(0).clamp_min(0.0).reshape(height, width)

    winners = [volume.argmin(0) for volume in volumes]  # [H, W] winner-take-all per pixel
    steps = [parallax_step(i, winner) for i, winner in enumerate(winners)]
    # Semi-global aggregation only where parallax makes depth observable: on a pan or a still camera the
    # cost curves are flat and the paths would spread whatever wins by chance (measured: worse there).
    smooth = [i for i, step in enumerate(steps)
              if config.smooth_p2 > 0 and float((step >= config.min_step_px).float().mean()) >= config.smooth_min_observable]
    if smooth:
        chosen = torch.stack([volumes[i] for i in smooth])  # [R', D, H, W]
        # Each pixel's curve relative to its own depth (minimum 0, median 1): a smooth, faintly shaded
        # floor has shallow but right curves that absolute penalties would override (held-out windows).
        lowest = chosen.amin(1, keepdim=True)
        relative = (chosen - lowest) / (chosen.median(1, keepdim=True).values - lowest).clamp_min(config.smooth_floor)
        aggregated = semi_global(relative, frames[[observed[i] for i in smooth]], config)
        for i, volume in zip(smooth, aggregated):
            winners[i] = volume.argmin(0)
            steps[i] = parallax_step(i, winners[i])
    results = []
    for r in refs:
        if r not in observed:
            results.append(_unobservable(height, width, device))
            continue
        i = observed.index(r)
        results.append((_refine(volumes[i], winners[i], hypotheses, config)[None],
                        *_quality(volumes[i], winners[i], steps[i], config)))
    result = SweepResult(*(torch.stack(parts) for parts in zip(*results)))
    return _far_end_prior(result, config) if config.far_end_prior else result


def _far_end_prior(result: SweepResult, config: SweepConfig) -> SweepResult:
    """Pixels whose winner is the farthest plane take the median depth of the confident pixels of all
    references (when there are `far_end_min_pixels` of them).

    The farthest plane wins wherever nothing moves with it: a point beyond the parallax the window
    resolves, but just as often a textureless or repeated surface whose far-plane warps land on the same
    colour, or an object moving along with the camera. On 32 training windows (64 px, `dynamic`) 19 %
    of the keyframe pixels won there; with ground truth <= 10 units they were mostly nearer than 5, and
    they gave a quarter of the mean AbsRel. See SweepConfig.far_end_prior for the figures.
    """
    far_end = result.depth >= config.far * (1.0 - 1e-4)  # the last plane, unrefined (the refinement stops there)
    confident = result.confidence > config.far_end_confidence
    if int(confident.sum()) < config.far_end_min_pixels or not bool(far_end.any()):
        return result
    prior = result.depth[confident].median()
    return dataclasses.replace(result, depth=torch.where(far_end, prior, result.depth))


def _scan_both_ways(volume: Tensor, colour: Tensor, p1: float, p2: float, edge: float, shift: int = 0) -> Tensor:
    """Semi-global paths along dim 0 of volume [L, M, D, K], forward and backward, summed -> [L, M, D, K].

    Each step's predecessor sits `shift` places earlier along K (0: a straight scanline; +-1: diagonals).
    L(p, d) = C(p, d) + min(L(q, d), L(q, d +- 1) + p1, min_k L(q, k) + p2(p, q)) - min_k L(q, k), q the
    predecessor; a pixel without one (the image border) starts afresh, L = C. colour [L, M, C, K] shrinks
    the jump penalty p2 across colour edges (halved at a mean colour difference of `edge`).
    """
    length = volume.shape[0]
    forward, backward = torch.empty_like(volume), torch.empty_like(volume)
    forward[0], backward[-1] = volume[0], volume[-1]

    def jumps(steps: Tensor, previous: Tensor) -> Tensor:  # [L-1, M, C, K] x2 -> [L-1, M, 1, K], every step at once
        previous = previous.roll(shift, dims=-1) if shift else previous
        return (p2 / (1.0 + (steps - previous).abs().mean(2, keepdim=True) / edge)).clamp_min(p1)

    forward_jump, backward_jump = jumps(colour[1:], colour[:-1]), jumps(colour[:-1], colour[1:])
    best = torch.empty_like(volume[0])
    for i in range(1, length):
        for out, x, q, jump in ((forward, i, i - 1, forward_jump[i - 1]),
                                (backward, length - 1 - i, length - i, backward_jump[length - 1 - i])):
            prev = out[q]
            if shift:  # align each pixel with its predecessor; the ones without one start afresh (zeros)
                prev = prev.roll(shift, dims=-1)
                prev[..., slice(0, shift) if shift > 0 else slice(shift, None)] = 0.0
            lowest = prev.amin(1, keepdim=True)  # [M, 1, K]
            torch.minimum(prev, lowest + jump, out=best)
            stepped = prev + p1
            torch.minimum(best[:, 1:], stepped[:, :-1], out=best[:, 1:])
            torch.minimum(best[:, :-1], stepped[:, 1:], out=best[:, :-1])
            torch.add(volume[x], best, out=out[x]).sub_(lowest)
    return forward.add_(backward)


def semi_global(cost: Tensor, image: Tensor, config: SweepConfig) -> Tensor:
    """Semi-global aggregation (Hirschmueller's SGM) of cost volumes [N, D, H, W] over `smooth_paths`
    scanline directions, averaged so the result stays in the cost's units; image [N, C, H, W] makes the
    jump penalty edge-aware. Why: winner-take-all per pixel picks noise where the curve is flat or
    ambiguous (low texture, repeated texture, little parallax); the paths carry the depth of
    well-matched neighbours along their surface into such pixels."""
    scan = functools.partial(_scan_both_ways, p1=config.smooth_p1, p2=config.smooth_p2, edge=config.smooth_edge)
    n = cost.shape[0]
    along_rows, rows_colour = cost.permute(3, 0, 1, 2), image.permute(3, 0, 1, 2)  # [W, N, D, H]: step along x
    along_columns, columns_colour = cost.permute(2, 0, 1, 3), image.permute(2, 0, 1, 3)  # [H, N, D, W]: along y
    if cost.shape[-1] == cost.shape[-2]:  # square: rows and columns in one batch
        paths = scan(torch.cat([along_rows, along_columns], 1), torch.cat([rows_colour, columns_colour], 1))
        rows, columns = paths[:, :n], paths[:, n:]
    else:
        rows = scan(along_rows.contiguous(), rows_colour)
        columns = scan(along_columns.contiguous(), columns_colour)
    total = columns.permute(1, 2, 0, 3) + rows.permute(1, 2, 3, 0)  # [N, D, H, W]
    if config.smooth_paths == 8:
        for shift in (1, -1):
            total += scan(along_rows.contiguous(), rows_colour, shift=shift).permute(1, 2, 3, 0)
    return total / config.smooth_paths


def _refine(agg: Tensor, best: Tensor, hypotheses: Tensor, config: SweepConfig) -> Tensor:
    """z-depth [H, W] of the winner `best` [H, W] refined by a parabola through its neighbours on the
    cost curve agg [D, H, W] (in the planes' uniform coordinate)."""
    d = agg.shape[0]
    lo, hi = (best - 1).clamp(0, d - 1), (best + 1).clamp(0, d - 1)
    c0, cm, cp = agg.gather(0, best[None])[0], agg.gather(0, lo[None])[0], agg.gather(0, hi[None])[0]
    curvature = cm + cp - 2.0 * c0
    shift = torch.where(curvature > 1e-9, 0.5 * (cm - cp) / curvature.clamp_min(1e-9), torch.zeros_like(c0))
    shift = torch.where((best > 0) & (best < d - 1), shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    refined = hypotheses[best] + shift * (hypotheses[1] - hypotheses[0])  # uniform spacing: index -> coordinate
    return config.to_depth(refined).clamp(config.near / 2.0, config.far * 4.0)


def _quality(agg: Tensor, best: Tensor, local_step: Tensor, config: SweepConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Confidence, cost and spread [1, H, W] of the winner `best` [H, W] on the photometric cost curve
    agg [D, H, W]; local_step [H, W]: how far (px, best source) one hypothesis step at the winner moves
    the point."""
    d = agg.shape[0]
    c0 = agg.gather(0, best[None])[0]
    # Softmin over the curve at a temperature relative to its median: one sharp valley -> small spread.
    median = agg.median(dim=0).values
    weights = torch.softmax(-(agg - agg.amin(0)) / (0.1 * median.clamp_min(1e-3)), dim=0)
    index = torch.arange(d, device=agg.device, dtype=agg.dtype)[:, None, None]
    mean_index = (weights * index).sum(0)
    spread = ((weights * (index - mean_index).square()).sum(0)).sqrt()
    # Distinctness (how far the minimum sits below the curve's median) and a low residual cost are what
    # predicted a good depth on held-out synthetic windows (median AbsRel 0.02 in the top two fifths of
    # each, 0.4 in the bottom two); the spread added nothing beyond them. With the semi-global winner the
    # cost is the photometric one at that winner, so a winner the paths imposed against the data scores low.
    distinct = ((median - c0) / median.clamp_min(1e-3)).clamp(0, 1)
    # Observability at the winner: a plane step must move the point visibly in some source, else a pan
    # or a still camera (no baseline) picks a depth by chance.
    confidence = distinct * torch.exp(-c0 / 0.03) * (local_step >= config.min_step_px).float()
    return confidence[None], c0[None], spread[None]


def _unobservable(height: int, width: int, device: torch.device) -> tuple[Tensor, ...]:
    ones = torch.ones(1, height, width, device=device)
    return ones, torch.zeros_like(ones), ones, ones * 100.0
