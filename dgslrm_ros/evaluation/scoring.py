"""Renders scored against target images by one rule, for `dgslrm eval` (input, novel, mid-frame views),
`dgslrm replay` (novel views at a bag's ground-truth cameras, `--holdout` frames) and `dgslrm demo`.

An image is scored as float32 [3, H, W] clamped to [0, 1] (uint8 [H, W, 3] as value / 255); PSNR and
SSIM per image (data range 1), LPIPS when a model is given and the images reach its 31 px minimum (NaN
below); a mean over images or windows keeps the finite values (`metrics.mean_finite`: a perfect
render's infinite PSNR must not poison it). Track errors are `tracking.py`'s."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.metrics import mean_finite, psnr, ssim
from dgslrm_ros.render import render, render_instant


def scored_images(images: Tensor | np.ndarray) -> Tensor:
    """Images as they are scored: float [..., 3, H, W] or uint8 [..., H, W, 3] -> [M, 3, H, W] float32 in [0, 1]."""
    if isinstance(images, np.ndarray):
        from dgslrm_ros.convert.image import rgb8_to_frames

        images = torch.from_numpy(rgb8_to_frames(images))
    return images.detach().float().clamp(0, 1).reshape(-1, *images.shape[-3:])


def score_images(pred: Tensor | np.ndarray, target: Tensor | np.ndarray, lpips=None) -> dict[str, list[float]]:
    """PSNR / SSIM (and LPIPS with `lpips`, a loaded metrics.lpips.LPIPS) of each image pair -> metric -> M values."""
    pred, target = scored_images(pred), scored_images(target).to(pred.device)
    out = {"psnr": psnr(pred, target).tolist(), "ssim": ssim(pred, target).tolist()}
    if lpips is not None:
        from dgslrm_ros.metrics.lpips import MIN_SIDE

        with torch.no_grad():
            big = min(pred.shape[-2:]) >= MIN_SIDE
            out["lpips"] = lpips(pred, target).tolist() if big else [float("nan")] * pred.shape[0]
    return out


def mean_scores(pred: Tensor | None, target: Tensor | None, prefix: str = "") -> dict[str, float]:
    """Mean PSNR / SSIM over image pairs, keys prefixed (`input_psnr`...); NaN when there are none (pred None)."""
    scores = score_images(pred, target) if pred is not None else {"psnr": [], "ssim": []}
    return {prefix + name: mean_finite(values) for name, values in scores.items()}


@dataclass
class ScoreLog:
    """Scores gathered over renders or windows (metric -> values, in order); `mean` by the rule above."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, scores: Mapping[str, Iterable[float]]) -> None:
        for name, values in scores.items():
            self.values.setdefault(name, []).extend(values)

    @property
    def count(self) -> int:  # scored images
        return len(self.values.get("psnr", ()))

    def mean(self) -> dict[str, float]:
        return {name: mean_finite(values) for name, values in self.values.items()}


def render_views(gaussians: Gaussians | DeformableGaussians, world_T_cam: Tensor, K: Tensor, height: int, width: int,
                 renderer: str = "auto", frame: float | None = None) -> Tensor:
    """One instant seen from V cameras (world_T_cam [V, 4, 4], K [V, 3, 3] at height x width) -> rgb [V, 3, H,
    W] float32 on the CPU in [0, 1], as scored and shown: a static set, or deformable Gaussians at window
    `frame` drawn as every renderer of the project draws them (render.render_instant)."""
    device, dtype = gaussians.means.device, gaussians.means.dtype
    poses, intrinsics = world_T_cam.to(device, dtype), K.to(device, dtype)
    with torch.no_grad():
        if isinstance(gaussians, DeformableGaussians):
            if frame is None:
                raise ValueError("render_views: deformable Gaussians need the window frame to draw")
            rgb = render_instant(gaussians, frame, poses, intrinsics, width, height, backend=renderer).rgb
        else:
            rgb = render(gaussians, poses, intrinsics, width, height, backend=renderer).rgb
    return rgb.float().clamp(0, 1).cpu()


def score_views(gaussians: Gaussians | DeformableGaussians, world_T_cam: Tensor, K: Tensor,
                targets: Tensor | np.ndarray, renderer: str = "auto",
                frame: float | None = None) -> tuple[Tensor, dict[str, list[float]]]:
    """Novel views: render_views at the targets' cameras (targets [V, 3, H, W] or uint8) -> (renders, scores)."""
    targets = scored_images(targets)
    renders = render_views(gaussians, world_T_cam, K, targets.shape[-2], targets.shape[-1], renderer, frame)
    return renders, score_images(renders, targets)
