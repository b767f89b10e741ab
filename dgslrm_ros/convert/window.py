"""One reconstructed window -> its output messages' payloads, packed once for the node and `dgslrm replay`.

Read by attribute from a stream.WindowResult (model's terms: Gaussians, tracks, render): convert sits
below stream and imports neither it nor torch (CPU tensors pass through np.asarray).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from dgslrm_ros.convert.image import frames_to_rgb8
from dgslrm_ros.convert.pointcloud import PointCloudFields, pack_gaussians, pack_trajectories
from dgslrm_ros.convert.tracks import TrackStrip, tracks_to_strips


@dataclass(frozen=True)
class WindowMessages:
    gaussians: PointCloudFields  # [N] Gaussians deformed to the newest frame
    trajectories: PointCloudFields  # organised [M, T], t <= 0 before the newest frame, not dense if NaNs
    strips: list[TrackStrip]  # `tracks_markers`: one LINE_STRIP per track, coloured by speed
    rendered: np.ndarray  # `rendered`: uint8 [h, w, 3]


def window_messages(result: Any) -> WindowMessages:
    """deformable (CPU), tracks, stamps [T] and rendered [3, h, w] of a WindowResult -> payloads."""
    g, tracks, stamps = result.deformable, result.tracks, np.asarray(result.stamps, dtype=np.float64)
    last = g.num_frames - 1
    drawn, shown = g.drawn_at(last)  # one set for a single-pass viewer: keyframes around the newest frame in full
    velocities = g.velocities(last) if shown is None else g.velocities(last)[shown]
    return WindowMessages(
        pack_gaussians(*(np.asarray(v) for v in (drawn.means, drawn.colors, drawn.opacities, drawn.scales, drawn.quats,
                                                   velocities))),
        pack_trajectories(tracks.positions, stamps - stamps[-1], tracks.track_ids, tracks.visible),
        tracks_to_strips(tracks.positions, stamps - stamps[0], tracks.track_ids, tracks.visible),
        frames_to_rgb8(np.asarray(result.rendered)))


def diagnostic_strings(values: Mapping[str, Any]) -> dict[str, str]:
    """/diagnostics values as the KeyValue strings both edges write (floats to 6 significant digits)."""
    return {key: f"{v:.6g}" if isinstance(v, float) else str(v) for key, v in values.items()}
