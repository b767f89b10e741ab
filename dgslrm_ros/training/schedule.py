"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (nanoGPT's, as GS-LRM uses)."""
from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1) -> float:
    """Learning rate for optimizer step `step` (0-based).

    Warm-up ramps linearly to `base_lr` over `warmup_steps` (step 0 already gets a non-zero rate, so no
    step is wasted); cosine decay then reaches `min_lr_ratio * base_lr` at `total_steps` and stays there.
    """
    if base_lr <= 0 or total_steps <= 0 or warmup_steps < 0 or not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(
            f"lr_at: expected base_lr > 0, total_steps > 0, warmup_steps >= 0, 0 <= min_lr_ratio <= 1; "
            f"got {base_lr}, {total_steps}, {warmup_steps}, {min_lr_ratio}"
        )
    min_lr = base_lr * min_lr_ratio
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # in [0, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)
