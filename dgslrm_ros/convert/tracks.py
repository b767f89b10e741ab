"""Tracks -> LINE_STRIP marker data coloured by speed (pure data; `ros/` builds the MarkerArray).

One strip per track, through its valid (finite) samples, oldest first. Each vertex is coloured by
the speed of the segment ending at it on a blue (slow) -> green -> red (fast) ramp; occluded samples
are drawn fainter so a viewer sees where the point was hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dgslrm_ros.convert.errors import ConversionError

OCCLUDED_ALPHA = 0.35
# The MarkerArray of strips, as ros/messages.py (live) and bags/messages.py (bags) both build it: a
# DELETEALL first, so tracks that ended vanish instead of freezing, then one LINE_STRIP per strip.
TRACKS_NAMESPACE = "tracks"
TRACK_LINE_WIDTH_M = 0.01


@dataclass(frozen=True)
class TrackStrip:
    """Data of one LINE_STRIP marker (marker id = track_id)."""

    track_id: int
    points: np.ndarray  # [K, 3] float32, K >= 2
    colors: np.ndarray  # [K, 4] float32 rgba in [0, 1]
    speeds: np.ndarray  # [K] float32 m/s

    @property
    def marker_id(self) -> int:
        """Marker.id is int32 and track ids are uint32: the high bit is dropped."""
        return int(self.track_id) & 0x7FFFFFFF


def speed_colormap(normalised: np.ndarray) -> np.ndarray:
    """[...] in [0, 1] -> [..., 3] rgb: blue -> cyan -> green -> yellow -> red (piecewise linear)."""
    s = np.clip(np.asarray(normalised, dtype=np.float32), 0.0, 1.0)
    anchors = np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
    palette = np.array([[0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=np.float32)
    return np.stack([np.interp(s, anchors, palette[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def track_speeds(tracks: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """tracks [M, T, 3], timestamps [T] s -> per-sample speed [M, T] (m/s) of the segment ending there.

    Sample 0 takes the speed of the first segment; NaN where either end of the segment is invalid.
    """
    tracks = np.asarray(tracks, dtype=np.float64)
    ts = np.asarray(timestamps, dtype=np.float64)
    if tracks.ndim != 3 or tracks.shape[2] != 3 or ts.shape != (tracks.shape[1],):
        raise ConversionError(f"expected tracks [M, T, 3] and timestamps [T], got {tracks.shape} and {ts.shape}")
    m, n = tracks.shape[:2]
    speeds = np.full((m, n), np.nan)
    if n >= 2:
        dt = np.diff(ts)
        if np.any(dt <= 0):
            raise ConversionError(f"timestamps must be strictly increasing, got {ts.tolist()}")
        seg = np.linalg.norm(np.diff(tracks, axis=1), axis=-1) / dt  # [M, T-1]
        speeds[:, 1:] = seg
        speeds[:, 0] = seg[:, 0]
    return speeds.astype(np.float32)


def tracks_to_strips(
    tracks: np.ndarray,
    timestamps: np.ndarray,
    track_ids: np.ndarray,
    visible: np.ndarray | None = None,
    max_speed: float | None = None,
) -> list[TrackStrip]:
    """tracks [M, T, 3], timestamps [T], track_ids [M], visible [M, T] -> one TrackStrip per track.

    `max_speed` (m/s) maps to red; by default the largest speed among the tracks, so colours are
    relative to this window. Tracks with fewer than 2 valid samples are skipped (a strip needs 2).
    """
    tracks = np.asarray(tracks, dtype=np.float32)
    ts_all = np.asarray(timestamps, dtype=np.float64)
    track_speeds(tracks, ts_all)  # validates shapes and monotonic time
    m, n = tracks.shape[:2]
    ids = np.asarray(track_ids)
    if ids.shape != (m,):
        raise ConversionError(f"track_ids: expected shape [M] = ({m},), got {ids.shape}")
    vis = np.ones((m, n), np.float32) if visible is None else np.asarray(visible, dtype=np.float32)
    if vis.shape != (m, n):
        raise ConversionError(f"visible: expected shape [M, T] = {(m, n)}, got {vis.shape}")
    valid = np.isfinite(tracks).all(axis=-1)
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []
    for i in range(m):
        keep = np.flatnonzero(valid[i])
        if keep.size < 2:
            continue
        pts = tracks[i, keep]
        # speed between consecutive *valid* samples, so a gap does not make NaN colours
        seg = np.linalg.norm(np.diff(pts.astype(np.float64), axis=0), axis=-1) / np.diff(ts_all[keep])
        pending.append((i, keep, np.concatenate([seg[:1], seg]).astype(np.float32)))
    if max_speed is None:
        max_speed = max((float(s.max()) for _, _, s in pending), default=0.0)
    scale = 1.0 / max_speed if max_speed > 0 else 0.0
    strips: list[TrackStrip] = []
    for i, keep, s in pending:
        rgba = np.empty((keep.size, 4), np.float32)
        rgba[:, :3] = speed_colormap(s * scale)
        rgba[:, 3] = OCCLUDED_ALPHA + (1.0 - OCCLUDED_ALPHA) * np.clip(vis[i, keep], 0.0, 1.0)
        strips.append(TrackStrip(track_id=int(ids[i]), points=tracks[i, keep], colors=rgba, speeds=s))
    return strips
