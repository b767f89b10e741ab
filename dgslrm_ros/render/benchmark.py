"""Renderer timing for `dgslrm bench --renderer`: ms per frame, forward and forward+backward.

Scenes are random clouds in the view frustum with footprints of roughly 0.2 to 2 px (one Gaussian per
pixel or so, like the model's output at 256^2), so the numbers track what training and the node pay.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from dgslrm_ros.core.gaussians import Gaussians
from dgslrm_ros.core.timing import median_ms
from dgslrm_ros.render import render
from dgslrm_ros.render.rasterize_gsplat import gsplat_importable

FULL_SIZES = (64, 128, 256)
FULL_COUNTS = (10_000, 50_000, 200_000)
QUICK_SIZES = (64, 128)
QUICK_COUNTS = (10_000, 50_000)
FIELD_OF_VIEW_DEG = 60.0


def random_frustum_scene(num_gaussians: int, device: str | torch.device, seed: int = 0) -> Gaussians:
    """Gaussians spread over a 60-degree frustum between 2 and 6 m, all in front of the camera."""
    gen = torch.Generator().manual_seed(seed)
    depth = 2.0 + 4.0 * torch.rand(num_gaussians, generator=gen)
    half_extent = math.tan(math.radians(FIELD_OF_VIEW_DEG / 2))
    xy = (2 * torch.rand(num_gaussians, 2, generator=gen) - 1) * half_extent * depth[:, None]
    log_scale = math.log(0.003) + (math.log(0.03) - math.log(0.003)) * torch.rand(num_gaussians, 3, generator=gen)
    return Gaussians(
        means=torch.cat([xy, depth[:, None]], dim=-1),
        quats=torch.randn(num_gaussians, 4, generator=gen),
        scales=log_scale.exp(),
        opacities=0.05 + 0.9 * torch.rand(num_gaussians, generator=gen),
        colors=torch.rand(num_gaussians, 3, generator=gen),
    ).to(device=device)


def camera_for(size: int, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Identity pose and a square pinhole with the benchmark's field of view: [1, 4, 4], [1, 3, 3]."""
    focal = 0.5 * size / math.tan(math.radians(FIELD_OF_VIEW_DEG / 2))
    K = torch.tensor([[[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]]], device=device)
    return torch.eye(4, device=device)[None], K


def time_render(gaussians: Gaussians, size: int, backend: str, repeats: int) -> tuple[float, float]:
    """Median ms of one forward, and of one forward+backward, after a warm-up run."""
    device = gaussians.device
    world_T_cam, K = camera_for(size, device)
    leaves = {name: getattr(gaussians, name).detach().clone().requires_grad_(True)
              for name in ("means", "quats", "scales", "opacities", "colors")}
    trainable = Gaussians(**leaves)

    def forward() -> None:
        with torch.no_grad():
            render(gaussians, world_T_cam, K, size, size, backend=backend)

    def forward_backward() -> None:
        out = render(trainable, world_T_cam, K, size, size, backend=backend)
        (out.rgb.sum() + out.alpha.sum()).backward()

    # one warm-up call each: the allocator, gsplat's kernels
    return median_ms(forward, device, 1, repeats), median_ms(forward_backward, device, 1, repeats)


def run_renderer_benchmark(device: str, quick: bool, *, sizes: Sequence[int] | None = None,
                           counts: Sequence[int] | None = None, repeats: int | None = None) -> list[dict]:
    """Rows of ms per frame for each backend available on `device`, image size and Gaussian count."""
    device = torch.device(device)
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    counts = counts or (QUICK_COUNTS if quick else FULL_COUNTS)
    repeats = repeats or (1 if quick else 3)
    backends = ["torch"] + (["gsplat"] if device.type == "cuda" and gsplat_importable() else [])
    rows = []
    for count in counts:
        gaussians = random_frustum_scene(count, device)
        for size in sizes:
            for backend in backends:
                forward_ms, forward_backward_ms = time_render(gaussians, size, backend, repeats)
                rows.append({"backend": backend, "size": size, "gaussians": count,
                             "forward_ms": forward_ms, "forward_backward_ms": forward_backward_ms})
    return rows
