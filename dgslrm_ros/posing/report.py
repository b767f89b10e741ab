"""The registration report of `dgslrm pose`: a dict for JSON and the terminal, and a PNG of the
camera path over the sparse points."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def stretches(frames: list[int]) -> list[tuple[int, int]]:
    """Sorted frame numbers -> runs of consecutive ones as (first, last), longest first."""
    runs: list[tuple[int, int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    return sorted(runs, key=lambda run: (run[0] - run[1], run[0]))


def format_report(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = [
        f"registered {report['frames_registered']}/{report['frames_in']} frames "
        f"({report['matching']} matching, largest of {len(report['model_sizes'])} model(s): {report['model_sizes']})",
        f"sparse points {report['points']}, mean reprojection error {report['reprojection_error_px']:.3f} px",
        f"camera {report['camera']['model']} {np.round(report['camera']['params'], 3).tolist()} -> "
        f"pinhole {report['pinhole']['width']}x{report['pinhole']['height']}",
        f"scale {report['scale_m_per_unit']:.6g} m per COLMAP unit ({report['scale_source']}); "
        f"camera path {report['path_length_m']:.3f} m",
    ]
    attempts = report.get("mapping_attempts", [])
    if len(attempts) > 1:
        lines.append("mapping attempts: " + ", ".join(f"seed {a['seed']} {a['model_sizes'][:1] or [0]}" for a in attempts))
    if report["frames_unregistered"]:
        lines.append(f"dropped (not registered): frames {report['frames_unregistered']}")
    lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report["seconds"].items()))
    return "\n".join(lines)


def plot_camera_path(world_T_cam: np.ndarray, points: np.ndarray, colors: np.ndarray, path: str | Path,
                     title: str = "") -> Path:
    """Top (x-z) and side (z-y) views of the camera centres and viewing directions over the points.

    world_T_cam [T, 4, 4] metric, points [N, 3], colors [N, 3] uint8. The world is the first camera's
    optical frame (x right, y down, z forward), so the side view flips y to put 'up' up."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    centres = world_T_cam[:, :3, 3]
    forward = world_T_cam[:, :3, 2]
    extent = np.linalg.norm(centres.max(0) - centres.min(0)) + 1e-9
    keep = np.random.default_rng(0).permutation(len(points))[:20000]
    pts, cols = points[keep], colors[keep] / 255.0
    # points far beyond the cameras squash the plot: show the central 98 %
    if len(pts) > 50:
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        inside = np.all((pts >= lo) & (pts <= hi), axis=1)
        pts, cols = pts[inside], cols[inside]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for axis, (a, b, sign_b, label_a, label_b) in zip(
            axes, [(0, 2, 1, "x (m, right)", "z (m, forward)"), (2, 1, -1, "z (m, forward)", "-y (m, up)")]):
        axis.scatter(pts[:, a], sign_b * pts[:, b], c=cols, s=2, linewidths=0)
        axis.plot(centres[:, a], sign_b * centres[:, b], "-", color="tab:red", lw=1.5, label="camera path")
        arrow = 0.05 * max(extent, np.ptp(pts[:, [a, b]]) if len(pts) else 1.0)
        axis.quiver(centres[:, a], sign_b * centres[:, b], forward[:, a] * arrow, sign_b * forward[:, b] * arrow,
                    color="tab:red", angles="xy", scale_units="xy", scale=1, width=0.003)
        axis.plot(centres[:1, a], sign_b * centres[:1, b], "o", color="tab:green", label="first frame")
        axis.set_xlabel(label_a)
        axis.set_ylabel(label_b)
        axis.set_aspect("equal", adjustable="datalim")
        axis.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    figure.suptitle(title or "camera path and sparse points")
    return save_figure(figure, path, dpi=110)
