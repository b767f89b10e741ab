"""Held-out-frame evaluation: score a window's Gaussians at frames the pipeline never saw.

`dgslrm replay --holdout N` feeds every N-th frame; at each skipped frame inside a window's time
span the window's Gaussians are rendered at that frame's pose and instant (offsets interpolated
linearly between the two neighbouring window frames) and compared with the real image. Beside the
pipeline's own Gaussians (row named after the method that made them, `network` by default) the
same frames are scored for:

- `static`: the same Gaussians with their deformation forced to zero (what the motion buys);
- `copy`: the nearest input frame in time, as is (what a system with no 3D at all gets);
- `blend`: the mean of the two input frames around the held-out instant.

Needs no ground truth beyond the video itself, so it scores real footage. Pure functions over
tensors; the frame bookkeeping lives in stream/holdout.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.evaluation.baselines import static_baseline
from dgslrm_ros.evaluation.scoring import ScoreLog, render_views, score_images
# Absolute ROS stamps in float64 seconds carry ~2e-7 s of rounding, i.e. ~1e-5 of a frame interval:
# a held-out frame exactly half-way must not pick its `copy` neighbour by that noise.
TIE = 1e-3


def window_position(window_stamps: np.ndarray, stamp: float) -> float | None:
    """Fractional window frame of `stamp` (s): n + (stamp - t_n) / (t_{n+1} - t_n); None outside the span.

    window_stamps [T] float64 seconds, strictly increasing."""
    stamps = np.asarray(window_stamps, dtype=np.float64)
    if stamps.ndim != 1 or stamps.size < 2:
        return None
    if not (stamps[0] <= stamp <= stamps[-1]):
        return None
    upper = int(np.searchsorted(stamps, stamp, side="left"))
    if upper == 0:
        return 0.0
    lower = upper - 1
    return lower + float((stamp - stamps[lower]) / (stamps[upper] - stamps[lower]))


def copy_frame(position: float, inputs: Tensor) -> Tensor:
    """The input frame nearest in time (ties, within TIE of a frame, go to the earlier one).
    inputs [T, 3, H, W] -> [3, H, W]."""
    lower = int(math.floor(position))
    upper = min(lower + 1, inputs.shape[0] - 1)
    return inputs[lower] if position - lower <= 0.5 + TIE else inputs[upper]


def blend_frames(position: float, inputs: Tensor) -> Tensor:
    """Mean of the two input frames around the instant. inputs [T, 3, H, W] -> [3, H, W]."""
    lower = int(math.floor(position))
    upper = min(lower + 1, inputs.shape[0] - 1)
    return 0.5 * (inputs[lower] + inputs[upper])


@dataclass(frozen=True)
class HeldOutView:
    """One skipped frame, prepared like the pipeline's inputs (same undistortion, resize and crop)."""

    stamp: float  # s
    image: Tensor  # [3, H, W] float in [0, 1]
    world_T_cam: Tensor  # [4, 4] metric world (the window's frame)
    K: Tensor  # [3, 3] at the model resolution, library convention


# A method renders one held-out view: (gaussians, fractional window frame, view, inputs [T, 3, H, W]) -> [3, H, W]
Method = Callable[[DeformableGaussians, float, HeldOutView, Tensor], Tensor]


def default_methods(primary: str = "network", renderer: str = "auto") -> dict[str, Method]:
    """The methods scored beside each other; `primary` names the pipeline's own Gaussians.

    Another method is one more entry: a function of (gaussians, position, view, inputs)."""
    def seen(g: DeformableGaussians, p: float, v: HeldOutView) -> Tensor:  # deformed to p, from the view's camera
        return render_views(g, v.world_T_cam[None], v.K[None], *v.image.shape[-2:], renderer, frame=p)[0]

    return {
        primary: lambda g, p, v, inputs: seen(g, p, v),
        "static": lambda g, p, v, inputs: seen(static_baseline(g), p, v),
        "copy": lambda g, p, v, inputs: copy_frame(p, inputs).float().cpu(),
        "blend": lambda g, p, v, inputs: blend_frames(p, inputs).float().cpu(),
    }


