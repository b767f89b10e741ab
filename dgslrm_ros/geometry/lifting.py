"""2D tracks + depth -> 3D motion: which keyframe pixels move on their own, and how.

A static surface point seen at keyframe pixel p satisfies, in every frame n, p_n = project_n(o + z d)
for one depth z. Fitting that z to the track, within a band around the sweep's depth, gives the
*static fit*: its residual (px) is motion evidence that a moderate depth error cannot fake. The gate turns that evidence into
[0, 1]; the lifted motion of a gated point puts its track at the depth the point would have if it
kept its keyframe position (minimal motion: what the monocular track leaves undetermined stays still).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgslrm_ros.core.cameras import camera_rays, safe_divisor
from dgslrm_ros.geometry import cpu_kernels
from dgslrm_ros.geometry.flow_tracks import Tracks2D


GATE_REFERENCE_WIDTH = 64  # image width (px) LiftConfig.gate_threshold_px was tuned at (gate_threshold)


@dataclass(frozen=True)
class LiftConfig:
    """How motion evidence becomes a gate."""

    residual_cap_px: float = 8.0  # per-frame track residual is clipped here (one bad step cannot dominate)
    gate_threshold_px: float = 3.0  # evidence below this: still. Conservative: at 1-2 px a tenth to a third of
    # the still pixels of held-out synthetic windows opened the gate (DIS errors at edges, depth outside the band)
    gate_width_px: float = 1.0  # evidence above threshold + width: fully moving
    min_track_frames: int = 3  # fewer valid frames: no evidence either way (gate 0)
    band: float = 0.3  # the static fit searches inverse depth within +-30 % of the given depth
    band_hypotheses: int = 9


@dataclass(frozen=True)
class StaticFit:
    """The single depth that best explains each keyframe pixel's track as a still point."""

    depth: Tensor  # [Kf, 1, H, W] z-depth of the best static explanation
    residual: Tensor  # [Kf, 1, H, W] mean reprojection residual of the track there (px)
    parallax: Tensor  # [Kf, 1, H, W] how far the hypotheses spread along the track (px): depth observability


