"""Stage and benchmark timings that mean something on a GPU: wait for queued CUDA work before reading a clock.

Torch loads only for a CUDA device, so convert/'s numpy benchmark times with these too.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch


def synchronize(device: torch.device | str) -> None:
    """Block until `device` has run everything queued (a no-op on the CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def median_ms(run: Callable[[], object], device: torch.device | str, warmup: int = 1, repeats: int = 3) -> float:
    """Median milliseconds of run() over `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]
