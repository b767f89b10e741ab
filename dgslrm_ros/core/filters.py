"""Small image filters shared by layers that may not import each other (metrics' SSIM, geometry's colours)."""
from __future__ import annotations

import torch
from torch import Tensor


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """[size] normalised 1D Gaussian taps centred on the middle tap (size odd for a symmetric window)."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-coords.square() / (2.0 * sigma**2))
    return g / g.sum()
