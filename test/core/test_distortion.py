"""plumb_bob distortion: points round trip, and image undistortion by remap."""
import numpy as np
import pytest
import torch

from dgslrm_ros.core.cameras import pixel_centers
from dgslrm_ros.core.distortion import (
    distort_normalized, distort_points, undistort_image, undistort_points, undistortion_grid,
)

DT = torch.float64
K = torch.tensor([[200.0, 0.0, 160.5], [0.0, 210.0, 120.5], [0.0, 0.0, 1.0]], dtype=DT)
D = [-0.28, 0.09, 0.001, -0.0015, -0.01]  # a typical wide-ish lens


def test_known_radial_value():
    xy = torch.tensor([[0.3, 0.4]], dtype=DT)  # r^2 = 0.25
    out = distort_normalized(xy, [0.1, 0.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(out, xy * 1.025)
    tangential = distort_normalized(xy, [0.0, 0.0, 0.01, 0.0])  # 4 coefficients accepted
    torch.testing.assert_close(tangential, xy + torch.tensor([[2 * 0.01 * 0.12, 0.01 * (0.25 + 0.32)]], dtype=DT))


def test_points_round_trip():
    uv = pixel_centers(240, 320, dtype=DT)[::20, ::20].reshape(-1, 2)
    distorted = distort_points(uv, K, D)
    assert float((distorted - uv).abs().max()) > 5.0  # the lens does move corners by pixels
    torch.testing.assert_close(undistort_points(distorted, K, D), uv, atol=1e-6, rtol=0)
    torch.testing.assert_close(distort_points(undistort_points(uv, K, D), K, D), uv, atol=1e-6, rtol=0)


def test_zero_distortion_is_identity_and_bad_coefficients_are_refused():
    uv = torch.rand(5, 2, dtype=DT) * 100
    torch.testing.assert_close(undistort_points(uv, K, [0.0] * 5), uv)
    torch.testing.assert_close(distort_points(uv, K, [0.0] * 8), uv)  # rational with zero extras
    with pytest.raises(ValueError, match="plumb_bob"):
        distort_points(uv, K, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"pixel coordinates \[\.\.\., 2\]"):
        distort_points(torch.zeros(4, 3, dtype=DT), K, D)


def test_undistort_image_moves_a_feature_to_its_pinhole_position():
    height, width = 240, 320
    ideal = torch.tensor([[260.0, 60.0]], dtype=DT)  # where a pinhole camera would see a bright dot
    seen_at = distort_points(ideal, K, D)[0]  # where the real lens puts it
    centers = pixel_centers(height, width, dtype=DT)
    blob = torch.exp(-((centers - seen_at) ** 2).sum(-1) / (2 * 3.0**2))
    image = (blob[..., None] * torch.tensor([255.0, 128.0, 0.0], dtype=DT)).round().numpy().astype(np.uint8)
    out = undistort_image(image, K, D)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == image.shape
    weights = torch.from_numpy(out[..., 0].astype(np.float64))
    centroid = (centers * (weights / weights.sum())[..., None]).sum((0, 1))
    torch.testing.assert_close(centroid, ideal[0], atol=0.3, rtol=0)
    # torch float input gives a torch float output; a precomputed grid gives the same result
    image_t = torch.from_numpy(image).float() / 255
    grid = undistortion_grid(K, D, height, width)
    out_t = undistort_image(image_t, K, D, grid=grid)
    assert out_t.dtype == torch.float32
    torch.testing.assert_close(out_t, undistort_image(image_t, K, D), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="grid is for"):
        undistort_image(image_t[:100], K, D, grid=grid)


def test_zero_distortion_image_is_unchanged():
    image = np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    Kz = torch.tensor([[20.0, 0, 8.0], [0, 20.0, 6.0], [0, 0, 1]], dtype=DT)
    np.testing.assert_array_equal(undistort_image(image, Kz, [0.0] * 5), image)
    gray = image[..., 0]
    np.testing.assert_array_equal(undistort_image(gray, Kz, [0.0] * 5), gray)
