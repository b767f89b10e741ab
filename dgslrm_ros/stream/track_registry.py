"""Streaming 3D tracks with ids that survive from one window to the next.

Every window proposes candidate tracks: the trajectories of the Gaussians born at a grid of seed
pixels of its keyframes (`seed_tracks`). The registry turns candidates into output tracks:

1. **Chaining** (paper.md, long videos): consecutive windows share instants. A candidate continues
   a track of the previous window when, over the shared instants, the two trajectories stay within
   `match_factor x radius` of each other (RMS of the 3D distances) and, where both move, their
   displacements over the shared span point the same way (flow direction, cosine >= `min_cosine`).
   Pairs are taken greedily, best first, one-to-one.
2. **New surface**: an unmatched candidate becomes a new track (fresh id) only if, at its own seed
   instant, no track already kept lies within `dedupe_factor x radius`: the same surface is seeded at
   every keyframe, and only surface that no track covers yet deserves a new id. On a grid of spacing
   r no point of covered surface is farther than r / sqrt(2) from a seed, hence the default 0.75.
3. Tracks of the previous window with no match end (their ids are never reused).

`radius` is the metric spacing of the seed grid at the seed's depth (track_grid px x depth / fx), so
the gates scale with the scene instead of being fixed metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHARED_STAMP_RESOLUTION = 1e-6  # s: instants of two windows are the same frame when equal to this


@dataclass(frozen=True)
class TrackSet:
    """The tracks a window outputs."""

    track_ids: np.ndarray  # [M] uint32, stable across windows
    positions: np.ndarray  # [M, T, 3] float32 metric world frame, NaN where invalid
    visible: np.ndarray  # [M, T] float32 in [0, 1]
    candidate_index: np.ndarray  # [M] int64 index of the candidate each track came from
    continued: np.ndarray  # [M] bool: the id existed in the previous window


class TrackRegistry:
    """Associates the candidate tracks of consecutive windows; not thread-safe (worker thread only)."""

    def __init__(self, match_factor: float = 1.0, dedupe_factor: float = 0.75, min_cosine: float = 0.5,
                 motion_factor: float = 0.5, min_radius: float = 1e-4) -> None:
        self.match_factor = match_factor
        self.dedupe_factor = dedupe_factor
        self.min_cosine = min_cosine
        self.motion_factor = motion_factor  # displacement below motion_factor x radius counts as "static"
        self.min_radius = min_radius
        self._next_id = 0
        self._prev_keys: np.ndarray | None = None  # [T] int64 microsecond keys
        self._prev_positions: np.ndarray | None = None  # [P, T, 3]
        self._prev_ids: np.ndarray | None = None  # [P]
        self.ended_total = 0

    def reset(self) -> None:
        """Forget the previous window (new sequence): every next track gets a new id."""
        self._prev_keys = self._prev_positions = self._prev_ids = None

    @property
    def active(self) -> int:
        return 0 if self._prev_ids is None else int(self._prev_ids.size)

    def _new_ids(self, count: int) -> np.ndarray:
        ids = (np.arange(count, dtype=np.int64) + self._next_id) % (1 << 32)
        self._next_id += count
        return ids.astype(np.uint32)

    def update(self, stamps: np.ndarray, positions: np.ndarray, visible: np.ndarray, seed_frame: np.ndarray,
               radius: np.ndarray) -> TrackSet:
        """Candidates of one window -> its output tracks.

        stamps [T] float64 s; positions [S, T, 3] metric (NaN = invalid); visible [S, T] in [0, 1];
        seed_frame [S] window frame where each candidate was seeded; radius [S] metric seed spacing.
        """
        stamps = np.asarray(stamps, dtype=np.float64)
        positions = np.asarray(positions, dtype=np.float64)
        num, frames = positions.shape[:2] if positions.ndim == 3 else (-1, -1)
        if positions.ndim != 3 or positions.shape[2] != 3 or stamps.shape != (frames,):
            raise ValueError(f"TrackRegistry.update: expected positions [S, T, 3] and stamps [T], got "
                             f"{positions.shape} and {stamps.shape}")
        visible = np.asarray(visible, dtype=np.float32)
        seed_frame = np.asarray(seed_frame, dtype=np.int64)
        radius = np.maximum(np.nan_to_num(np.asarray(radius, dtype=np.float64), nan=self.min_radius), self.min_radius)
        if visible.shape != (num, frames) or seed_frame.shape != (num,) or radius.shape != (num,):
            raise ValueError(f"TrackRegistry.update: expected visible [S, T], seed_frame [S], radius [S] with "
                             f"S={num}, T={frames}; got {visible.shape}, {seed_frame.shape}, {radius.shape}")
        keys = np.round(stamps / SHARED_STAMP_RESOLUTION).astype(np.int64)

        ids = np.full(num, -1, dtype=np.int64)
        if self._prev_keys is not None and num and self._prev_ids.size:
            shared, new_at, prev_at = np.intersect1d(keys, self._prev_keys, return_indices=True)
            if shared.size:
                self._match(ids, positions[:, new_at], self._prev_positions[:, prev_at], radius)
        matched = ids >= 0
        previous = 0 if self._prev_ids is None else self._prev_ids.size
        self.ended_total += previous - int(matched.sum())

        keep = matched.copy()
        order = np.argsort(seed_frame, kind="stable")
        for frame in np.unique(seed_frame):
            group = order[seed_frame[order] == frame]
            group = group[~keep[group]]
            group = group[np.isfinite(positions[group, frame]).all(axis=-1)]
            if group.size == 0:
                continue
            kept = np.flatnonzero(keep)
            if kept.size:
                here = positions[kept, frame]  # [K, 3]
                here = here[np.isfinite(here).all(axis=-1)]
            else:
                here = np.zeros((0, 3))
            if here.shape[0]:
                nearest = _nearest_distance(positions[group, frame], here)
                group = group[nearest > self.dedupe_factor * radius[group]]
            keep[group] = True
        new = keep & ~matched
        new_index = np.flatnonzero(new)
        ids[new_index] = self._new_ids(new_index.size)
        out_index = np.flatnonzero(keep)

        self._prev_keys = keys
        self._prev_positions = positions[out_index]
        self._prev_ids = ids[out_index].astype(np.uint32)
        return TrackSet(
            track_ids=ids[out_index].astype(np.uint32),
            positions=positions[out_index].astype(np.float32),
            visible=visible[out_index],
            candidate_index=out_index,
            continued=matched[out_index],
        )

    def _match(self, ids: np.ndarray, new: np.ndarray, old: np.ndarray, radius: np.ndarray) -> None:
        """Fill ids[i] with the id of the previous track candidate i continues (greedy, one-to-one).

        new [S, n, 3] and old [P, n, 3]: both windows' positions at the n shared instants; the cost is
        the RMS of the n distances. Candidate pairs come from a 3D k-d tree over the trajectories'
        centroids: ||c_i - c_j|| <= mean distance <= RMS, so no pair under the gate is missed and no
        S x P matrix is built (S reaches 10^5 at track_grid 1).
        """
        from scipy.spatial import cKDTree

        n = new.shape[1]
        a = _finite_or_far(new.reshape(new.shape[0], -1)).reshape(new.shape)
        b = _finite_or_far(old.reshape(old.shape[0], -1)).reshape(old.shape)
        gate = self.match_factor * radius  # [S]
        pairs = cKDTree(a.mean(axis=1)).sparse_distance_matrix(cKDTree(b.mean(axis=1)), max_distance=float(gate.max()),
                                                               output_type="ndarray")
        rows, cols = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        cost = np.sqrt(np.square(a[rows] - b[cols]).sum(axis=-1).mean(axis=-1))  # [Q] RMS distance
        ok = cost <= gate[rows]
        if n >= 2 and ok.any():
            flow_new = _displacement(new)[rows]  # [Q, 3]
            flow_old = _displacement(old)[cols]
            len_new = np.linalg.norm(flow_new, axis=-1)
            len_old = np.linalg.norm(flow_old, axis=-1)
            threshold = self.motion_factor * radius[rows]
            # Direction is only meaningful where both move; a static/moving pair is already judged
            # by the position gate (their distance grows with the displacement).
            both = (len_new > threshold) & (len_old > threshold)
            with np.errstate(invalid="ignore", divide="ignore"):
                cosine = np.einsum("ij,ij->i", flow_new, flow_old) / (len_new * len_old)
            ok &= ~(both & ~(cosine >= self.min_cosine))
        rows, cols, cost = rows[ok], cols[ok], cost[ok]
        order = np.argsort(cost, kind="stable")
        used_new, used_old = set(), set()
        for r, c in zip(rows[order].tolist(), cols[order].tolist()):
            if r in used_new or c in used_old:
                continue
            used_new.add(r)
            used_old.add(c)
            ids[r] = int(self._prev_ids[c])


def _finite_or_far(points: np.ndarray) -> np.ndarray:
    """Rows with a NaN/inf are moved far away, so no k-d tree query ever pairs them."""
    out = np.array(points, dtype=np.float64)
    bad = ~np.isfinite(out).all(axis=1)
    out[bad] = 1e12 + np.arange(int(bad.sum()))[:, None] * 1e9
    return out


def _nearest_distance(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """[S, 3] -> [S] distance to the nearest of reference [R, 3] (k-d tree: no S x R matrix)."""
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(reference).query(points, k=1)
    return np.asarray(distance, dtype=np.float64)


def _displacement(tracks: np.ndarray) -> np.ndarray:
    """[S, n, 3] -> [S, 3] displacement from the first to the last valid sample (0 if < 2 valid)."""
    valid = np.isfinite(tracks).all(axis=-1)  # [S, n]
    n = tracks.shape[1]
    first = np.argmax(valid, axis=1)
    last = n - 1 - np.argmax(valid[:, ::-1], axis=1)
    rows = np.arange(tracks.shape[0])
    disp = tracks[rows, last] - tracks[rows, first]
    disp[~valid.any(axis=1)] = 0.0
    return np.nan_to_num(disp)


@dataclass(frozen=True)
class SeedCandidates:
    """Candidate tracks of one window, seeded on a pixel grid of each keyframe."""

    positions: np.ndarray  # [S, T, 3] float64 (frame of the Gaussians given)
    visible: np.ndarray  # [S, T] float32: inside the input camera's image and in front of it
    seed_frame: np.ndarray  # [S] int64 window frame of the seeding keyframe
    radius: np.ndarray  # [S] float64 seed spacing at the seed's depth (same units as positions)
    gaussian_index: np.ndarray  # [S] int64 index of the seed's Gaussian


OCCLUDER_OPACITY = 0.3  # Gaussians at least this opaque hide what is behind them (visibility z-buffer)
OCCLUSION_MARGIN = 0.05  # a sample up to 5 % behind the nearest surface at its pixel still counts as seen


def seed_tracks(gaussians, image_hw: tuple[int, int], keyframe_frames, K, world_T_cam, grid: int,
                min_opacity: float = 0.0, allowed=None) -> SeedCandidates:
    """Trajectories of the Gaussians born at every `grid`-th pixel of every keyframe.

    gaussians: DeformableGaussians ordered (keyframe, row, column), one per keyframe pixel, as
    `GaussianPrediction.gaussians(b)` returns them (before pruning); K [T, 3, 3] and world_T_cam
    [T, 4, 4] (torch) are the window's input cameras in the gaussians' frame. Seeds on Gaussians with
    opacity below `min_opacity` are skipped: they are not surface; so are the keyframe pixels where
    `allowed` (bool [Kf, H, W], torch or numpy; geometry.track_trust.trusted_seed_pixels) is False.

    `visible` [S, T] is 1 where a sample projects inside input camera n and is not hidden: every
    opaque Gaussian, deformed to frame n, is splatted as a point into a per-pixel z-buffer of camera n
    (our choice: a point z-buffer, not a full render per frame, costs one scatter per frame).
    """
    import torch

    from dgslrm_ros.core.cameras import project_points

    height, width = int(image_hw[0]), int(image_hw[1])
    keyframe_frames = [int(k) for k in keyframe_frames]
    expected = len(keyframe_frames) * height * width
    if len(gaussians) != expected:
        raise ValueError(f"seed_tracks: expected {len(keyframe_frames)} keyframes x {height} x {width} = {expected} "
                         f"Gaussians ordered (keyframe, row, column), got {len(gaussians)}")
    rows = np.arange(grid // 2, height, grid)
    cols = np.arange(grid // 2, width, grid)
    pixel = (rows[:, None] * width + cols[None, :]).reshape(-1)  # [G]
    index = (np.arange(len(keyframe_frames))[:, None] * height * width + pixel[None, :]).reshape(-1)
    seed_frame = np.repeat(np.asarray(keyframe_frames, dtype=np.int64), pixel.size)
    with torch.no_grad():
        idx = torch.as_tensor(index, device=gaussians.device)
        opaque = (gaussians.opacities[idx] >= min_opacity).cpu().numpy()
        if allowed is not None:
            opaque &= np.asarray(torch.as_tensor(allowed).reshape(-1).cpu())[index]
        index, seed_frame = index[opaque], seed_frame[opaque]
        idx = idx[torch.as_tensor(opaque, device=gaussians.device)]
        traj = (gaussians.means[idx][:, None] + gaussians.offsets[idx]).double()  # [S, T, 3]
        K = K.to(device=traj.device, dtype=torch.float64)
        poses = world_T_cam.to(device=traj.device, dtype=torch.float64)
        uv, depth = project_points(traj.transpose(0, 1), K, poses)  # [T, S, 2], [T, S]
        inside = (depth > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
        inside &= _unoccluded(gaussians, uv, depth, inside, K, poses, height, width)
        seed_t = torch.as_tensor(seed_frame, device=traj.device)
        seed_depth = depth.transpose(0, 1)[torch.arange(len(index), device=traj.device), seed_t]  # [S]
        fx = K[seed_t, 0, 0]
        radius = (grid * seed_depth.abs() / fx).cpu().numpy()
        positions = traj.cpu().numpy()
        visible = inside.transpose(0, 1).float().cpu().numpy()
    positions[~np.isfinite(positions).all(axis=-1)] = np.nan
    return SeedCandidates(positions=positions, visible=visible.astype(np.float32), seed_frame=seed_frame,
                          radius=radius, gaussian_index=index.astype(np.int64))


def _unoccluded(gaussians, uv, depth, inside, K, poses, height: int, width: int):
    """[T, S] bool: each sample is no more than OCCLUSION_MARGIN behind the nearest opaque surface.

    The occluders are projected as core.cameras.project_points does, on [3, N] planes ([3, 3] @ [3, N]
    products: 6x cheaper on a CPU than [N, 3] @ [3, 3]); points off the image go to a spare z-buffer
    slot instead of being compacted out (test/stream/test_track_registry.py holds it to the plain
    computation).
    """
    import torch

    from dgslrm_ros.core.cameras import safe_divisor

    occluders = gaussians.opacities >= OCCLUDER_OPACITY
    everyone = bool(occluders.all())  # the usual case: no copy to select them
    means, offsets = (gaussians.means, gaussians.offsets) if everyone else \
        (gaussians.means[occluders], gaussians.offsets[occluders])  # [N, 3], [N, T, 3]
    means = means.t().to(depth.dtype, memory_format=torch.contiguous_format)  # [3, N]
    offsets = torch.empty(offsets.shape[1], 3, len(means[0]), dtype=depth.dtype, device=depth.device).copy_(
        offsets.permute(1, 2, 0))  # [T, 3, N]
    out = torch.ones_like(inside)
    spare = height * width  # z-buffer slot of the points that land nowhere
    relative, cam, pix = torch.empty_like(means), torch.empty_like(means), torch.empty_like(means)  # [3, N]
    for n in range(depth.shape[0]):
        rotation, translation = poses[n, :3, :3], poses[n, :3, 3]
        torch.add(means, offsets[n], out=relative).sub_(translation[:, None])
        torch.mm(rotation.t(), relative, out=cam)
        occ_depth = cam[2]
        safe = safe_divisor(occ_depth)
        torch.mm(K[n], cam, out=pix)
        u, v = pix[0] / safe, pix[1] / safe
        ok = (occ_depth > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        pixel = torch.where(ok, v.long() * width + u.long(), spare)
        zbuffer = torch.full((spare + 1,), float("inf"), dtype=depth.dtype, device=depth.device)
        zbuffer.scatter_reduce_(0, pixel, occ_depth, reduce="amin")
        seen = inside[n]
        sample_pixel = uv[n, seen, 1].long() * width + uv[n, seen, 0].long()
        front = zbuffer[sample_pixel]
        out[n, seen] = depth[n, seen] <= front * (1.0 + OCCLUSION_MARGIN) + 1e-9
    return out