def _band_end_pixels(x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """Homogeneous pixel planes [..., H, W] -> (u, v), NaN where the point is not in front of the camera
    (z <= 1e-6; a near-zero z is divided as 1e-12, never by zero)."""
    safe = safe_divisor(z)
    behind = ~(z > 1e-6)
    return (x / safe).masked_fill_(behind, float("nan")), (y / safe).masked_fill_(behind, float("nan"))


def static_fit(tracks: Tracks2D, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor, depth: Tensor,
               config: LiftConfig = LiftConfig()) -> StaticFit:
    """Best still-point depth per keyframe pixel within a band around `depth` [Kf, 1, H, W].

    The band (+-`band` in inverse depth) forgives the sweep's depth error but not real motion: over the
    full depth range a near enough hypothesis explains almost any motion along the epipolar line (on
    synthetic windows the unbounded fit landed at 0.35 px residual and 70 % depth error). Accumulated
    frame by frame: [D, Kf, H, W] sums instead of a [T, D, Kf, H, W] residual volume (half the time), on a
    CPU by the C kernel (_static_fit_sums_kernel), elsewhere in torch (_static_fit_sums_torch);
    test/geometry/test_lifting_reference.py holds both to the straightforward per-point projection.
    """
    kf, t, height, width = tracks.valid.shape
    kfi = keyframe_index.long()
    origins, dirs = camera_rays(K[kfi], world_T_cam[kfi], height, width)  # [Kf, H, W, 3]
    centres = origins[:, 0, 0]  # [Kf, 3]: a keyframe's rays share its camera centre
    dirs = dirs.movedim(-1, 0).reshape(3, -1)  # [3, Kf*H*W] planes
    factors = 1.0 + torch.linspace(-config.band, config.band, config.band_hypotheses, device=depth.device)
    inverse = factors[:, None, None, None] / depth[:, 0].clamp_min(1e-6)[None]  # [D, Kf, H, W]
    hypotheses = 1.0 / inverse
    # A point o + h d lands at a + h b in frame n's homogeneous pixels: one small product per ray, not per
    # hypothesis. a [T, 3, Kf], b [T, 3, Kf*H*W]
    a_frames, b_frames = [], []
    for n in range(t):
        pixels_T_world = K[n] @ world_T_cam[n, :3, :3].t()
        a_frames.append(((centres - world_T_cam[n, :3, 3]) @ pixels_T_world.t()).t())
        b_frames.append(pixels_T_world @ dirs)
    sums = _static_fit_sums_kernel if cpu_kernels.runs_on(depth) else _static_fit_sums_torch
    total, seen, spread = sums(hypotheses, torch.stack(a_frames), torch.stack(b_frames), tracks,
                               config.residual_cap_px)
    cost = total / seen.to(total.dtype).clamp_min(1)  # [D, Kf, H, W] mean residual of each hypothesis
    # min, not argmin: the same first-minimum index, 10x faster over a leading dim on a CPU
    c0, best = cost.min(0)  # [Kf, H, W]
    fitted = 1.0 / inverse.gather(0, best[None])[0]
    spread = spread.clamp(max=1000.0)  # a band reaching the camera swings without bound (and overflows fp16 caches)
    enough = tracks.valid.sum(1) >= config.min_track_frames  # [Kf, H, W]
    zero = torch.zeros_like(c0)
    return StaticFit(depth=fitted[:, None], residual=torch.where(enough, c0, zero)[:, None],
                     parallax=torch.where(enough, spread, zero)[:, None])


def _static_fit_sums_torch(hypotheses: Tensor, a: Tensor, b: Tensor, tracks: Tracks2D,
                           cap: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per hypothesis and keyframe pixel, over the frames: the capped residual sum [D, Kf, H, W], the frames
    counted [D, Kf, H, W] (int32) and the band ends' largest spread [Kf, H, W] (px).

    hypotheses [D, Kf, H, W] z-depths, a [T, 3, Kf], b [T, 3, Kf*H*W] (see static_fit). Accumulated frame by
    frame on contiguous x / y / z planes, in place: [N, 3] @ [3, 3] products and interleaved [..., 2] /
    [..., 3] tensors made the fit 2.5x slower on a CPU.
    """
    _, kf, height, width = hypotheses.shape
    total = torch.zeros_like(hypotheses)  # [D, Kf, H, W] residual sum
    seen = torch.zeros_like(hypotheses, dtype=torch.int32)  # [D, Kf, H, W] frames counted (exact as float)
    spread = torch.zeros(kf, height, width, device=hypotheses.device)
    x, y, z = (torch.empty_like(hypotheses) for _ in range(3))  # [D, Kf, H, W] work planes, reused per frame
    valid = torch.empty_like(hypotheses, dtype=torch.bool)
    positions = tracks.positions.movedim(-1, 0)  # [2, Kf, T, H, W] views
    for n in range(a.shape[0]):
        a_n, b_n = a[n][..., None, None], b[n].reshape(3, kf, height, width)
        for plane, a_c, b_c in ((x, a_n[0], b_n[0]), (y, a_n[1], b_n[1]), (z, a_n[2], b_n[2])):
            torch.mul(hypotheses, b_c, out=plane).add_(a_c)
        tracked = tracks.valid[:, n]  # [Kf, H, W]
        # Parallax: how far the band's ends land apart in the track's frames (small: motion is unobservable).
        (u0, v0), (u1, v1) = _band_end_pixels(x[0], y[0], z[0]), _band_end_pixels(x[-1], y[-1], z[-1])
        spread = torch.maximum(spread, torch.hypot(u0 - u1, v0 - v1).nan_to_num(0.0) * tracked)
        # Residual where the point is in front (z > 1e-6); elsewhere the frame does not count (valid
        # False), so the clamped denominator and NaN of the projection are never read.
        torch.gt(z, 1e-6, out=valid)
        valid &= tracked
        valid &= x.div_(z).abs() < float("inf")  # finite, as isfinite(), one pass fewer
        residual = torch.hypot(x.sub_(positions[0, :, n]), y.div_(z).sub_(positions[1, :, n]), out=x)
        total += residual.nan_to_num_(cap).clamp_(max=cap).mul_(valid)  # finite >= 0: x 0 is 0
        seen += valid
    return total, seen, spread


def _static_fit_sums_kernel(hypotheses: Tensor, a: Tensor, b: Tensor, tracks: Tracks2D,
                            cap: float) -> tuple[Tensor, Tensor, Tensor]:
    """_static_fit_sums_torch in one pass per keyframe pixel (geometry/_kernels.c), over torch's threads."""
    d, kf, height, width = hypotheses.shape
    t = a.shape[0]
    total = torch.empty(d, kf, height, width)
    seen = torch.empty(d, kf, height, width, dtype=torch.int32)
    spread = torch.empty(kf, height, width)
    inputs = [x.detach().contiguous().numpy() for x in (hypotheses.float(), a.float(), b.float(),
                                                        tracks.positions.float(), tracks.valid.bool())]
    cpu_kernels.KERNELS.static_fit_sums(*inputs, d, kf, t, height * width, float(cap), total.numpy(), seen.numpy(),
                                        spread.numpy(), torch.get_num_threads())
    return total, seen, spread


def gate_threshold(width: int, config: LiftConfig = LiftConfig(), exponent: float = 0.0) -> float:
    """The motion evidence (px) below which a pixel of a `width`-pixel-wide image counts as still:
    gate_threshold_px, grown as (width / 64) ** exponent on wider images (never lowered on narrower ones)."""
    return config.gate_threshold_px * max(1.0, width / GATE_REFERENCE_WIDTH) ** exponent


def motion_gate(evidence: Tensor, config: LiftConfig = LiftConfig(), threshold_exponent: float = 0.0) -> Tensor:
    """Motion evidence [..., H, W] (px) -> gate in [0, 1] (0 = still); `threshold_exponent` see gate_threshold
    (the moving regions' depth uses one: MovingDepthConfig.region_threshold_exponent)."""
    threshold = gate_threshold(evidence.shape[-1], config, threshold_exponent)
    return ((evidence - threshold) / config.gate_width_px).clamp(0.0, 1.0)


def lift_tracks(tracks: Tracks2D, depth: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor) -> Tensor:
    """3D displacement of every keyframe pixel's point from its keyframe instant, from its 2D track.

    depth [Kf, 1, H, W] (keyframe z-depth). At frame n the point is put on the ray through its tracked
    pixel, at the camera-n depth its keyframe position has (minimal motion). Frames where the track is
    lost hold the last tracked displacement. -> offsets [Kf, T, 3, H, W] (zero at the own keyframe).
    On a CPU the C kernel does it per pixel in one pass (_lift_tracks_kernel); elsewhere torch, on [3, N]
    planes with [3, 3] @ [3, N] products, and the holding one frame at a time for all keyframes at once
    (test/geometry/test_lifting_reference.py holds both to the per-point, per-frame computation).
    """
    kf, t, height, width = tracks.valid.shape
    kfi = keyframe_index.long()
    origins, dirs = camera_rays(K[kfi], world_T_cam[kfi], height, width)
    centres = origins[:, 0, 0].t()[..., None, None]  # [3, Kf, 1, 1]: a keyframe's rays share its centre
    anchor = centres + depth[:, 0] * dirs.movedim(-1, 0)  # [3, Kf, H, W]
    flat = anchor.reshape(3, -1)  # [3, N]
    if cpu_kernels.runs_on(depth):
        return _lift_tracks_kernel(flat, tracks, K, world_T_cam, kfi)
    positions = tracks.positions.movedim(-1, 0).reshape(2, kf, t, -1)  # [2, Kf, T, H*W]
    ones = torch.ones(1, kf * height * width, device=depth.device)
    offsets = torch.empty(kf, t, 3, height, width, device=depth.device)
    for n in range(t):
        rotation, translation = world_T_cam[n, :3, :3], world_T_cam[n, :3, 3]
        z = (rotation.t() @ (flat - translation[:, None]))[2]  # [N] camera-n depth of the anchor (project_points)
        pixels = torch.cat([positions[:, :, n].reshape(2, -1), ones])  # [3, N]
        ray = rotation @ (torch.linalg.inv(K[n]) @ pixels)  # [3, N], camera z = 1
        lifted = translation[:, None] + z * ray
        offsets[:, n] = (lifted.reshape(3, kf, height, width) - anchor).nan_to_num(0.0).transpose(0, 1)
    # Hold the last tracked displacement outwards from each keyframe (validity only ends along a chain):
    # one pass per direction over the frames, every keyframe at once (frames on the keyframe's other side
    # are left as they are).
    own = kfi[:, None, None]  # [Kf, 1, 1]
    offsets[torch.arange(kf, device=depth.device), kfi] = 0.0
    for n in range(1, t):  # towards the newest frame
        keep = (tracks.valid[:, n] | (n <= own))[:, None]  # [Kf, 1, H, W]
        offsets[:, n] = torch.where(keep, offsets[:, n], offsets[:, n - 1])
    for n in range(t - 2, -1, -1):  # towards the oldest frame
        keep = (tracks.valid[:, n] | (n >= own))[:, None]
        offsets[:, n] = torch.where(keep, offsets[:, n], offsets[:, n + 1])
    return offsets


def _lift_tracks_kernel(anchor: Tensor, tracks: Tracks2D, K: Tensor, world_T_cam: Tensor,
                        keyframe_index: Tensor) -> Tensor:
    """lift_tracks' displacements and holding per keyframe pixel in one pass (geometry/_kernels.c), over torch's
    threads: anchor [3, Kf*H*W] keyframe points -> offsets [Kf, T, 3, H, W]."""
    kf, t, height, width = tracks.valid.shape
    offsets = torch.empty(kf, t, 3, height, width)
    inputs = [x.detach().float().contiguous().numpy() for x in (anchor, world_T_cam[:, :3, :3], world_T_cam[:, :3, 3],
                                                                 torch.linalg.inv(K.float()), tracks.positions)]
    cpu_kernels.KERNELS.lift_tracks(*inputs, tracks.valid.bool().contiguous().numpy(),
                                    keyframe_index.to(torch.int32).contiguous().numpy(), kf, t, height * width,
                                    offsets.numpy(), torch.get_num_threads())
    return offsets
