"""The fast static fit and lifting against the straightforward computation they replaced.

lifting.static_fit and lift_tracks work on contiguous planes, in place, with [3, 3] @ [3, N] products and a
frame-at-a-time hold (on a CPU: in the C kernels, per pixel); the references below are the per-frame,
per-point code they replaced (interleaved [..., 3] tensors, `_hypotheses_in_frame`, `project_points`, a loop
per keyframe and frame). On a window with lost tracks, NaN positions, a camera facing away and scattered
depths they agree: the torch path bit for bit on the development machine (MKL, AVX2); the bound below leaves
room for another BLAS, or the C kernel, rounding a 3-term dot product differently (3e-6 m seen).
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from dgslrm_ros.core.cameras import camera_rays, pixel_length, project_points
from dgslrm_ros.geometry import cpu_kernels
from dgslrm_ros.geometry.benchmark import benchmark_window
from dgslrm_ros.geometry.flow_tracks import Tracks2D, chain_tracks
from dgslrm_ros.geometry.lifting import LiftConfig, StaticFit, lift_tracks, static_fit

SIZE, FRAMES = 32, 12
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _hypotheses_in_frame(origins: Tensor, dirs: Tensor, depth: Tensor, K: Tensor, world_T_cam: Tensor) -> Tensor:
    """Keyframe rays at hypothesis depths, seen from one frame.

    origins, dirs [Kf, H, W, 3] (camera_rays), depth [D, Kf, H, W], K [3, 3], world_T_cam [4, 4] -> uv
    [D, Kf, H, W, 2] (NaN behind the camera). A point o + z d lands at a + z b in the frame's homogeneous
    pixels: one small matrix product per ray, not per hypothesis (3x cheaper than projecting every point).
    """
    pixels_T_world = K @ world_T_cam[:3, :3].t()  # world offsets -> homogeneous pixels of the frame
    a = (origins - world_T_cam[:3, 3]) @ pixels_T_world.t()  # [Kf, H, W, 3]
    b = dirs @ pixels_T_world.t()
    homogeneous = a + depth[..., None] * b  # [D, Kf, H, W, 3]
    z = homogeneous[..., 2:]
    projected = homogeneous[..., :2] / torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    return torch.where(z > 1e-6, projected, torch.full_like(projected, float("nan")))


def reference_static_fit(tracks: Tracks2D, K, world_T_cam, keyframe_index, depth, config=LiftConfig()) -> StaticFit:
    kf, t, height, width = tracks.valid.shape
    kfi = keyframe_index.long()
    origins, dirs = camera_rays(K[kfi], world_T_cam[kfi], height, width)
    factors = 1.0 + torch.linspace(-config.band, config.band, config.band_hypotheses)
    inverse = factors[:, None, None, None] / depth[:, 0].clamp_min(1e-6)[None]
    hypotheses = 1.0 / inverse
    cap = config.residual_cap_px
    total, seen = torch.zeros_like(inverse), torch.zeros_like(inverse)
    spread = torch.zeros(kf, height, width)
    for n in range(t):
        uv = _hypotheses_in_frame(origins, dirs, hypotheses, K[n], world_T_cam[n])
        tracked = tracks.valid[:, n]
        valid = tracked & torch.isfinite(uv[..., 0])
        total += pixel_length(uv - tracks.positions[:, n]).nan_to_num(cap).clamp(max=cap) * valid
        seen += valid
        spread = torch.maximum(spread, pixel_length(uv[0] - uv[-1]).nan_to_num(0.0) * tracked)
    cost = total / seen.clamp_min(1)
    best = cost.argmin(0)
    c0 = cost.gather(0, best[None])[0]
    fitted = 1.0 / inverse.gather(0, best[None])[0]
    enough = tracks.valid.sum(1) >= config.min_track_frames
    zero = torch.zeros_like(c0)
    return StaticFit(depth=fitted[:, None], residual=torch.where(enough, c0, zero)[:, None],
                     parallax=torch.where(enough, spread.clamp(max=1000.0), zero)[:, None])


def reference_lift_tracks(tracks: Tracks2D, depth, K, world_T_cam, keyframe_index):
    kf, t, height, width = tracks.valid.shape
    kfi = keyframe_index.long()
    origins, dirs = camera_rays(K[kfi], world_T_cam[kfi], height, width)
    anchor = origins + depth[:, 0, ..., None] * dirs
    offsets = torch.zeros(kf, t, height, width, 3)
    for n in range(t):
        _, z = project_points(anchor.reshape(1, -1, 3), K[n], world_T_cam[n])
        uv = tracks.positions[:, n].reshape(-1, 2)
        pixels = torch.cat([uv, torch.ones_like(uv[:, :1])], dim=-1)
        ray = pixels @ torch.linalg.inv(K[n]).t() @ world_T_cam[n, :3, :3].t()
        lifted = world_T_cam[n, :3, 3] + z.reshape(-1, 1) * ray
        offsets[:, n] = (lifted.reshape(kf, height, width, 3) - anchor).nan_to_num(0.0)
    for i, k in enumerate(kfi.tolist()):
        offsets[i, k] = 0.0
        for n in list(range(k + 1, t)) + list(range(k - 1, -1, -1)):
            previous = n - 1 if n > k else n + 1
            offsets[i, n] = torch.where(tracks.valid[i, n][..., None], offsets[i, n], offsets[i, previous])
    return offsets.permute(0, 1, 4, 2, 3).contiguous()


def _hard_window():
    """Real chained tracks of a translating window, then made hard: tracks lost anywhere along a chain
    (some with NaN positions), one camera turned away (every hypothesis behind it), scattered depths."""
    window = benchmark_window(SIZE, frames=FRAMES)
    keyframes = torch.tensor([0, 5, 11])
    tracks = chain_tracks(window["frames"], keyframes)
    generator = torch.Generator().manual_seed(3)
    lost = torch.rand(tracks.valid.shape, generator=generator) < 0.2
    lost[torch.arange(3), keyframes] = False  # a keyframe always sees its own pixels
    positions = tracks.positions.clone()
    positions[lost & (torch.rand(lost.shape, generator=generator) < 0.5)] = float("nan")
    tracks = Tracks2D(positions=positions, valid=tracks.valid & ~lost, error=tracks.error)
    poses = window["world_T_cam"].clone()
    turn = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])  # half a turn about y
    poses[7, :3, :3] = turn @ poses[7, :3, :3]
    depth = 0.5 + 4.0 * torch.rand(3, 1, SIZE, SIZE, generator=generator)
    depth[0, 0, :4] = 0.03  # bands reaching right up to the cameras
    return tracks, window["K"].contiguous(), poses, keyframes, depth


def test_static_fit_matches_the_reference_computation() -> None:
    tracks, K, poses, keyframes, depth = _hard_window()
    fast = static_fit(tracks, K, poses, keyframes, depth)
    slow = reference_static_fit(tracks, K, poses, keyframes, depth)
    for name in ("depth", "residual", "parallax"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), **TOLERANCE, equal_nan=True)
    # The window is hard enough to reach every branch: cut-off residuals and tracks too short to count.
    assert float(slow.residual.max()) > 1.0 and bool((slow.residual == 0).any())
    assert math.isfinite(float(fast.parallax.max())) and float(fast.parallax.max()) > 1.0


@pytest.mark.parametrize("kernels", ["C", "torch"])
def test_lift_tracks_matches_the_reference_computation(kernels: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if kernels == "torch":
        monkeypatch.setattr(cpu_kernels, "KERNELS", None)
    elif cpu_kernels.KERNELS is None:
        pytest.skip("the C kernels were not built (no C compiler, or DGSLRM_NO_GEOMETRY_KERNELS set)")
    tracks, K, poses, keyframes, depth = _hard_window()
    fast = lift_tracks(tracks, depth, K, poses, keyframes)
    slow = reference_lift_tracks(tracks, depth, K, poses, keyframes)
    torch.testing.assert_close(fast, slow, **TOLERANCE)
    # Held frames really hold: somewhere a lost frame repeats its neighbour's displacement exactly.
    lost = ~tracks.valid[1, 6]  # keyframe 5, frame 6: held from frame 5 (zero) when lost
    assert bool(lost.any()) and bool((slow[1, 6, :, lost] == 0).all())
    assert float(slow.abs().max()) > 0.01
