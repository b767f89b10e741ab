"""Keyframe depth by plane-sweep multi-view stereo against the other frames of the window.

For every reference pixel and every depth hypothesis (uniform in inverse depth between the window's near
depth and `far`, fronto-parallel planes of the reference camera; `window_near` finds where the window's
surfaces begin with a cheap probe sweep) the pixel's 3D point is projected into each
source frame and the colours are compared (SAD over a small box window). The per-source costs are
aggregated robustly: the mean of the best `best_fraction` of the sources, so occlusions and objects
that move between frames (the sweep assumes a static scene) spoil only some sources. The winning
hypothesis is refined by a parabola through its neighbours in inverse depth. Pixels won by the farthest
plane (no parallax seen: mostly near surfaces that move with the camera or repeat their colour there)
take the median depth of the window's confident pixels (`far_end_prior`).

The issue's probe measured SAD, ZNCC and AlexNet-conv1 costs: SAD on the box-filtered colour did best
at 64-128 px, so that is the cost here. No learned weights; batched torch, runs on any device.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import inside_image, pixel_centers, pixel_length, scale_intrinsics
from dgslrm_ros.geometry import cpu_kernels


@dataclass(frozen=True)
class SweepConfig:
    """Hypotheses, sources and cost aggregation of the sweep (units: the poses' frame, e.g. normalised)."""

    num_planes: int = 48
    near: float = 0.25  # nearest hypothesis (z-depth)
    far: float = 20.0  # farthest hypothesis; inverse-depth spacing puts most planes near the camera
    max_sources: int = 6  # source frames per reference, spread evenly over its span (below). 12 cost twice
    # the time for the same depth (16 held-out 64 px windows: median AbsRel 0.117 with 12, 0.114 with 6)
    # Sources are spread only over the frames around the reference (contiguous in time) that see a point
    # at `source_angle_depth` on the reference's optical axis within `max_source_angle_deg` of the
    # reference's view: a fast camera's far frames see the scene from too far around for a fronto-parallel
    # SAD (see source_span). Real clips, held-out frames, 64 px, `classical` (cube / cockatoo / realshort):
    # no cap 24.90 / 27.57 / 32.07 dB; 4 deg (this) 26.23 / 27.79 / 32.07 (realshort's camera never turns
    # 2 deg). Probes of the choice (a scratch copy of the rule): 10 deg 25.94 / - / -; 6 deg 26.06 / 27.65 /
    # 32.07; 4 deg 26.23 / 27.82 / 32.07; the 6 nearest frames instead 26.25 / 27.69 / 32.32 but on 16
    # training `wide` windows median AbsRel 0.126 -> 0.214 and novel views -0.6 dB.
    # On 16 training windows each, `classical` `dynamic` / `wide`, no cap -> 6 deg -> 4 deg: between frames
    # 20.84 -> 20.85 -> 20.99 / 21.14 -> 21.13 -> 21.12 dB, novel views 15.67 -> 15.67 -> 15.69 / 16.02 ->
    # 15.82 -> 15.58 dB, median AbsRel 0.203 -> 0.203 -> 0.203 / 0.126 -> 0.132 -> 0.147: the far novel
    # views of the wide camera paths lose what the real clips gain.
    max_source_angle_deg: float = 4.0
    source_angle_depth: float = 2.0  # the poses' units; the posing tool scales clips to a 2 m median depth
    best_fraction: float = 0.5  # share of the sources (lowest cost) averaged per hypothesis
    box: int = 3  # side of the box window the per-pixel SAD is averaged over (odd)
    min_step_px: float = 0.25  # a hypothesis step at the winner must move the point this far in some source
    # Winners at the farthest plane take the median depth of the confident pixels (confidence above
    # far_end_confidence) of all the references, when there are far_end_min_pixels of them (else they stay
    # at `far`); see far_end_prior. 32 training windows, 64 px, `dynamic`, classical depth after the
    # moving regions (per-window median / mean AbsRel / mean L1): off 0.216 / 0.443 / 1.41; only the
    # unconfident far-end winners (< 0.3) 0.209 / 0.409 / 1.36; each keyframe's own median 0.216 / 0.412 /
    # 1.36; the 75th / 90th percentile instead of the median 0.216 / 0.424 / 1.37 and 0.216 / 0.434 / 1.39;
    # also the second-farthest plane 0.216 / 0.412 / 1.39; all far-end winners, the window's median (this)
    # 0.208 / 0.387 / 1.32.
    far_end_prior: bool = True
    far_end_confidence: float = 0.3
    far_end_min_pixels: int = 100
    # The nearest hypothesis follows the window (window_near): a probe sweep at half resolution over
    # [near, far] with `probe_planes` planes finds the window's near depth (the `near_quantile` of its
    # confident pixels), and the planes start at that depth / `near_margin`, snapped down to eighths of an
    # octave (never nearer than `near`).
    # With `near` fixed at 0.25 units three quarters of the inverse-depth planes lay nearer than 1 unit,
    # where no surface of a 2-unit scene is; on real clips one plane step moved the point 3-10 px.
    adaptive_near: bool = True
    probe_planes: int = 16
    probe_confidence: float = 0.05
    near_quantile: float = 0.02
    near_margin: float = 1.5

    def __post_init__(self) -> None:
        if self.num_planes < 3 or not 0 < self.near < self.far:
            raise ValueError(f"SweepConfig: need num_planes >= 3 and 0 < near < far, got {self.num_planes}, "
                             f"{self.near}, {self.far}")
        if not 0 <= self.far_end_confidence < 1 or self.far_end_min_pixels < 1:
            raise ValueError(f"SweepConfig: need 0 <= far_end_confidence < 1 and far_end_min_pixels >= 1, got "
                             f"{self.far_end_confidence}, {self.far_end_min_pixels}")
        if not 0 < self.max_source_angle_deg <= 180 or not self.source_angle_depth > 0:
            raise ValueError(f"SweepConfig: need 0 < max_source_angle_deg <= 180 and source_angle_depth > 0, got "
                             f"{self.max_source_angle_deg}, {self.source_angle_depth}")
        if self.probe_planes < 3 or not 0 < self.near_quantile < 1 or self.near_margin < 1:
            raise ValueError(f"SweepConfig: need probe_planes >= 3, 0 < near_quantile < 1 and near_margin >= 1, got "
                             f"{self.probe_planes}, {self.near_quantile}, {self.near_margin}")
        if self.max_sources < 1 or not 0 < self.best_fraction <= 1 or self.box < 1 or self.box % 2 == 0:
            raise ValueError(f"SweepConfig: need max_sources >= 1, 0 < best_fraction <= 1 and an odd box, got "
                             f"{self.max_sources}, {self.best_fraction}, {self.box}")

    def sources_kept(self, num_sources: int) -> int:
        """How many of a pixel's source costs are averaged: the best `best_fraction` of them, at least one."""
        return max(1, math.ceil(num_sources * self.best_fraction))

    def inverse_depths(self, device: torch.device | str | None = None) -> Tensor:
        """[D] hypotheses in inverse depth, nearest first."""
        return torch.linspace(1.0 / self.near, 1.0 / self.far, self.num_planes, device=device)


@dataclass(frozen=True)
class SweepResult:
    """Depth of every reference frame and how much to trust it."""

    depth: Tensor  # [R, 1, H, W] z-depth
    confidence: Tensor  # [R, 1, H, W] in [0, 1]: distinct cost minimum and enough parallax
    cost_min: Tensor  # [R, 1, H, W] aggregated SAD at the winner (colour units, 0..1)
    spread: Tensor  # [R, 1, H, W] std of the hypothesis index under a softmin over the cost curve


def viewing_angles(world_T_cam: Tensor, reference: int, depth: float) -> Tensor:
    """[T] degrees between each camera's and the reference camera's view of the point at z-depth `depth` on
    the reference's optical axis (world_T_cam [T, 4, 4]; 0 for the reference itself)."""
    poses = world_T_cam.double()
    point = poses[reference, :3, 3] + depth * poses[reference, :3, 2]
    to_cameras = poses[:, :3, 3] - point  # [T, 3]
    cosine = (to_cameras * to_cameras[reference]).sum(-1) / (to_cameras.norm(dim=-1) * to_cameras[reference].norm()).clamp_min(1e-12)
    return torch.rad2deg(torch.acos(cosine.clamp(-1.0, 1.0)))


def source_span(angles: Tensor, reference: int, max_angle: float, min_frames: int) -> tuple[int, int]:
    """First and last frame (inclusive) of the time span around the reference whose frames see it within
    `max_angle` degrees (angles [T], viewing_angles), widened to the nearest `min_frames` other frames.

    Why: the sweep compares fronto-parallel SAD windows, which stop matching once a source sees the
    surface from far around (a slanted poster, the sides of an object), and a fast hand-held camera's far
    frames do. A slow camera's span is the whole window, as before the cap; a camera that turns fast gets
    at least its `min_frames` nearest frames. Figures: SweepConfig.max_source_angle_deg.
    """
    angles = angles.tolist()  # one device sync
    t = len(angles)
    first, last = reference, reference
    while first > 0 and angles[first - 1] <= max_angle:
        first -= 1
    while last < t - 1 and angles[last + 1] <= max_angle:
        last += 1
    while last - first < min(min_frames, t - 1):  # widen toward the nearer side first
        if first > 0 and (last == t - 1 or reference - first <= last - reference):
            first -= 1
        else:
            last += 1
    return first, last


def select_sources(num_frames: int, reference: int, max_sources: int, span: tuple[int, int] | None = None) -> list[int]:
    """Other frames of the window (or of `span`, inclusive: source_span), evenly spread in time (wider
    baselines than only the neighbours)."""
    first, last = span if span is not None else (0, num_frames - 1)
    others = [n for n in range(first, last + 1) if n != reference]
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


def _aggregated_cost(reference: Tensor, sources: Tensor, directions: Tensor, offsets: Tensor, depths: Tensor,
                     count: Tensor, keep: int, box: int) -> Tensor:
    """The robustly aggregated cost volume of one reference frame -> [D, HW] (1 where no source sees).

    reference [3, H, W], sources [S, 3, H, W], directions [S, HW, 3] and offsets [S, 3] (_source_uv),
    depths [D], count [1, 1, H, W] (_box_mean's in-image counts). On a CPU with the C kernels built
    (geometry/cpu_kernels.py) it is computed in one pass, about 3x faster at 64 px; elsewhere by the torch
    code below, the same to float rounding (test/geometry/test_cpu_kernels.py).
    """
    if cpu_kernels.runs_on(reference):
        return _aggregated_cost_kernel(reference, sources, directions, offsets, depths, count, keep, box)
    return _aggregated_cost_torch(reference, sources, directions, offsets, depths, count, keep, box)


def _aggregated_cost_kernel(reference: Tensor, sources: Tensor, directions: Tensor, offsets: Tensor,
                            depths: Tensor, count: Tensor, keep: int, box: int) -> Tensor:
    height, width = reference.shape[-2:]
    num_sources, num_planes = sources.shape[0], depths.numel()
    out = torch.empty(num_planes, height * width)
    arrays = [x.detach().contiguous().float().numpy() for x in (reference, sources, directions, offsets, depths, count)]
    cpu_kernels.KERNELS.aggregated_cost(*arrays, num_sources, num_planes, height, width, box, keep, out.numpy(),
                                        torch.get_num_threads())  # the planes split over torch's threads
    return out


def _aggregated_cost_torch(reference: Tensor, sources: Tensor, directions: Tensor, offsets: Tensor,
                           depths: Tensor, count: Tensor, keep: int, box: int) -> Tensor:
    """The torch path of _aggregated_cost; depths [D] (planes) or [D, HW] (a depth per pixel) -> [D, HW]."""
    height, width = reference.shape[-2:]
    d = depths.shape[0]
    to_grid = torch.tensor([2.0 / width, 2.0 / height], device=reference.device)  # pixels -> grid_sample's [-1, 1]
    cost = torch.empty(sources.shape[0], d, height * width, device=reference.device)  # inf where the point leaves
    for j in range(sources.shape[0]):
        uv, z = _source_uv(depths.reshape(d, -1, 1), directions[j], offsets[j])  # [D, HW, 2], [D, HW]
        warped = F.grid_sample(sources[j:j + 1].expand(d, -1, -1, -1), (uv * to_grid - 1.0).reshape(d, height, width, 2),
                               mode="bilinear", padding_mode="border", align_corners=False)  # [D, 3, H, W]
        sad = (warped - reference[None]).abs().mean(dim=1, keepdim=True)  # [D, 1, H, W]
        # SAD over a box window per source (aggregating after the robust selection instead was 12x
        # cheaper but lost a third of the accuracy on held-out windows).
        sad = _box_mean(sad, box, count).reshape(d, -1)
        inside = (z > 1e-6) & inside_image(uv, height, width)
        cost[j] = torch.where(inside, sad, torch.full_like(sad, float("inf")))
    # Robust aggregation: mean of the best `keep` of the sources that see the point.
    best = smallest(cost, keep)  # [keep, D, HW]
    finite = torch.isfinite(best)
    agg = torch.where(finite, best, torch.zeros_like(best)).sum(0) / finite.sum(0).clamp_min(1)
    return torch.where(finite[0], agg, torch.ones_like(agg))  # unseen = worst


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
    frames, K, world_T_cam = frames.float(), K.float(), world_T_cam.float()
    device = frames.device
    configured = config.inverse_depths()
    if config.adaptive_near:
        config = dataclasses.replace(config, near=window_near(frames, K, world_T_cam, reference_index, config),
                                     adaptive_near=False)
    inv = config.inverse_depths(device)  # [D]
    # One plane step in steps of the configured planes: observability and spread keep their meaning when the
    # planes start farther (a finer step moves a point less, on the same baseline).
    step_scale = float((inv[0] - inv[1]) / (configured[0] - configured[1]))
    depths = (1.0 / inv)[:, None, None]  # [D, 1, 1]
    d = inv.numel()
    count = _in_image_count(height, width, config.box, device)  # [1, 1, H, W]
    results = []
    for r, sources, directions, offsets in _references(K, world_T_cam, reference_index, height, width, config):
        if not sources:  # a single-frame window: nothing to compare with
            results.append(_unobservable(height, width, device))
            continue
        keep = config.sources_kept(len(sources))
        agg = _aggregated_cost(frames[r], frames[sources], directions, offsets, depths.view(-1), count, keep,
                               config.box).reshape(d, height, width)  # [D, H, W]
        winner = agg.min(0).indices  # [H, W]; argmin's first minimum, 4x faster over a leading dim on a CPU
        # How far one hypothesis step moves the point at the winner, in the source where it moves most.
        step = winner.reshape(-1).clamp(max=d - 2)
        plane_depth = depths.view(-1)  # [D]
        near, _ = _source_uv(plane_depth[step][None, :, None], directions, offsets[:, None])  # [S, HW, 2]
        far, _ = _source_uv(plane_depth[step + 1][None, :, None], directions, offsets[:, None])
        local_step = pixel_length(far - near).nan_to_num(0.0).amax(0).clamp_min(0.0)  # [HW]
        results.append(_pick(agg, winner, inv, local_step.reshape(height, width) / step_scale, config, step_scale))
    result = SweepResult(*(torch.stack(parts) for parts in zip(*results)))
    return far_end_prior(result, config) if config.far_end_prior else result


def window_near(frames: Tensor, K: Tensor, world_T_cam: Tensor, reference_index: Tensor | list[int],
                config: SweepConfig = SweepConfig()) -> float:
    """The nearest hypothesis worth sweeping in this window: the `near_quantile` of a half-resolution probe
    sweep's confident depths over all references, divided by `near_margin`, within [near, far / 2]; `near`
    where the probe resolves too little (a pan, a still camera, a single frame). Inputs as plane_sweep's."""
    height, width = frames.shape[-2:]
    if frames.shape[0] < 2 or min(height, width) < 8:
        return config.near
    small = F.avg_pool2d(frames.float(), 2)
    small_K = scale_intrinsics(K.float(), small.shape[-1] / width, small.shape[-2] / height)
    probe = dataclasses.replace(config, num_planes=config.probe_planes, adaptive_near=False, far_end_prior=False)
    result = plane_sweep(small, small_K, world_T_cam, reference_index, probe)
    resolved = (result.confidence > config.probe_confidence) & ~at_far_end(result.depth, probe)
    if int(resolved.sum()) < max(1, config.far_end_min_pixels // 4):
        return config.near
    nearest = float(torch.quantile(result.depth[resolved].float(), config.near_quantile))
    ratio = max(1.0, nearest / config.near_margin / config.near)
    # Snapped down to eighths of an octave above `near`: the same window posed through another chain of float
    # transforms (an odometry extrinsic, say) keeps the same planes, so its depth does not jump by a plane.
    snapped = config.near * 2.0 ** (math.floor(8.0 * math.log2(ratio)) / 8.0)
    return min(snapped, config.far / 2.0)


def _homogeneous_pixels(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """[HW, 3] pixel centres (u, v, 1), row-major: what the reference rays are made from."""
    ones = torch.ones(height, width, 1, device=device)
    return torch.cat([pixel_centers(height, width, device=device), ones], dim=-1).reshape(-1, 3)


def _in_image_count(height: int, width: int, box: int, device: torch.device | str | None = None) -> Tensor:
    """[1, 1, H, W] how many pixels of each box x box window lie inside the image (_box_mean's divisor)."""
    return _box_mean(torch.ones(1, 1, height, width, device=device), box, torch.ones((), device=device))


def _source_homographies(pixels: Tensor, K: Tensor, world_T_cam: Tensor, cam_T_world: Tensor, reference: int,
                         sources: list[int]) -> tuple[Tensor, Tensor]:
    """_source_uv's per-pixel vectors of one reference frame: pixels [HW, 3] (homogeneous centres), K [T, 3, 3],
    world_T_cam and its inverse [T, 4, 4] -> directions [S, HW, 3], offsets [S, 3]."""
    rays = pixels @ torch.linalg.inv(K[reference]).t()  # [HW, 3] reference-camera rays with z = 1
    s_T_r = cam_T_world[sources] @ world_T_cam[reference]  # [S, 4, 4]
    directions = rays @ (K[sources] @ s_T_r[:, :3, :3]).transpose(-1, -2)  # [S, HW, 3]
    offsets = (K[sources] @ s_T_r[:, :3, 3:])[..., 0]  # [S, 3]
    return directions, offsets


def _references(K: Tensor, world_T_cam: Tensor, reference_index: Tensor | list[int], height: int, width: int,
                config: SweepConfig) -> Iterator[tuple[int, list[int], Tensor | None, Tensor | None]]:
    """Each reference frame with its sources and their homography vectors (_source_homographies): the setup
    that plane_sweep and photometric_cost share. K [T, 3, 3], world_T_cam [T, 4, 4] (float32). A window of
    one frame has no sources: (r, [], None, None)."""
    t = K.shape[0]
    pixels = _homogeneous_pixels(height, width, K.device)
    cam_T_world = torch.linalg.inv(world_T_cam)
    for r in _reference_list(reference_index):
        span = source_span(viewing_angles(world_T_cam, r, config.source_angle_depth), r, config.max_source_angle_deg,
                           config.max_sources)
        sources = select_sources(t, r, config.max_sources, span) if t > 1 else []
        if not sources:
            yield r, [], None, None
            continue
        yield r, sources, *_source_homographies(pixels, K, world_T_cam, cam_T_world, r, sources)


def _reference_list(reference_index: Tensor | list[int]) -> list[int]:
    """Reference frame indices as plain ints (a tensor or a list of them)."""
    return [int(r) for r in (reference_index.tolist() if isinstance(reference_index, Tensor) else reference_index)]


def photometric_cost(frames: Tensor, K: Tensor, world_T_cam: Tensor, reference_index: Tensor | list[int],
                     depth: Tensor, config: SweepConfig = SweepConfig()) -> Tensor:
    """The sweep's matching cost of a given depth map: how well the window's frames agree with it.

    The same sources, box SAD and best-part aggregation as plane_sweep, at one depth per pixel instead of
    the planes, so a depth from elsewhere (the network's) is scored on the sweep's own scale. frames
    [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4], reference_index [R], depth [R, C, H, W] z-depth (C
    depth maps per reference, scored in one pass) -> [R, C, H, W] (1, the worst, where no source sees the
    point or the window has one frame).
    """
    height, width = frames.shape[-2:]
    references = len(_reference_list(reference_index))
    if depth.dim() != 4 or depth.shape[0] != references or depth.shape[-2:] != (height, width):
        raise ValueError(f"photometric_cost: expected depth [R={references}, C, {height}, {width}], got "
                         f"{tuple(depth.shape)}")
    maps = depth.shape[1]
    frames, K, world_T_cam, device = frames.float(), K.float(), world_T_cam.float(), frames.device
    count = _in_image_count(height, width, config.box, device)
    costs = []
    views = _references(K, world_T_cam, reference_index, height, width, config)
    for i, (r, sources, directions, offsets) in enumerate(views):
        if not sources:
            costs.append(torch.ones(maps, height, width, device=device))
            continue
        cost = _aggregated_cost_torch(frames[r], frames[sources], directions, offsets, depth[i].float().reshape(maps, -1),
                                      count, config.sources_kept(len(sources)), config.box)  # [C, HW]
        costs.append(cost.reshape(maps, height, width))
    return torch.stack(costs)


def at_far_end(depth: Tensor, config: SweepConfig) -> Tensor:
    """The pixels won by the farthest plane (the sub-plane refinement never moves a winner off the last plane)."""
    return depth >= config.far * (1.0 - 1e-4)


def far_end_prior(result: SweepResult, config: SweepConfig) -> SweepResult:
    """Pixels whose winner is the farthest plane get the median depth of the confident pixels of all
    references (the window's keyframes), when there are `far_end_min_pixels` of them.

    The farthest plane wins wherever nothing in the window resolves parallax: a point beyond what the
    baseline resolves, but as often a textureless or repeated surface whose far-plane warps land on the
    same colour, or an object moving along with the camera. On 32 training windows (64 px, `dynamic`) 19 %
    of the keyframe pixels won there; where the ground truth is within 10 units they were mostly nearer
    than 5, and pixels over-estimated by more than 2x at the far end gave a quarter of the mean AbsRel.
    The median of what the sweep did resolve is a far smaller error for them than `far`. The confidence
    is left as it was (the far-end winners rarely have any), so consumers still see them as guesses.
    """
    far_end = at_far_end(result.depth, config)
    confident = result.confidence > config.far_end_confidence
    if int(confident.sum()) < config.far_end_min_pixels or not bool(far_end.any()):
        return result
    prior = result.depth[confident].median()
    return dataclasses.replace(result, depth=torch.where(far_end, prior, result.depth))


def _plane_median(agg: Tensor) -> Tensor:
    """Each pixel's lower median over the planes: agg [D, H, W] -> [H, W], torch.median's value (C on a CPU,
    where torch's reduction over the leading dim took 2 ms of a 64 px keyframe's 3 ms pick)."""
    return _plane_order_statistic(agg, (agg.shape[0] + 1) // 2)


def _plane_order_statistic(agg: Tensor, k: int) -> Tensor:
    """Each pixel's k-th smallest cost over the planes (1-based, torch.kthvalue's): agg [D, H, W] -> [H, W]."""
    d = agg.shape[0]
    if not cpu_kernels.runs_on(agg):
        return agg.median(dim=0).values if k == (d + 1) // 2 else agg.kthvalue(k, dim=0).values
    out = torch.empty(agg.shape[1:])
    cpu_kernels.KERNELS.plane_median(agg.detach().contiguous().float().numpy(), d, out.numel(), out.numpy(),
                                     torch.get_num_threads(), k - 1)
    return out


def _pick(agg: Tensor, best: Tensor, inv: Tensor, local_step: Tensor,
          config: SweepConfig, step_scale: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Winner `best` [H, W] (argmin) with sub-plane refinement, confidence and spread from one cost volume [D, H, W].

    local_step [H, W]: how far (px, best source) one step of the configured planes at the winner moves the
    point; step_scale: this volume's plane step in those steps (the spread is reported in them).
    """
    d = agg.shape[0]
    lo, hi = (best - 1).clamp(0, d - 1), (best + 1).clamp(0, d - 1)
    c0, cm, cp = agg.gather(0, best[None])[0], agg.gather(0, lo[None])[0], agg.gather(0, hi[None])[0]
    curvature = cm + cp - 2.0 * c0
    shift = torch.where(curvature > 1e-9, 0.5 * (cm - cp) / curvature.clamp_min(1e-9), torch.zeros_like(c0))
    shift = torch.where((best > 0) & (best < d - 1), shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    step = inv[1] - inv[0]
    inv_best = inv[best] + shift * step
    depth = 1.0 / inv_best.clamp_min(1.0 / (config.far * 4.0))
    # Softmin over the curve at a temperature relative to its median: one sharp valley -> small spread.
    # With the planes starting at the window's near (step_scale < 1) the configured planes in front of them
    # were not swept; counted as costlier than every swept one, their median is this higher order statistic.
    if step_scale >= 1.0:
        median = _plane_median(agg)
    else:
        median = _plane_order_statistic(agg, min(d, math.ceil(((d + 1) // 2) / step_scale)))
    weights = torch.softmax(-(agg - c0) / (0.1 * median.clamp_min(1e-3)), dim=0)
    index = torch.arange(d, device=agg.device, dtype=agg.dtype)[:, None, None]
    mean_index = (weights * index).sum(0)
    spread = ((weights * (index - mean_index).square()).sum(0)).sqrt()
    # Distinctness (how far the minimum sits below the curve's median) and a low residual cost are what
    # predicted a good depth on held-out synthetic windows (median AbsRel 0.02 in the top two fifths of
    # each, 0.4 in the bottom two); the spread added nothing beyond them.
    distinct = ((median - c0) / median.clamp_min(1e-3)).clamp(0, 1)
    # Observability at the winner: a plane step must move the point visibly in some source, else a pan
    # or a still camera (no baseline) picks a depth by chance.
    confidence = distinct * torch.exp(-c0 / 0.03) * (local_step >= config.min_step_px).float()
    return depth[None], confidence[None], c0[None], (spread * step_scale)[None]


def _unobservable(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    ones = torch.ones(1, height, width, device=device)
    return ones, torch.zeros_like(ones), ones, ones * 100.0
