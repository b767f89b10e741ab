"""Test-time refinement: a few Adam steps on a window's own input frames, from the feed-forward result.

The same optimiser also serves the *optimised* baseline of `dgslrm eval` (started from depth-unprojected
pixels instead of the network), so both numbers describe one representation and one procedure.

Parameters are optimised in unconstrained form (log scale, logit opacity and colour, raw quaternion,
means and per-frame offsets). Learning rates of positions are relative to the scene extent seen from
the cameras, so the same defaults work in metres or in the model's normalised frame.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.rotations import quat_normalize
from dgslrm_ros.evaluation.config import RefineConfig
from dgslrm_ros.evaluation.scoring import mean_scores
from dgslrm_ros.metrics import ssim
from dgslrm_ros.render import render_at_instants


def _logit(x: Tensor, eps: float = 1e-4) -> Tensor:
    x = x.clamp(eps, 1.0 - eps)
    return torch.log(x) - torch.log1p(-x)


def _check_window(gaussians: DeformableGaussians, frames: Tensor, K: Tensor, world_T_cam: Tensor) -> None:
    t = gaussians.num_frames
    if frames.dim() != 4 or frames.shape[0] != t or frames.shape[1] != 3:
        raise ValueError(f"refine: expected frames [T={t}, 3, H, W] (one per window frame), got {tuple(frames.shape)}")
    if tuple(K.shape) != (t, 3, 3) or tuple(world_T_cam.shape) != (t, 4, 4):
        raise ValueError(
            f"refine: expected K [T={t}, 3, 3] and world_T_cam [T={t}, 4, 4] in the Gaussians' frame, got "
            f"{tuple(K.shape)} and {tuple(world_T_cam.shape)}"
        )


@torch.no_grad()
def window_psnr(gaussians: DeformableGaussians, frames: Tensor, K: Tensor, world_T_cam: Tensor,
                background: float = 0.0) -> float:
    """Mean PSNR (dB) of the window's own frames re-rendered from their cameras (scoring.py's rule)."""
    frame_index = torch.arange(gaussians.num_frames, device=world_T_cam.device)
    rendered, _ = render_at_instants(gaussians, frame_index, world_T_cam, K, *frames.shape[-2:], background)
    return mean_scores(rendered, frames)["psnr"]


class _Params(torch.nn.Module):
    """Unconstrained parameters of a DeformableGaussians, and the way back."""

    def __init__(self, g: DeformableGaussians) -> None:
        super().__init__()
        self.means = torch.nn.Parameter(g.means.detach().clone())
        self.offsets = torch.nn.Parameter(g.offsets.detach().clone())
        self.quats = torch.nn.Parameter(g.quats.detach().clone())
        self.log_scales = torch.nn.Parameter(g.scales.detach().clamp_min(1e-8).log())
        self.opacity_logits = torch.nn.Parameter(_logit(g.opacities.detach()))
        self.color_logits = torch.nn.Parameter(_logit(g.colors.detach()))
        self.timestamps, self.keyframe_index = g.timestamps, g.keyframe_index
        self.drawing = g.drawing()

    def gaussians(self) -> DeformableGaussians:
        return DeformableGaussians(
            means=self.means, quats=quat_normalize(self.quats), scales=self.log_scales.exp(),
            opacities=torch.sigmoid(self.opacity_logits), colors=torch.sigmoid(self.color_logits),
            offsets=self.offsets, timestamps=self.timestamps, keyframe_index=self.keyframe_index,
            **self.drawing,
        )


def scene_extent(gaussians: DeformableGaussians, world_T_cam: Tensor) -> float:
    """Median distance of the Gaussians from the mean camera centre (sets position step sizes)."""
    centre = world_T_cam[:, :3, 3].mean(0)
    return float((gaussians.means.detach() - centre).norm(dim=-1).median().clamp_min(1e-6))


def optimize_gaussians(gaussians: DeformableGaussians, frames: Tensor, K: Tensor, world_T_cam: Tensor, iters: int,
                       config: RefineConfig = RefineConfig(), eval_every: int = 0) -> tuple[DeformableGaussians, list[dict]]:
    """Adam on the photometric loss of the window's own frames -> (optimised Gaussians, curve).

    frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4] in the Gaussians' frame. The curve lists
    {"iter", "seconds", "psnr"} at iteration 0, every `eval_every` iterations (0 = only the ends) and
    at the end; seconds count optimisation time only, not the PSNR evaluations.
    """
    _check_window(gaussians, frames, K, world_T_cam)
    if iters < 0:
        raise ValueError(f"optimize_gaussians: iters must be >= 0, got {iters}")
    frames, K, world_T_cam = frames.to(gaussians.dtype), K.to(gaussians.dtype), world_T_cam.to(gaussians.dtype)
    height, width = frames.shape[-2:]
    curve = [{"iter": 0, "seconds": 0.0, "psnr": window_psnr(gaussians, frames, K, world_T_cam, config.background)}]
    if iters == 0:
        return gaussians.detach(), curve
    extent = scene_extent(gaussians, world_T_cam)
    with torch.enable_grad():
        params = _Params(gaussians)
        optimizer = torch.optim.Adam([
            {"params": [params.means, params.offsets], "lr": config.position_lr * extent},
            {"params": [params.color_logits], "lr": config.color_lr},
            {"params": [params.opacity_logits], "lr": config.opacity_lr},
            {"params": [params.log_scales], "lr": config.scale_lr},
            {"params": [params.quats], "lr": config.quat_lr},
        ], eps=1e-15)
        generator = torch.Generator().manual_seed(config.seed)
        num_frames = gaussians.num_frames
        elapsed = 0.0
        for it in range(1, iters + 1):
            start = time.perf_counter()
            if 0 < config.views_per_step < num_frames:
                chosen = torch.randperm(num_frames, generator=generator)[: config.views_per_step]
            else:
                chosen = torch.arange(num_frames)
            chosen = chosen.to(world_T_cam.device)
            rendered, _ = render_at_instants(params.gaussians(), chosen, world_T_cam[chosen], K[chosen], height, width,
                                             config.background)
            target = frames[chosen]
            loss = (rendered - target).square().mean() + config.ssim_weight * (1.0 - ssim(rendered, target).mean())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            elapsed += time.perf_counter() - start
            if it == iters or (eval_every > 0 and it % eval_every == 0):
                current = params.gaussians().detach()
                curve.append({"iter": it, "seconds": elapsed,
                              "psnr": window_psnr(current, frames, K, world_T_cam, config.background)})
        return params.gaussians().detach(), curve


def refine_gaussians(gaussians: DeformableGaussians, frames: Tensor, K: Tensor, world_T_cam: Tensor, iters: int,
                     config: RefineConfig = RefineConfig()) -> DeformableGaussians:
    """Feed-forward Gaussians -> refined Gaussians after `iters` Adam steps on the window's own frames.

    frames [T, 3, H, W] in [0, 1], K [T, 3, 3], world_T_cam [T, 4, 4] expressed in the same frame as the
    Gaussians (metric world or normalised). iters = 0 returns the input unchanged (detached).
    """
    refined, _ = optimize_gaussians(gaussians, frames, K, world_T_cam, iters, config)
    return refined


def save_curve(curve: list[dict], out_dir: str | Path, name: str = "refine_curve") -> tuple[Path, Path]:
    """Write the quality/time curve as JSON and a PNG (PSNR vs iterations and vs seconds)."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / f"{name}.json", out_dir / f"{name}.png"
    json_path.write_text(json.dumps(curve, indent=2))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].plot([c["iter"] for c in curve], [c["psnr"] for c in curve], marker="o")
    axes[0].set_xlabel("refinement iterations")
    axes[1].plot([c["seconds"] for c in curve], [c["psnr"] for c in curve], marker="o", color="tab:orange")
    axes[1].set_xlabel("refinement time [s]")
    for ax in axes:
        ax.set_ylabel("input-view PSNR [dB]")
        ax.grid(alpha=0.3)
    fig.suptitle("Test-time refinement: quality vs cost")
    save_figure(fig, png_path)
    return json_path, png_path
