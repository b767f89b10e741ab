"""A small synthetic window for the viewer tests: a red cluster moving along +x beside a static green one."""
from __future__ import annotations

import pytest
import torch

from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.rotations import quat_normalize

RED = (0.9, 0.1, 0.1)
GREEN = (0.1, 0.8, 0.1)
RED_CENTRE = (-0.6, 0.0, 0.0)
GREEN_CENTRE = (0.6, 0.0, 0.0)
TRAVEL_X = 0.3  # metres the red cluster moves over the window


def make_window(per_cluster: int = 300, frames: int = 5, seed: int = 0) -> DeformableGaussians:
    """Two clusters of `per_cluster` Gaussians, `frames` frames 0.1 s apart on absolute stamps; the red
    one moves TRAVEL_X along +x with a bend (non-linear, so interpolation errors would show)."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * per_cluster
    centres = torch.tensor([RED_CENTRE] * per_cluster + [GREEN_CENTRE] * per_cluster)
    means = centres + 0.2 * torch.randn(n, 3, generator=g).clamp(-1.5, 1.5)
    colors = torch.tensor([RED] * per_cluster + [GREEN] * per_cluster)
    progress = torch.linspace(0, 1, frames) ** 2  # accelerating
    offsets = torch.zeros(n, frames, 3)
    offsets[:per_cluster, :, 0] = TRAVEL_X * progress
    offsets[:per_cluster, :, 2] = 0.05 * torch.sin(torch.linspace(0, 3.14, frames))
    return DeformableGaussians(
        means=means, quats=quat_normalize(torch.randn(n, 4, generator=g)),
        scales=torch.rand(n, 3, generator=g) * 0.04 + 0.02, opacities=torch.full((n,), 0.9),
        colors=colors, offsets=offsets, timestamps=100.0 + 0.1 * torch.arange(frames, dtype=torch.float64),
        keyframe_index=torch.zeros(n, dtype=torch.long),
    )


@pytest.fixture
def window_file(tmp_path):
    return make_window().save(tmp_path / "window_0000.safetensors")


@pytest.fixture
def synthetic_window():
    return make_window()
