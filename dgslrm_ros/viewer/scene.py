"""What the viewer draws, as numpy: one `ViewerWindow` per reconstructed window, and pure functions.

A window holds keyframe Gaussians plus `offsets [N, T, 3]` over its frames (docs/architecture.md):
Gaussian i sits at `means[i] + offsets[i, n]` at frame n. Sources that carry only the published
velocity (the `gaussians` topic, output bags) get offsets from it, linear in time around the cloud's
instant, so the time slider runs one formula for every source; `motion` says which it was.
No viser here: `app.py` turns these arrays into scene nodes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from dgslrm_ros.convert.tracks import tracks_to_strips
from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.core.rotations import quat_to_matrix

MOTION_OFFSETS = "predicted offsets"
MOTION_VELOCITY = "published velocity (linear in time)"
MOTION_STATIC = "static (no motion stored)"
BACKGROUND_RGB = np.ones(3, np.float32)
INITIAL_FOV = math.radians(60.0)  # vertical field of view of the browser's first view  # viser's white canvas: track alpha is blended onto it


class ViewerError(DgslrmError, ValueError):
    """A source the viewer cannot show; the message names the source, what was expected and what came."""


@dataclass(frozen=True)
class CameraView:
    """One input camera of the window (a frustum in the viewer)."""

    world_T_cam: np.ndarray  # [4, 4] float64, optical frame (x right, y down, z forward) -> world
    K: np.ndarray  # [3, 3] library convention (pixel centres at +0.5)
    width: int
    height: int
    stamp: float  # seconds
    image: np.ndarray | None = None  # [H, W, 3] uint8

    @property
    def vertical_fov(self) -> float:
        """Vertical field of view in radians (what viser's frustum takes)."""
        return 2.0 * math.atan(0.5 * self.height / float(self.K[1, 1]))


@dataclass(frozen=True)
class Tracks:
    """3D tracks of a window (the `trajectories` layout)."""

    points: np.ndarray  # [M, T, 3] float32, NaN where invalid
    timestamps: np.ndarray  # [T] float64 absolute seconds, oldest first
    track_ids: np.ndarray  # [M] uint32
    visible: np.ndarray  # [M, T] float32 in [0, 1]

    def __len__(self) -> int:
        return self.points.shape[0]


@dataclass(frozen=True)
class ViewerWindow:
    """Everything shown for one window; arrays are numpy on the CPU."""

    label: str
    means: np.ndarray  # [N, 3] float32
    quats: np.ndarray  # [N, 4] float32 wxyz
    scales: np.ndarray  # [N, 3] float32 standard deviations
    opacities: np.ndarray  # [N] float32
    colors: np.ndarray  # [N, 3] float32 rgb in [0, 1]
    offsets: np.ndarray  # [N, T, 3] float32
    timestamps: np.ndarray  # [T] float64 seconds, strictly increasing
    motion: str = MOTION_OFFSETS
    tracks: Tracks | None = None
    cameras: tuple[CameraView, ...] = ()
    figures: dict[str, str] = field(default_factory=dict)  # side panel: label -> value
    # [N, T] float32 opacity as drawn at each frame (DeformableGaussians.instant_weights); None = `opacities`
    frame_opacities: np.ndarray | None = None
    # [N, T] float32 factor on the scales at each frame (DeformableGaussians.instant_scale_factors); None = 1
    frame_scale_factors: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, t = self.means.shape[0], self.timestamps.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "colors": (n, 3),
                    "offsets": (n, t, 3), **({} if self.frame_opacities is None else {"frame_opacities": (n, t)}),
                    **({} if self.frame_scale_factors is None else {"frame_scale_factors": (n, t)})}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ViewerError(f"{self.label}: {name} has shape {getattr(self, name).shape}, expected {shape}")
        if t < 1 or (t > 1 and not np.all(np.diff(self.timestamps) > 0)):
            raise ViewerError(f"{self.label}: expected at least one strictly increasing timestamp, "
                              f"got {self.timestamps.tolist()}")

    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def num_frames(self) -> int:
        return self.timestamps.shape[0]

    @property
    def span(self) -> float:
        """Seconds from the first to the last frame (0 for a single instant)."""
        return float(self.timestamps[-1] - self.timestamps[0])


