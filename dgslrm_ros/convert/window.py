"""One reconstructed window -> the arrays of its output messages, for the node and `dgslrm replay` alike.

`stream` returns a window in the model's terms (stream/reconstruction.WindowResult: Gaussians, tracks,
renders); the edges that make messages pack it here, once. Read by attribute: convert sits below stream
and imports neither it nor torch (CPU tensors pass through np.asarray).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dgslrm_ros.convert.image import frames_to_rgb8
from dgslrm_ros.convert.pointcloud import gaussians_to_array, trajectories_to_array
from dgslrm_ros.convert.tracks import TrackStrip, tracks_to_strips


@dataclass(frozen=True)
class WindowMessages:
    """The payloads of one window's `gaussians`, `trajectories`, `tracks_markers` and `rendered`."""

    gaussians: np.ndarray  # structured [N] GAUSSIAN_DTYPE, deformed to the newest frame
    trajectories: np.ndarray  # structured [M, T] TRAJECTORY_DTYPE, t <= 0 before the newest frame
    strips: list[TrackStrip]  # one LINE_STRIP per track, coloured by speed
    rendered: np.ndarray  # uint8 [h, w, 3]


def window_messages(result: Any) -> WindowMessages:
    """A stream.WindowResult (deformable on the CPU, tracks, stamps [T], rendered [3, h, w]) packed."""
    g, tracks = result.deformable, result.tracks
    stamps = np.asarray(result.stamps, dtype=np.float64)
    newest = g.num_frames - 1
    gaussians = gaussians_to_array(*(np.asarray(v) for v in (g.positions(newest), g.colors, g.opacities, g.scales,
                                                                g.quats, g.velocities(newest))))
    trajectories = trajectories_to_array(tracks.positions, (stamps - stamps[-1]).astype(np.float32), tracks.track_ids,
                                         tracks.visible)
    strips = tracks_to_strips(tracks.positions, stamps - stamps[0], tracks.track_ids, tracks.visible)
    return WindowMessages(gaussians, trajectories, strips, frames_to_rgb8(np.asarray(result.rendered)))
