"""Small scenes shared by the renderer tests (camera at the origin looking down +z)."""
from types import SimpleNamespace

import pytest
import torch

from dgslrm_ros.core.gaussians import Gaussians

DT = torch.float64


def pinhole(focal: float, width: int, height: int, num_cameras: int = 1, dtype=DT) -> torch.Tensor:
    K = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(num_cameras, 3, 3).clone()  # [C, 3, 3]


def identity_poses(num_cameras: int = 1, dtype=DT) -> torch.Tensor:
    return torch.eye(4, dtype=dtype).expand(num_cameras, 4, 4).clone()  # [C, 4, 4]


def make_gaussians(means, scales, opacities, colors, quats=None, dtype=DT) -> Gaussians:
    means = torch.as_tensor(means, dtype=dtype).reshape(-1, 3)
    n = means.shape[0]
    scales = torch.as_tensor(scales, dtype=dtype)
    scales = scales.reshape(-1, 1).expand(n, 3).clone() if scales.numel() in (1, n) else scales.reshape(n, 3)
    opacities = torch.as_tensor(opacities, dtype=dtype).reshape(-1).expand(n).clone()
    if quats is None:
        quats = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype).expand(n, 4).clone()
    return Gaussians(means=means, quats=torch.as_tensor(quats, dtype=dtype).reshape(n, 4), scales=scales,
                     opacities=opacities,
                     colors=torch.as_tensor(colors, dtype=dtype).reshape(n, 3))


def random_gaussians(n: int, seed: int = 0, depth: float = 4.0, spread: float = 1.0, dtype=DT,
                     max_opacity: float = 0.95, scale_range=(0.03, 0.25)) -> Gaussians:
    """A random cloud in front of the identity camera, anisotropic and rotated."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * torch.tensor([spread, spread, 0.5], dtype=dtype)
    means[:, 2] += depth
    low, high = scale_range
    return Gaussians(
        means=means,
        quats=torch.randn(n, 4, generator=g, dtype=dtype),
        scales=low + (high - low) * torch.rand(n, 3, generator=g, dtype=dtype),
        opacities=0.05 + (max_opacity - 0.05) * torch.rand(n, generator=g, dtype=dtype),
        colors=torch.rand(n, 3, generator=g, dtype=dtype),
    )


@pytest.fixture
def scenes() -> SimpleNamespace:
    """The helpers above, for test modules (importlib import mode gives tests no shared package)."""
    return SimpleNamespace(pinhole=pinhole, identity_poses=identity_poses, make_gaussians=make_gaussians,
                           random_gaussians=random_gaussians)


@pytest.fixture(autouse=True)
def single_thread():
    """The renderer tests are many small kernels: on a shared 2-core machine, OpenMP threads waiting
    on each other cost more than they give (6x slower measured), so run them on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