# --------------------------------------------------------------------------------------- building
def _numpy(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype)


def window_from_deformable(gaussians: DeformableGaussians, label: str, tracks: Tracks | None = None,
                           cameras: tuple[CameraView, ...] = (), figures: dict[str, str] | None = None) -> ViewerWindow:
    """A window file's Gaussians (exact per-frame offsets and, with a keyframe_support, per-frame opacities)."""
    frames = range(gaussians.num_frames)
    frame_opacities = None if gaussians.keyframe_support == 0 else _numpy(torch.stack(
        [gaussians.opacities * gaussians.instant_weights(n) for n in frames], dim=1))
    frame_scale_factors = None if not gaussians.widens_faded_keyframes else _numpy(
        torch.stack([gaussians.instant_scale_factors(n) for n in frames], dim=1))
    return ViewerWindow(
        label=label, means=_numpy(gaussians.means), quats=_numpy(gaussians.quats), scales=_numpy(gaussians.scales),
        opacities=_numpy(gaussians.opacities), colors=_numpy(gaussians.colors), offsets=_numpy(gaussians.offsets),
        timestamps=_numpy(gaussians.timestamps, np.float64), motion=MOTION_OFFSETS, tracks=tracks,
        cameras=tuple(cameras), figures=dict(figures or {}), frame_opacities=frame_opacities,
        frame_scale_factors=frame_scale_factors,
    )


def window_from_static(gaussians: Gaussians, label: str, figures: dict[str, str] | None = None) -> ViewerWindow:
    """A static set (a PLY): one instant, nothing to scrub."""
    n = len(gaussians)
    return ViewerWindow(
        label=label, means=_numpy(gaussians.means), quats=_numpy(gaussians.quats), scales=_numpy(gaussians.scales),
        opacities=_numpy(gaussians.opacities), colors=_numpy(gaussians.colors),
        offsets=np.zeros((n, 1, 3), np.float32), timestamps=np.zeros(1), motion=MOTION_STATIC,
        figures=dict(figures or {}),
    )


def window_from_cloud(means: np.ndarray, quats: np.ndarray, scales: np.ndarray, opacities: np.ndarray,
                      colors: np.ndarray, velocities: np.ndarray, stamp: float, label: str,
                      timestamps: np.ndarray | None = None, tracks: Tracks | None = None,
                      cameras: tuple[CameraView, ...] = (), figures: dict[str, str] | None = None) -> ViewerWindow:
    """The `gaussians` topic's cloud (positions at `stamp`, velocity there) over the window's frames.

    `timestamps [T]` (absolute s; default: those of `tracks`, else the stamp alone) must include the
    cloud's instant; positions at frame n are `means + v (t_n - stamp)`, a linear extrapolation: the
    topic carries no more of the motion.
    """
    if timestamps is None:
        timestamps = tracks.timestamps if tracks is not None and len(tracks.timestamps) else np.array([stamp])
    timestamps = np.asarray(timestamps, np.float64)
    if not np.any(np.abs(timestamps - stamp) < 1e-6):
        raise ViewerError(f"{label}: the cloud's stamp {stamp:.6f} s is not one of the window's frames "
                          f"{timestamps.tolist()}; expected the newest frame's stamp (the node's contract)")
    velocities = np.asarray(velocities, np.float32)
    offsets = velocities[:, None, :] * (timestamps - stamp).astype(np.float32)[None, :, None]  # [N, T, 3]
    return ViewerWindow(
        label=label, means=np.asarray(means, np.float32), quats=np.asarray(quats, np.float32),
        scales=np.asarray(scales, np.float32), opacities=np.asarray(opacities, np.float32),
        colors=np.asarray(colors, np.float32), offsets=offsets.astype(np.float32), timestamps=timestamps,
        motion=MOTION_VELOCITY if len(timestamps) > 1 else MOTION_STATIC, tracks=tracks, cameras=tuple(cameras),
        figures=dict(figures or {}),
    )


