"""PSNR / SSIM / track metrics against values known in closed form or from an independent reference."""
import math

import numpy as np
import pytest
import torch

from dgslrm_ros.metrics import mean_finite, psnr, ssim, track_errors, track_metrics


def test_psnr_identical_is_inf_and_known_noise_gives_known_value():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16) * 0.8 + 0.1
    assert torch.isinf(psnr(image, image)).all()
    sigma = 0.05
    signs = torch.where(torch.rand_like(image) < 0.5, -1.0, 1.0)
    noisy = image + sigma * signs  # squared error exactly sigma^2 everywhere
    expected = -10.0 * math.log10(sigma**2)  # 26.0206 dB
    assert torch.allclose(psnr(noisy, image), torch.full((2,), expected), atol=1e-3)


def test_ssim_identical_is_one_and_constant_images_match_closed_form():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 24, 24)
    assert torch.allclose(ssim(image, image), torch.ones(1), atol=1e-5)
    a, b = 0.2, 0.7
    x, y = torch.full((1, 3, 24, 24), a), torch.full((1, 3, 24, 24), b)
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # structure terms are 1 (zero variance)
    assert float(ssim(x, y)) == pytest.approx(expected, rel=1e-4)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Independent numpy SSIM: explicit 11x11 Gaussian window sums over every valid position."""
    coords = np.arange(11) - 5.0
    g = np.exp(-coords**2 / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                px, py = x[c, i:i + 11, j:j + 11], y[c, i:i + 11, j:j + 11]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
                cov = (w * px * py).sum() - mx * my
                values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_independent_reference_and_falls_with_noise():
    torch.manual_seed(1)
    x = torch.rand(3, 16, 16)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    ours = float(ssim(x[None], y[None]))
    assert ours == pytest.approx(_reference_ssim(x.double().numpy(), y.double().numpy()), abs=1e-5)
    noisier = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert float(ssim(x[None], noisier[None])) < ours < 1.0


def test_ssim_is_differentiable_and_checks_shapes():
    x = torch.rand(1, 3, 12, 12, requires_grad=True)
    (1 - ssim(x, torch.rand(1, 3, 12, 12))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_track_errors_and_thresholds():
    gt = torch.zeros(4, 3)
    pred = torch.tensor([[0.01, 0, 0], [0, 0.07, 0], [0, 0, 0.15], [float("nan"), 0, 0]])
    errors = track_errors(pred, gt)
    assert errors.shape == (3,)  # the NaN prediction is not counted
    metrics = track_metrics(errors, {"5cm": 0.05, "10cm": 0.10, "20cm": 0.20})
    assert metrics["epe"] == pytest.approx((0.01 + 0.07 + 0.15) / 3)
    assert metrics["within_5cm"] == pytest.approx(1 / 3)
    assert metrics["within_10cm"] == pytest.approx(2 / 3)
    assert metrics["within_20cm"] == pytest.approx(1.0)
    assert mean_finite([1.0, float("inf"), 3.0]) == 2.0
