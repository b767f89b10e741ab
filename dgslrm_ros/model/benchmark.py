"""`dgslrm bench --model`: parameters, tokens, forward (and train-step) time per window of each preset.

CUDA runs under bf16 autocast (as training and the node do) and also measures the device's own bf16
matmul rate, so the model's achieved TFLOP/s can be read as a fraction of what the GPU can do.
The CPU runs fp32; the paper preset (~8 TFLOP per window) runs there only without --quick.
"""
from __future__ import annotations

import math
import resource
from contextlib import nullcontext

import torch

from dgslrm_ros.core.timing import median_ms
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.dgslrm import DGSLRM, window_cues


def synthetic_window(config: ModelConfig, batch: int = 1, device: str | torch.device = "cpu",
                     references: int | None = None) -> dict[str, torch.Tensor]:
    """Random frames on a short sideways camera path (inputs with the right shapes and sane geometry)."""
    frames_count, size = config.window_frames, config.image_size
    refs = config.num_reference_frames if references is None else references

    def cameras(count: int, start: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        K = torch.tensor([[size * 1.0, 0.0, size / 2], [0.0, size * 1.0, size / 2], [0.0, 0.0, 1.0]], device=device)
        world_T_cam = torch.eye(4, device=device).repeat(batch, count, 1, 1)
        world_T_cam[..., 0, 3] = torch.linspace(-0.2, 0.2, count, device=device)
        stamps = start + torch.arange(count, device=device, dtype=torch.float32)[None].repeat(batch, 1) / 30.0
        return K.expand(batch, count, 3, 3), world_T_cam, stamps

    K, world_T_cam, timestamps = cameras(frames_count, 0.0)
    window = dict(frames=torch.rand(batch, frames_count, 3, size, size, device=device), K=K,
                  world_T_cam=world_T_cam, timestamps=timestamps)
    if refs:
        ref_K, ref_pose, ref_stamps = cameras(refs, -5.0)
        window.update(ref_frames=torch.rand(batch, refs, 3, size, size, device=device), ref_K=ref_K,
                      ref_world_T_cam=ref_pose, ref_timestamps=ref_stamps)
    return window


def forward_flops(config: ModelConfig) -> float:
    """Multiply-adds x 2 of one forward on the preset's nominal window (linears + attention scores)."""
    c = config
    tokens = c.num_tokens()
    window_tokens = c.num_tokens(reference_frames=0)
    mlp = int(round(c.width * c.mlp_ratio))
    embed = tokens * c.keyframe_stride * 10 * c.patch_size**2 * c.width
    blocks = c.layers * (tokens * (4 * c.width**2 + 2 * c.width * mlp) + 2 * tokens**2 * c.width)
    head = window_tokens * (c.width * c.hidden + c.hidden * c.head_channels * c.patch_size**2)
    return 2.0 * (embed + blocks + head)


def matmul_tflops(device: str, quick: bool) -> float:
    """The device's sustained bf16 matmul rate (the ceiling the model's figure is compared with)."""
    n = 4096 if quick else 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    ms = median_ms(lambda: a @ b, device, warmup=3, repeats=10 if quick else 30)
    return 2.0 * n**3 / (ms * 1e-3) / 1e12


def _bench_preset(name: str, device: str, quick: bool) -> dict:
    config = ModelConfig.preset(name)
    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    model = DGSLRM(config).to(device)
    window = synthetic_window(config, device=device)
    if config.geometry_primed:  # the network alone: the cues have their own row (bench --geometry)
        window["cues"] = window_cues(window["frames"], window["K"], window["world_T_cam"], model.keyframe_index(device))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    heavy = name == "paper" and not cuda  # ~8 TFLOP in fp32 on a few CPU cores: run it once

    def forward() -> None:
        with torch.no_grad(), autocast:
            model(**window)

    def train_step() -> None:
        with autocast:
            prediction = model(**window)
        loss = prediction.depth.mean() + prediction.colors.mean() + prediction.offsets.abs().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model.eval()
    forward_ms = median_ms(forward, device, warmup=0 if heavy else 1, repeats=1 if heavy else (2 if quick else 5))
    row = {
        "preset": name,
        "parameters": model.num_parameters(),
        "tokens": config.num_tokens(),
        "image": config.image_size,
        "frames": config.window_frames,
        "precision": "bf16-autocast" if cuda else "fp32",
        "forward_ms": forward_ms,
        "forward_tflops": forward_flops(config) / (forward_ms * 1e-3) / 1e12,
    }
    if cuda:
        row["peak_forward_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if cuda or name != "paper":
        model.train()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        row["train_step_ms"] = median_ms(train_step, device, warmup=1, repeats=2 if quick else 3)
        if cuda:
            row["peak_train_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if not cuda:
        # Linux reports ru_maxrss in KiB; it is the process peak so far (monotonic across rows).
        row["process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del model, window
    return row


def run_model_benchmark(device: str = "cpu", quick: bool = False) -> list[dict]:
    """One row per preset (see the module docstring for what runs where)."""
    cuda = str(device).startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("run_model_benchmark: device 'cuda' requested but CUDA is not available; use --device cpu")
    presets = ["tiny", "small"] + (["paper"] if cuda or not quick else [])
    rows = [_bench_preset(name, str(device), quick) for name in presets]
    if cuda:
        peak = matmul_tflops(str(device), quick)
        for row in rows:
            row["matmul_bf16_tflops"] = peak
            row["fraction_of_matmul"] = row["forward_tflops"] / peak if peak > 0 and math.isfinite(peak) else float("nan")
    return rows
