"""Image and track metrics shared by training logs, `dgslrm eval`, refinement and the replay tool.

Below both training (losses) and evaluation (scores), so neither imports the other for them; LPIPS is
`metrics/lpips.py`.

SSIM is the standard Wang et al. (2004) form with an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
C2 = (0.03 L)^2 and no padding (only windows that fit inside the image count), the setting of
skimage's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)` and of
pytorch-msssim, so our numbers compare with published ones. Pure torch and differentiable, so the
training loss uses the same function.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.filters import gaussian_window


def _check_images(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 3 or a.shape[-3] not in (1, 3):
        raise ValueError(f"{name}: expected [..., C, H, W] with C in (1, 3), got {tuple(a.shape)}")


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """[..., C, H, W] x2 -> [...] mean squared error per image."""
    _check_images("mse", pred, target)
    return (pred - target).square().flatten(-3).mean(-1)


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """[..., C, H, W] x2 -> [...] PSNR in dB per image (inf for identical images)."""
    return 10.0 * torch.log10(data_range**2 / mse(pred, target))


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5) -> Tensor:
    """[..., C, H, W] x2 -> [...] mean SSIM per image (channels averaged); differentiable.

    Images smaller than the window use a window shrunk to the smaller side (odd), so tiny training
    renders still get a structural term instead of an error.
    """
    _check_images("ssim", pred, target)
    lead, (c, h, w) = pred.shape[:-3], pred.shape[-3:]
    size = min(window, h, w)
    size -= 1 - size % 2  # keep it odd
    x = pred.reshape(-1, c, h, w)
    y = target.reshape(-1, c, h, w).to(x.dtype)
    g = gaussian_window(size, sigma, x.dtype, x.device)
    kernel_h = g.view(1, 1, size, 1).expand(c, 1, size, 1)
    kernel_w = g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(z: Tensor) -> Tensor:  # separable Gaussian, valid region only
        return F.conv2d(F.conv2d(z, kernel_h, groups=c), kernel_w, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(1).reshape(lead)


def track_errors(pred_points: Tensor, gt_points: Tensor, valid: Tensor | None = None) -> Tensor:
    """End-point errors [M] (same units as the points) of the valid entries of [..., 3] point sets."""
    if pred_points.shape != gt_points.shape or pred_points.shape[-1] != 3:
        raise ValueError(
            f"track_errors: expected two [..., 3] tensors of one shape, got {tuple(pred_points.shape)} "
            f"and {tuple(gt_points.shape)}"
        )
    err = (pred_points - gt_points).norm(dim=-1)  # [...]
    mask = torch.isfinite(err)
    if valid is not None:
        mask = mask & valid.to(torch.bool)
    return err[mask]


def track_metrics(errors: Tensor, thresholds: dict[str, float]) -> dict[str, float]:
    """EPE mean/median and the fraction of errors under each named threshold (same units)."""
    if errors.numel() == 0:
        nan = float("nan")
        return {"epe": nan, "epe_median": nan, **{f"within_{k}": nan for k in thresholds}}
    out = {"epe": float(errors.mean()), "epe_median": float(errors.median())}
    for name, value in thresholds.items():
        out[f"within_{name}"] = float((errors < value).float().mean())
    return out


def mean_finite(values: Iterable[float | None]) -> float:
    """Mean over the finite values (PSNR of a perfect render is inf, a score that could not be taken None:
    neither should poison a mean); NaN when none is finite."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")
