"""Figures (PNG) of training and `dgslrm eval` (`save_preview`), `dgslrm replay` (`save_gallery`,
`save_track_figures`) and `dgslrm demo` (`save_pair`, `save_track_views`), apart from the commands."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.convert.tracks import speed_colormap, track_speeds
from dgslrm_ros.core.cameras import project_points
from dgslrm_ros.core.plotting import pyplot, save_figure


def _image(t: Tensor):
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def save_preview(path: str | Path, inputs: Tensor, predictions: Tensor, targets: Tensor, track_image: Tensor,
                 pred_tracks: Tensor, gt_tracks: Tensor, K: Tensor, world_T_cam: Tensor, title: str = "") -> Path:
    """Write a preview grid, one row per view: the input frame at its instant, our render of a held-out view,
    the ground truth, and the input keyframe with predicted (red) and true (green) 3D tracks projected in.

    inputs / predictions / targets: [R, 3, H, W] (one row each); track_image [3, H, W] with its camera
    K [3, 3], world_T_cam [4, 4]; pred_tracks / gt_tracks [M, T, 3] in the same frame as the camera.
    """
    plt = pyplot()
    rows = inputs.shape[0]
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.6 * rows), squeeze=False)
    for r in range(rows):
        for c, (image, name) in enumerate(((inputs[r], "input"), (predictions[r], "prediction"),
                                           (targets[r], "ground truth"))):
            axes[r, c].imshow(_image(image))
            axes[r, c].set_title(name, fontsize=9)
        ax = axes[r, 3]
        ax.imshow(_image(track_image))
        ax.set_title("tracks (red pred, green GT)", fontsize=9)
        height, width = track_image.shape[-2:]
        for tracks, colour in ((gt_tracks, "lime"), (pred_tracks, "red")):
            m, t, _ = tracks.shape
            uv, z = project_points(tracks.reshape(1, m * t, 3).float().cpu(), K[None].float().cpu(),
                                   world_T_cam[None].float().cpu())
            uv = uv.reshape(m, t, 2)
            z = z.reshape(m, t)
            for i in range(m):
                ok = (z[i] > 0) & torch.isfinite(uv[i]).all(-1)
                if ok.sum() >= 2:
                    ax.plot(uv[i, ok, 0] - 0.5, uv[i, ok, 1] - 0.5, color=colour, linewidth=0.8)
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        for a in axes[r]:
            a.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=80)


def track_grid(height: int, width: int, count: int = 8) -> tuple[Tensor, Tensor]:
    """Rows and columns of a sparse count x count pixel grid used for plotted tracks."""
    rows = torch.linspace(0, height - 1, count).round().long()
    cols = torch.linspace(0, width - 1, count).round().long()
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    return grid_r.reshape(-1), grid_c.reshape(-1)


def save_gallery(path: Path, gallery: list[dict[str, np.ndarray]]) -> Path | None:
    """One row per window of uint8 [H, W, 3] images keyed input / rendered / gt_view / gt_render (those present)."""
    if not gallery:
        return None
    plt = pyplot()
    titles = {"input": "input (newest frame)", "rendered": "rendered, input camera",
              "gt_view": "held-out view (GT)", "gt_render": "rendered, held-out view"}
    used = [c for c in titles if any(c in g for g in gallery)]
    fig, axes = plt.subplots(len(gallery), len(used), figsize=(2.6 * len(used), 2.6 * len(gallery)), squeeze=False)
    for row, entry in enumerate(gallery):
        for col, key in enumerate(used):
            ax = axes[row][col]
            ax.axis("off")
            if key in entry:
                ax.imshow(entry[key])
            if row == 0:
                ax.set_title(titles[key], fontsize=8)
    return save_figure(fig, path)


def save_track_figures(out: Path, positions: np.ndarray, stamps: np.ndarray, image: np.ndarray, K: np.ndarray,
                       world_T_cam: np.ndarray, gt_tracks: np.ndarray | None = None) -> list[Path]:
    """A window's tracks [M, T, 3] (world, metres) over its newest image uint8 [H, W, 3] (camera K [T, 3, 3],
    world_T_cam [T, 4, 4]) and in 3D, GT tracks in grey if given -> tracks_overlay.png, tracks_3d.png."""
    plt = pyplot()
    speeds = track_speeds(positions, stamps - stamps[0]) if len(positions) else np.zeros((0, 0))
    top = float(np.nanmax(speeds)) if speeds.size and np.isfinite(speeds).any() else 1.0
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image)
    height, width = image.shape[:2]
    for m in range(len(positions)):
        uv, depth = project_points(torch.from_numpy(positions[m].astype(np.float64)),
                                   torch.from_numpy(K[-1]).double(), torch.from_numpy(world_T_cam[-1]))
        uv = uv.numpy()
        keep = (depth.numpy() > 0) & np.isfinite(uv).all(axis=-1)
        if keep.sum() < 1:
            continue
        color = speed_colormap(np.nanmean(speeds[m]) / top if top > 0 else 0.0)
        ax.plot(uv[keep, 0] - 0.5, uv[keep, 1] - 0.5, "-", color=color, linewidth=1.0)
        ax.plot(uv[keep][-1, 0] - 0.5, uv[keep][-1, 1] - 0.5, "o", color=color, markersize=2)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(f"{len(positions)} tracks over the newest frame (colour: speed, max {top:.2f} m/s)", fontsize=8)
    ax.axis("off")
    paths.append(save_figure(fig, out / "tracks_overlay.png"))

    fig = plt.figure(figsize=(6, 5))
    ax3 = fig.add_subplot(projection="3d")
    if gt_tracks is not None:
        for track in gt_tracks:
            ax3.plot(track[:, 0], track[:, 1], track[:, 2], color="0.6", linewidth=1.0)
    for m in range(len(positions)):
        color = speed_colormap(np.nanmean(speeds[m]) / top if top > 0 else 0.0)
        ax3.plot(positions[m, :, 0], positions[m, :, 1], positions[m, :, 2], color=color, linewidth=1.5)
        ax3.scatter(*positions[m, -1], color=color, s=6)
    cams = world_T_cam[:, :3, 3]
    ax3.plot(cams[:, 0], cams[:, 1], cams[:, 2], "k--", linewidth=1.0, label="camera")
    ax3.set_xlabel("x [m]")
    ax3.set_ylabel("y [m]")
    ax3.set_zlabel("z [m]")
    ax3.set_title("predicted tracks (colour: speed)" + ("; GT grey" if gt_tracks is not None else ""), fontsize=8)
    ax3.legend(fontsize=7)
    paths.append(save_figure(fig, out / "tracks_3d.png"))
    return paths


def save_pair(path: Path, left: Any, right: Any, titles: tuple[str, str]) -> str:
    """Two uint8 [H, W, 3] images side by side -> the file's name."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
    for axis, image, title in zip(axes, (left, right), titles):
        axis.imshow(image, interpolation="nearest")
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    save_figure(fig, path)
    return path.name


def save_track_views(path: Path, tracks: np.ndarray, gt_tracks: np.ndarray, newest: int) -> None:
    """Top and side views of received tracks [M, T, 3] (red) over the GT tracks [M_gt, frames, 3] (grey) of
    the same frames, the window ending at GT frame `newest`."""
    plt = pyplot()
    first = max(newest - tracks.shape[1] + 1, 0)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    for axis, (i, j, label) in zip(axes, [(0, 1, "top: x / y"), (0, 2, "side: x / z")]):
        for track in gt_tracks[:, first:newest + 1]:
            axis.plot(track[:, i], track[:, j], color="0.6", linewidth=0.8)
            axis.plot(track[-1:, i], track[-1:, j], "o", color="0.6", markersize=2)  # still points show too
        for track in tracks:
            axis.plot(track[:, i], track[:, j], color="tab:red", linewidth=1.0)
            axis.plot(track[-1:, i], track[-1:, j], "o", color="tab:red", markersize=2)
        axis.set_title(f"{label} (grey: ground truth, red: dgslrm)", fontsize=9)
        axis.set_aspect("equal", adjustable="datalim")
    save_figure(fig, path)