# --------------------------------------------------------------------------------------- time
def frame_at(window: ViewerWindow, time: float) -> float:
    """Fractional window frame of an absolute time (clamped to the window)."""
    return float(np.interp(time, window.timestamps, np.arange(window.num_frames, dtype=np.float64)))


def positions_at(window: ViewerWindow, time: float) -> np.ndarray:
    """[N, 3] centres at an absolute time: offsets interpolated linearly between frames, as
    `DeformableGaussians.positions` does for a fractional frame."""
    return window.means + _between_frames(window.offsets, window, time)


def opacities_at(window: ViewerWindow, time: float) -> np.ndarray:
    """[N] opacity as drawn at an absolute time (interpolated like the centres)."""
    if window.frame_opacities is None:
        return window.opacities
    return _between_frames(window.frame_opacities, window, time)


def scales_at(window: ViewerWindow, time: float) -> np.ndarray:
    """[N, 3] scales as drawn at an absolute time (the factor interpolated like the opacities)."""
    if window.frame_scale_factors is None:
        return window.scales
    return window.scales * _between_frames(window.frame_scale_factors, window, time)[:, None]


def drawn_at(window: ViewerWindow, time: float, min_opacity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(opacities_at [N], which Gaussians are drawn [N] bool: at least `min_opacity` and not faded out)."""
    opacities = opacities_at(window, time)
    return opacities, (opacities >= min_opacity) & (opacities > 0)


def _between_frames(per_frame: np.ndarray, window: ViewerWindow, time: float) -> np.ndarray:
    """A per-frame array [N, T, ...] at an absolute time, linear between the two neighbouring frames."""
    lower, upper, w = _frame_pair(window, time)
    return per_frame[:, lower] * (1 - w) + per_frame[:, upper] * w


def _frame_pair(window: ViewerWindow, time: float) -> tuple[int, int, np.float32]:
    frame = frame_at(window, time)
    lower = min(int(math.floor(frame)), window.num_frames - 1)
    return lower, min(lower + 1, window.num_frames - 1), np.float32(frame - lower)


def track_heads(tracks: Tracks, time: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each track is at `time`: (points [K, 3], row index [K]) for tracks valid at both
    neighbouring samples."""
    samples = np.arange(len(tracks.timestamps), dtype=np.float64)
    frame = float(np.interp(time, tracks.timestamps, samples))
    lower = int(math.floor(frame))
    upper = min(lower + 1, len(samples) - 1)
    w = frame - lower
    points = tracks.points[:, lower] * (1 - w) + tracks.points[:, upper] * w
    keep = np.flatnonzero(np.isfinite(points).all(axis=-1))
    return points[keep].astype(np.float32), keep


# --------------------------------------------------------------------------------------- drawing
def covariances(quats: np.ndarray, scales: np.ndarray, size: float = 1.0) -> np.ndarray:
    """quats [N, 4] wxyz, scales [N, 3] (std devs) -> covariances [N, 3, 3] = R diag((size s)^2) R^T."""
    rotation = quat_to_matrix(torch.from_numpy(np.asarray(quats, np.float32)))  # [N, 3, 3]
    variance = torch.from_numpy(np.asarray(scales, np.float32) * np.float32(size)) ** 2  # [N, 3]
    return ((rotation * variance[:, None, :]) @ rotation.transpose(1, 2)).numpy()


def splat_arrays(window: ViewerWindow, time: float, min_opacity: float = 0.0, size: float = 1.0) -> dict[str, np.ndarray]:
    """What viser's Gaussian splat node takes, at `time`, for Gaussians with opacity >= `min_opacity`:
    centers [K, 3], covariances [K, 3, 3], rgbs [K, 3], opacities [K, 1]."""
    opacities, keep = drawn_at(window, time, min_opacity)
    return {
        "centers": positions_at(window, time)[keep],
        "covariances": covariances(window.quats[keep], scales_at(window, time)[keep], size),
        "rgbs": np.clip(window.colors[keep], 0.0, 1.0),
        "opacities": opacities[keep, None],
    }


def track_segments(tracks: Tracks, max_speed: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tracks -> line segments (points [S, 2, 3], colors [S, 2, 3]) coloured by speed exactly as the
    `tracks_markers` LINE_STRIPs (convert/tracks.py); their alpha (fainter where occluded) is
    blended onto the viewer's white background, since viser's lines are opaque."""
    strips = tracks_to_strips(tracks.points, tracks.timestamps - tracks.timestamps[0], tracks.track_ids,
                              tracks.visible, max_speed=max_speed)
    if not strips:
        return np.zeros((0, 2, 3), np.float32), np.zeros((0, 2, 3), np.float32)
    points, colors = [], []
    for strip in strips:
        rgb = strip.colors[:, :3] * strip.colors[:, 3:] + BACKGROUND_RGB * (1.0 - strip.colors[:, 3:])
        points.append(np.stack([strip.points[:-1], strip.points[1:]], axis=1))
        colors.append(np.stack([rgb[:-1], rgb[1:]], axis=1))
    return np.concatenate(points).astype(np.float32), np.concatenate(colors).astype(np.float32)


def panel_figures(window: ViewerWindow, shown: int | None = None) -> list[tuple[str, str]]:
    """The side panel's rows: counts, time span, motion source, then the source's own figures
    (latency, PSNR...)."""
    count = f"{len(window):,}" if shown is None or shown == len(window) else f"{shown:,} of {len(window):,} shown"
    rows = [("Gaussians", count),
            ("tracks", f"{len(window.tracks):,}" if window.tracks is not None else "none in this source"),
            ("frames", f"{window.num_frames} over {window.span:.3f} s"),
            ("motion", window.motion),
            ("input cameras", str(len(window.cameras)))]
    return rows + list(window.figures.items())


def scene_centre_and_radius(window: ViewerWindow) -> tuple[np.ndarray, float]:
    """Robust centre (median) and radius (90th percentile distance) of the Gaussians at the last frame."""
    if len(window) == 0:
        return np.zeros(3), 1.0
    points = positions_at(window, float(window.timestamps[-1]))
    centre = np.median(points, axis=0)
    radius = float(np.percentile(np.linalg.norm(points - centre, axis=1), 90))
    return centre, max(radius, 1e-3)


def frustum_size(window: ViewerWindow) -> float:
    """Frustum depth in scene units: a third of the camera's travel step, within [1 %, 5 %] of the
    scene radius, so frusta neither hide the scene nor vanish."""
    _, radius = scene_centre_and_radius(window)
    centres = np.array([c.world_T_cam[:3, 3] for c in window.cameras]).reshape(-1, 3)
    step = float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1))) if len(centres) > 1 else radius
    return float(np.clip(step / 3.0, 0.01 * radius, 0.05 * radius))


def initial_view(window: ViewerWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, look_at, up) of the browser's first view (vertical field of view INITIAL_FOV): a little
    behind and above the newest input camera, looking along its axis at the median depth of the
    Gaussians, so the user starts where the robot looked and sees its frusta; with no camera, from -y
    and a little above the scene's centre, with +z up (ROS)."""
    centre, radius = scene_centre_and_radius(window)
    if window.cameras:
        pose = window.cameras[-1].world_T_cam
        origin, forward, up = pose[:3, 3], pose[:3, 2], -pose[:3, 1]  # optical z forward, y down
        depth = (positions_at(window, float(window.timestamps[-1])) - origin) @ forward
        ahead = depth[depth > 0]
        distance = float(np.median(ahead)) if ahead.size else radius
        return origin - forward * 0.35 * distance + up * 0.15 * distance, origin + forward * distance, up
    up = np.array([0.0, 0.0, 1.0])
    return centre + np.array([0.35, -1.0, 0.55]) * radius * 3.2, centre, up