@dataclass
class WindowScores:
    """Scores of one window's held-out frames."""

    window: int
    stamps: list[float]  # held-out instants (s)
    positions: list[float]  # fractional window frames
    values: dict[str, dict[str, list[float]]]  # method -> metric -> per frame
    images: dict[str, Tensor] = field(default_factory=dict)  # "target" and each method -> [M, 3, H, W]


def score_window(window: int, gaussians: DeformableGaussians, window_stamps: np.ndarray, inputs: Tensor,
                 views: list[HeldOutView], methods: dict[str, Method], lpips=None) -> WindowScores | None:
    """Score every held-out view inside the window's span with every method (evaluation/scoring.py's rule;
    LPIPS with `lpips`, a loaded metrics.lpips.LPIPS).

    gaussians: the window's (metric world); window_stamps [T] s; inputs [T, 3, H, W] the window's
    input frames prepared like `views`. None when no view falls inside the span."""
    if inputs.dim() != 4 or inputs.shape[0] != len(window_stamps):
        raise ValueError(f"inputs: expected [T={len(window_stamps)}, 3, H, W], got {tuple(inputs.shape)}")
    inside = [(v, window_position(window_stamps, v.stamp)) for v in views]
    inside = [(v, p) for v, p in inside if p is not None and not float(p).is_integer()]
    if not inside:
        return None
    target = torch.stack([v.image.float().cpu() for v, _ in inside])
    result = WindowScores(window=window, stamps=[v.stamp for v, _ in inside], positions=[p for _, p in inside],
                          values={}, images={"target": target})
    for name, method in methods.items():
        pred = torch.stack([method(gaussians, p, v, inputs) for v, p in inside]).clamp(0, 1)
        values = score_images(pred, target, lpips)
        result.values[name] = {**values, "lpips": values.get("lpips", [math.nan] * len(inside))}  # NaN: not taken
        result.images[name] = pred
    return result


def summarise(windows: list[WindowScores]) -> dict[str, dict[str, float]]:
    """method -> {psnr, ssim, lpips: mean over every scored frame (finite values), frames: count}."""
    logs: dict[str, ScoreLog] = {}
    for w in windows:
        for name, values in w.values.items():
            logs.setdefault(name, ScoreLog()).add(values)
    return {name: {**log.mean(), "frames": log.count} for name, log in logs.items()}


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """The summary as a small text table (higher PSNR/SSIM, lower LPIPS are better)."""
    lines = [f"{'method':<12} {'PSNR dB':>8} {'SSIM':>7} {'LPIPS':>7} {'frames':>7}"]
    for name, row in summary.items():
        lines.append(f"{name:<12} {row['psnr']:>8.2f} {row['ssim']:>7.3f} {row['lpips']:>7.3f} {row['frames']:>7d}")
    return "\n".join(lines)


def save_grid(path, window: WindowScores, max_rows: int = 4):
    """PNG: one row per held-out frame (up to max_rows, spread over the window): the real frame, then
    each method with its PSNR."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    count = len(window.stamps)
    rows = sorted(set(np.linspace(0, count - 1, min(max_rows, count)).round().astype(int).tolist()))
    columns = ["target"] + list(window.values)
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(2.4 * len(columns), 2.2 * len(rows) + 0.4),
                             squeeze=False)
    for r, i in enumerate(rows):
        for c, name in enumerate(columns):
            ax = axes[r][c]
            ax.imshow(window.images[name][i].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "target":
                ax.set_title(f"held out, frame {window.positions[i]:.2f}", fontsize=8)
            else:
                ax.set_title(f"{name}: {window.values[name]['psnr'][i]:.2f} dB", fontsize=8)
    fig.suptitle(f"window {window.window}: held-out frames vs methods", fontsize=9)
    return save_figure(fig, path)
