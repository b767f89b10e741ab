"""Streaming tracks: seeds from hand-made DeformableGaussians with known motion, ids across windows.

The Gaussians are built by hand (not by the model), so association is checked independently of
model quality: a static background plane and a patch moving at a known velocity.
"""
import numpy as np
import pytest
import torch

from dgslrm_ros.convert.tracks import track_speeds
from dgslrm_ros.core.cameras import camera_rays
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.stream.track_registry import TrackRegistry, seed_tracks

H = W = 16
GRID = 4
FX = 16.0
T = 8
STRIDE = 4
KEYFRAMES = [0, 4]
DT = 0.1
VELOCITY = np.array([0.5, 0.0, 0.0])  # m/s of the moving patch (columns < 8, rows < 8)
K = torch.tensor([[FX, 0.0, W / 2], [0.0, FX, H / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
POSE = torch.eye(4, dtype=torch.float64)  # static camera at the origin looking down +z


def _moving_mask() -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    return ((rows < 8) & (cols < 8)).reshape(-1)  # [H*W]


def make_window(start_frame: int, depth_of=lambda frame: np.full(H * W, 2.0),
                motion: bool = True) -> tuple[DeformableGaussians, np.ndarray]:
    """One window of T frames starting at absolute frame `start_frame`: one Gaussian per keyframe pixel,
    placed on the surface seen there at the keyframe's instant, moving with that surface."""
    stamps = 1000.0 + DT * (start_frame + np.arange(T))
    _, dirs = camera_rays(K, POSE, H, W)  # [H, W, 3], camera z = 1
    dirs = dirs.reshape(-1, 3).numpy()
    moving = _moving_mask() & motion
    means, offsets = [], []
    for kf in KEYFRAMES:
        depth = depth_of(start_frame + kf)
        means.append(dirs * depth[:, None])
        dt = (np.arange(T) - kf) * DT  # [T] relative to the keyframe instant
        off = np.zeros((H * W, T, 3))
        off[moving] = dt[None, :, None] * VELOCITY[None, None, :]
        offsets.append(off)
    n = len(KEYFRAMES) * H * W
    g = DeformableGaussians(
        means=torch.tensor(np.concatenate(means), dtype=torch.float32),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        scales=torch.full((n, 3), 0.05),
        opacities=torch.full((n,), 0.9),
        colors=torch.full((n, 3), 0.5),
        offsets=torch.tensor(np.concatenate(offsets), dtype=torch.float32),
        timestamps=torch.tensor(stamps - stamps[0], dtype=torch.float32),
        keyframe_index=torch.tensor(np.repeat(KEYFRAMES, H * W), dtype=torch.int64),
    )
    return g, stamps


def run_window(registry: TrackRegistry, g: DeformableGaussians, stamps: np.ndarray):
    cams_K = K.float().expand(T, 3, 3)
    cams = POSE.float().expand(T, 4, 4)
    cand = seed_tracks(g, (H, W), KEYFRAMES, cams_K, cams, GRID, min_opacity=0.05)
    return cand, registry.update(stamps, cand.positions, cand.visible, cand.seed_frame, cand.radius)


def test_seed_tracks_follow_the_predicted_deformation():
    g, stamps = make_window(0)
    cand, _ = run_window(TrackRegistry(), g, stamps)
    per_keyframe = (H // GRID) * (W // GRID)
    assert cand.positions.shape == (len(KEYFRAMES) * per_keyframe, T, 3)
    # a seed's track is its Gaussian's position at every frame
    i = 5
    expected = (g.means[cand.gaussian_index[i]][None] + g.offsets[cand.gaussian_index[i]]).numpy()
    np.testing.assert_allclose(cand.positions[i], expected, atol=1e-6)
    # seed pixels sit on the grid centres: row 2, col 2 of keyframe 0 is Gaussian 2 * W + 2
    assert cand.gaussian_index[0] == 2 * W + 2 and cand.seed_frame[0] == 0
    assert cand.seed_frame[per_keyframe] == 4
    # radius = grid spacing at depth 2 m: 4 px * 2 m / 16 px
    np.testing.assert_allclose(cand.radius, GRID * 2.0 / FX, rtol=1e-5)
    assert cand.visible.min() >= 0 and cand.visible.max() == 1.0


def test_transparent_gaussians_seed_no_tracks():
    g, stamps = make_window(0)
    opacities = g.opacities.clone()
    opacities[: H * W] = 0.01  # keyframe 0 entirely transparent
    g = DeformableGaussians(**{**g.__dict__, "opacities": opacities})
    cand, _ = run_window(TrackRegistry(), g, stamps)
    assert set(cand.seed_frame.tolist()) == {4}


def test_ids_stable_across_overlapping_windows_and_static_speed_zero():
    registry = TrackRegistry()
    g_a, stamps_a = make_window(0)
    _, tracks_a = run_window(registry, g_a, stamps_a)
    # keyframe 4's seeds lie on surface the keyframe-0 tracks already cover: no duplicate ids
    assert len(tracks_a.track_ids) == (H // GRID) * (W // GRID)
    assert len(set(tracks_a.track_ids.tolist())) == len(tracks_a.track_ids)
    assert not tracks_a.continued.any()

    g_b, stamps_b = make_window(STRIDE)
    _, tracks_b = run_window(registry, g_b, stamps_b)
    ids_a, ids_b = set(tracks_a.track_ids.tolist()), set(tracks_b.track_ids.tolist())
    assert ids_a <= ids_b  # every track continues with its id
    # new ids only where new surface entered the view: the moving patch brings surface in from the left
    new = np.isin(tracks_b.track_ids, list(ids_b - ids_a))
    assert new.sum() <= 2 and (tracks_b.positions[new, -1, :2] < 0).all()
    # the same id describes the same place at the shared instants (frames 4..7 of A = 0..3 of B)
    a_by_id = dict(zip(tracks_a.track_ids.tolist(), tracks_a.positions))
    for track_id, pos_b in zip(tracks_b.track_ids[~new].tolist(), tracks_b.positions[~new]):
        gap = np.linalg.norm(a_by_id[track_id][STRIDE:] - pos_b[: T - STRIDE], axis=-1).mean()
        assert gap <= GRID * 2.0 / FX  # within one seed spacing
    # speeds: static surface exactly 0, the moving patch at its known 0.5 m/s
    speeds = track_speeds(tracks_b.positions, stamps_b - stamps_b[0])
    start = tracks_b.positions[:, 0]
    moving = (start[:, 0] < 0.0 + 1e-6) & (start[:, 1] < 0.0 + 1e-6)  # upper-left quadrant of the image
    assert moving.any() and (~moving).any()
    np.testing.assert_allclose(speeds[~moving], 0.0, atol=1e-5)
    np.testing.assert_allclose(speeds[moving], 0.5, rtol=1e-3)


def test_new_surface_gets_new_ids_and_unmatched_tracks_end():
    registry = TrackRegistry()
    rows = np.repeat(np.arange(H), W)

    def scene(frame):  # a near object (1 m) on the bottom rows before frame 4, another on the top from 8
        depth = np.full(H * W, 2.0)
        if frame < 4:
            depth[rows >= 12] = 1.0
        if frame >= 8:
            depth[rows < 4] = 1.0
        return depth

    _, tracks_a = run_window(registry, *make_window(0, scene, motion=False))
    # A's keyframe 4 sees background where keyframe 0 saw the object: new surface, new ids (one seed row)
    assert len(tracks_a.track_ids) == (H // GRID) * (W // GRID) + W // GRID
    _, tracks_b = run_window(registry, *make_window(STRIDE, scene, motion=False))
    ids_a, ids_b = set(tracks_a.track_ids.tolist()), set(tracks_b.track_ids.tolist())
    # B never sees the bottom object: A's tracks on it end
    object_a = tracks_a.positions[:, 0, 2] < 1.5
    ended = set(tracks_a.track_ids[object_a].tolist())
    assert len(ended) == W // GRID and not (ended & ids_b)
    assert ids_a - ended <= ids_b
    # the top object appears at B's keyframe 8: new ids, never reused ones
    new = ids_b - ids_a
    assert len(new) == W // GRID
    assert min(new) > max(ids_a)
    new_rows = np.isin(tracks_b.track_ids, list(new))
    np.testing.assert_allclose(tracks_b.positions[new_rows, 4, 2], 1.0, atol=1e-5)
    assert registry.ended_total == len(ended)


def test_flow_direction_separates_crossing_points():
    """Two candidates close to an old track over the shared instants; the one moving the same way wins,
    the one moving against it is refused even though it is slightly closer on average."""
    registry = TrackRegistry()
    stamps_a = np.arange(8) * 0.1
    old = np.zeros((1, 8, 3))
    old[0, :, 0] = np.arange(8) * 0.1  # +x at 1 m/s
    registry.update(stamps_a, old, np.ones((1, 8)), np.zeros(1, np.int64), np.array([0.5]))
    stamps_b = stamps_a + 0.4
    same_dir = np.zeros((1, 8, 3))
    same_dir[0, :, 0] = 0.4 + np.arange(8) * 0.1 + 0.12  # same motion, offset 0.12 m
    against = np.zeros((1, 8, 3))
    against[0, :4, 0] = 0.75 - np.arange(4) * 0.1  # crosses the old track going -x
    against[0, 4:, 0] = against[0, 3, 0] - (np.arange(4) + 1) * 0.1
    candidates = np.concatenate([against, same_dir])
    out = registry.update(stamps_b, candidates, np.ones((2, 8)), np.zeros(2, np.int64), np.array([0.5, 0.5]))
    winner = out.candidate_index[out.continued]
    assert winner.tolist() == [1]
    assert out.track_ids[out.continued][0] == 0


def test_reset_and_disjoint_windows_start_new_ids():
    registry = TrackRegistry()
    g, stamps = make_window(0)
    _, first = run_window(registry, g, stamps)
    _, later = run_window(registry, g, stamps + 100.0)  # no shared instants
    assert not (set(first.track_ids.tolist()) & set(later.track_ids.tolist()))
    registry.reset()
    _, after_reset = run_window(registry, g, stamps + 100.0)
    assert not after_reset.continued.any()


def test_update_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"positions \[S, T, 3\]"):
        TrackRegistry().update(np.zeros(3), np.zeros((2, 4, 3)), np.zeros((2, 4)), np.zeros(2), np.zeros(2))


def test_samples_behind_a_passing_object_are_not_visible():
    """A near band (1 m) slides right by 2 px per frame over a static background (2 m): a background
    seed at column 2 is hidden while the band covers it (frames 0 and 1), seen afterwards."""
    stamps = np.arange(T) * DT
    _, dirs = camera_rays(K, POSE, H, W)
    dirs = dirs.reshape(-1, 3).numpy()
    cols = np.tile(np.arange(W), H)
    band_shift = np.array([2.0 / FX, 0.0, 0.0])  # metres per frame at 1 m depth: 2 px
    means, offsets = [], []
    for kf in KEYFRAMES:
        in_band = (cols >= 2 * kf) & (cols < 2 * kf + 4)
        depth = np.where(in_band, 1.0, 2.0)
        means.append(dirs * depth[:, None])
        off = np.zeros((H * W, T, 3))
        off[in_band] = (np.arange(T) - kf)[None, :, None] * band_shift[None, None, :]
        offsets.append(off)
    n = len(KEYFRAMES) * H * W
    g = DeformableGaussians(
        means=torch.tensor(np.concatenate(means), dtype=torch.float32),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        scales=torch.full((n, 3), 0.05), opacities=torch.full((n,), 0.9), colors=torch.full((n, 3), 0.5),
        offsets=torch.tensor(np.concatenate(offsets), dtype=torch.float32),
        timestamps=torch.tensor(stamps, dtype=torch.float32),
        keyframe_index=torch.tensor(np.repeat(KEYFRAMES, H * W), dtype=torch.int64),
    )
    cand = seed_tracks(g, (H, W), KEYFRAMES, K.float().expand(T, 3, 3), POSE.float().expand(T, 4, 4), GRID)
    per_keyframe = (H // GRID) * (W // GRID)
    # keyframe 4 (band at columns 8..11), seed at row 2, column 2: background
    seed = per_keyframe + 0
    assert cand.gaussian_index[seed] == H * W + 2 * W + 2
    np.testing.assert_array_equal(cand.visible[seed], [0, 0, 1, 1, 1, 1, 1, 1])
    # a seed on the band itself is visible while it moves, until it leaves the image (column 16 at frame 7)
    band_seed = per_keyframe + 2  # row 2, column 10 at frame 4: on the band
    np.testing.assert_array_equal(cand.visible[band_seed], [1, 1, 1, 1, 1, 1, 1, 0])
    # column 14: covered when the band reaches columns 12..15 (frames 6 and 7)
    np.testing.assert_array_equal(cand.visible[per_keyframe + 3], [1, 1, 1, 1, 1, 1, 0, 0])


def _reference_unoccluded(gaussians, uv, depth, inside, K, poses, height, width):
    """The z-buffer test as first written: project_points per frame, off-image points compacted out."""
    from dgslrm_ros.core.cameras import project_points
    from dgslrm_ros.stream.track_registry import OCCLUDER_OPACITY, OCCLUSION_MARGIN

    occluders = gaussians.opacities >= OCCLUDER_OPACITY
    means = gaussians.means[occluders].to(depth.dtype)
    offsets = gaussians.offsets[occluders].to(depth.dtype)
    out = torch.ones_like(inside)
    for n in range(depth.shape[0]):
        occ_uv, occ_depth = project_points(means + offsets[:, n], K[n], poses[n])
        ok = (occ_depth > 0) & (occ_uv[:, 0] >= 0) & (occ_uv[:, 0] < width) & (occ_uv[:, 1] >= 0) \
            & (occ_uv[:, 1] < height)
        pixel = occ_uv[ok, 1].long() * width + occ_uv[ok, 0].long()
        zbuffer = torch.full((height * width,), float("inf"), dtype=depth.dtype)
        zbuffer.scatter_reduce_(0, pixel, occ_depth[ok], reduce="amin")
        seen = inside[n]
        front = zbuffer[uv[n, seen, 1].long() * width + uv[n, seen, 0].long()]
        out[n, seen] = depth[n, seen] <= front * (1.0 + OCCLUSION_MARGIN) + 1e-9
    return out


def test_occlusion_zbuffer_matches_the_reference_computation():
    """Random depths and motions under a turning, advancing camera: points behind it, off the image,
    transparent ones, and many hidden samples; the planar z-buffer decides exactly as the plain one."""
    from dgslrm_ros.core.cameras import project_points
    from dgslrm_ros.stream.track_registry import _unoccluded

    generator = torch.Generator().manual_seed(5)
    n = len(KEYFRAMES) * H * W
    _, dirs = camera_rays(K, POSE, H, W)
    depth = 0.3 + 3.0 * torch.rand(len(KEYFRAMES), H, W, 1, generator=generator, dtype=torch.float64)
    means = (dirs[None] * depth).reshape(n, 3).float()
    offsets = (0.05 * torch.randn(n, T, 3, generator=generator)).cumsum(1)
    g = DeformableGaussians(
        means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), scales=torch.full((n, 3), 0.05),
        opacities=torch.rand(n, generator=generator), colors=torch.full((n, 3), 0.5), offsets=offsets,
        timestamps=torch.arange(T, dtype=torch.float32) * DT,
        keyframe_index=torch.tensor(np.repeat(KEYFRAMES, H * W), dtype=torch.int64))
    poses = POSE.repeat(T, 1, 1)
    poses[:, 2, 3] = torch.linspace(0.0, 1.2, T)  # advancing past the nearest points
    angle = torch.linspace(0.0, 0.4, T, dtype=torch.float64)
    poses[:, 0, 0], poses[:, 0, 2], poses[:, 2, 0], poses[:, 2, 2] = angle.cos(), angle.sin(), -angle.sin(), angle.cos()
    Ks = K.expand(T, 3, 3)
    samples = torch.randperm(n, generator=generator)[:200]
    traj = (g.means[samples][:, None] + g.offsets[samples]).double()  # [S, T, 3]
    uv, z = project_points(traj.transpose(0, 1), Ks, poses)  # [T, S, 2], [T, S]
    inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    fast = _unoccluded(g, uv, z, inside, Ks, poses, H, W)
    slow = _reference_unoccluded(g, uv, z, inside, Ks, poses, H, W)
    assert torch.equal(fast, slow)
    assert bool((inside & ~slow).any()) and bool((inside & slow).any())  # both outcomes occur
    assert bool((~inside).any())  # and samples off the image or behind the camera
