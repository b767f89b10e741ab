"""Colour pre-compensation (geometry/classical.py): colours that the drawing's own blur turns back into
the image. The render-level check is test/model/test_classical_drawing.py; these pin the filter itself."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dgslrm_ros.geometry.classical import drawing_blur_px, precompensated_colors


def _drawing_blur(x: torch.Tensor) -> torch.Tensor:
    """An independent blur by the drawing's kernel: a dense 2D Gaussian of drawing_blur_px(), wide support."""
    sigma, radius = drawing_blur_px(), 6
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps[:, None] ** 2 + taps[None, :] ** 2) / sigma ** 2)
    kernel = (kernel / kernel.sum())[None, None]
    flat = x.reshape(-1, 1, *x.shape[-2:])
    return F.conv2d(F.pad(flat, (radius,) * 4, mode="replicate"), kernel).reshape(x.shape)


def test_the_drawing_blur_of_precompensated_colours_is_nearer_the_image():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 24, 24, generator=generator)  # [Kf, 3, H, W]: detail at the pixel scale
    error = lambda colours: float((_drawing_blur(colours) - image).abs().mean())
    raw, one, two = error(image), error(precompensated_colors(image, 1)), error(precompensated_colors(image, 2))
    assert one < 0.8 * raw and two < 0.9 * one, (raw, one, two)  # measured 0.151, 0.109, 0.083 (mean abs)


def test_flat_images_and_zero_terms_are_left_alone():
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(precompensated_colors(flat), flat, atol=1e-6)
    image = torch.rand(4, 3, 8, 8)
    assert precompensated_colors(image, 0) is image
    assert precompensated_colors(image[None]).shape == (1, 4, 3, 8, 8)

