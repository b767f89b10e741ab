"""`dgslrm bench --geometry`: what the classical cues cost per window, stage by stage.

A synthetic 24-frame window (textured planes, a translating camera) at the node's resolutions; the
cues are computed once per keyframe window in the node, so these are per-window figures.
"""
from __future__ import annotations

import torch

from dgslrm_ros.geometry import cpu_kernels
from dgslrm_ros.geometry.cues import CueConfig, compute_cues


def benchmark_window(size: int, frames: int = 24, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A posed window of a textured scene: frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4]."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.arange(size, dtype=torch.float32)[:, None]
    cols = torch.arange(size, dtype=torch.float32)[None, :]
    phases = torch.rand(3, generator=generator) * 6.28
    base = torch.stack([0.5 + 0.4 * torch.sin(cols / (3 + c) + rows / (5 + 2 * c) + phases[c]) for c in range(3)])
    images = torch.stack([base.roll(shifts=n // 2, dims=2) for n in range(frames)]).clamp(0, 1)
    K = torch.tensor([[size * 0.9, 0.0, size / 2], [0.0, size * 0.9, size / 2], [0.0, 0.0, 1.0]]).expand(frames, 3, 3)
    poses = torch.eye(4).repeat(frames, 1, 1)
    poses[:, 0, 3] = torch.linspace(0.0, 0.3, frames)
    return {"frames": images.to(device), "K": K.to(device), "world_T_cam": poses.to(device)}


def run_geometry_benchmark(device: str = "cpu", quick: bool = False) -> list[dict]:
    """Rows: image size, which code ran the sweep, static fit, chaining and lifting (`C` kernels or `torch`),
    ms per window for each cue stage and in total."""
    config = CueConfig()
    rows = []
    for size in ((64,) if quick else (64, 128)):
        window = benchmark_window(size, device=device)
        keyframes = torch.arange(0, 24, 4, device=device)
        timings: dict[str, list[float]] = {}
        for _ in range(1 if quick else 3):
            stages: dict[str, float] = {}
            compute_cues(window["frames"], window["K"], window["world_T_cam"], keyframes, config,
                         stage_seconds=stages)
            stages["total"] = sum(stages.values())
            for name, seconds in stages.items():
                timings.setdefault(name, []).append(seconds)
        row = {"size_px": size, "kernels": "C" if cpu_kernels.runs_on(window["frames"]) else "torch"}
        row.update({f"{name}_ms": 1e3 * min(values) for name, values in timings.items()})
        rows.append(row)
    return rows
