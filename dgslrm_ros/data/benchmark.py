"""Synthetic training samples per second (`dgslrm bench --data`).

Scenes are ray cast on the CPU whatever the training device, so the figure that matters is whether
the loader keeps a training step fed: compare samples/s here with steps/s of the model benchmark.
"""
from __future__ import annotations

import time

from dgslrm_ros.data.dataset import SyntheticWindowDataset, WindowDatasetConfig, make_loader


def _measure(config: WindowDatasetConfig, num_workers: int, num_samples: int, warmup: int) -> dict:
    # Seeds far into the training range so the cache of nothing in particular is warm; deterministic anyway.
    dataset = SyntheticWindowDataset(config, num_samples=num_samples + warmup, split="train", seed_offset=500_000)
    loader = make_loader(dataset, batch_size=1, num_workers=num_workers)
    iterator = iter(loader)
    start = time.perf_counter()
    for _ in range(warmup):  # worker start-up and first-call costs are not the steady state
        next(iterator)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(num_samples):
        next(iterator)
    elapsed = time.perf_counter() - start
    del iterator, loader
    return {
        "size_px": config.height, "frames": config.window_frames, "workers": num_workers,
        "samples": num_samples, "samples_per_s": num_samples / elapsed,
        "ms_per_sample": 1000 * elapsed / num_samples, "startup_s": first,
    }


def run_data_benchmark(device: str = "cpu", quick: bool = False) -> list[dict]:
    """Rows of samples/s at 64 and 128 px with 0 and 2 loader workers (default 24-frame windows).

    Generation always runs on one torch thread per process (see sequence.single_threaded).
    `device` is reported only: ground truth is ray cast on the CPU.
    """
    rows = []
    for size in (64, 128):
        config = WindowDatasetConfig(height=size, width=size)
        count = (2 if quick else 8) if size == 64 else (1 if quick else 4)
        for workers in (0, 2):
            row = _measure(config, workers, count, warmup=1 if workers == 0 else 2)
            row["train_device"] = device
            rows.append(row)
    return rows
