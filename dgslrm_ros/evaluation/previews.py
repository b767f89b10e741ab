"""Preview PNGs for training and evaluation: input | prediction | ground truth | tracks.

One row per shown view: the input frame at the view's instant, our render of a held-out view, the
ground-truth held-out view, and the input keyframe with predicted (red) and true (green) 3D tracks of
a sparse pixel grid projected into it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from dgslrm_ros.core.cameras import project_points


def _image(t: Tensor):
    return t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def save_preview(path: str | Path, inputs: Tensor, predictions: Tensor, targets: Tensor, track_image: Tensor,
                 pred_tracks: Tensor, gt_tracks: Tensor, K: Tensor, world_T_cam: Tensor, title: str = "") -> Path:
    """Write a preview grid.

    inputs / predictions / targets: [R, 3, H, W] (one row each); track_image [3, H, W] with its camera
    K [3, 3], world_T_cam [4, 4]; pred_tracks / gt_tracks [M, T, 3] in the same frame as the camera.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def track_grid(height: int, width: int, count: int = 8) -> tuple[Tensor, Tensor]:
    """Rows and columns of a sparse count x count pixel grid used for plotted tracks."""
    rows = torch.linspace(0, height - 1, count).round().long()
    cols = torch.linspace(0, width - 1, count).round().long()
    grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
    return grid_r.reshape(-1), grid_c.reshape(-1)
