"""Warm-up + cosine schedule shape."""
import pytest

from dgslrm_ros.training.schedule import lr_at


def test_warmup_is_linear_then_cosine_decays_monotonically_to_floor():
    base, warmup, total = 1e-3, 10, 110
    lrs = [lr_at(s, base, warmup, total, 0.1) for s in range(total + 20)]
    assert lrs[0] == pytest.approx(base / warmup)  # first step already learns
    assert lrs[warmup - 1] == pytest.approx(base)
    assert all(b > a for a, b in zip(lrs[:warmup - 1], lrs[1:warmup]))  # strictly rising warm-up
    decay = lrs[warmup:total]
    assert decay[0] == pytest.approx(base)
    assert all(b <= a for a, b in zip(decay, decay[1:]))  # monotone decay
    midpoint = lr_at(warmup + (total - warmup) // 2, base, warmup, total, 0.1)
    assert midpoint == pytest.approx(0.1 * base + 0.5 * 0.9 * base, rel=1e-6)  # cosine half-way
    assert all(lr == pytest.approx(0.1 * base) for lr in lrs[total:])  # stays at the floor


def test_no_warmup_and_bad_arguments():
    assert lr_at(0, 1.0, 0, 10, 0.0) == pytest.approx(1.0)
    assert lr_at(10, 1.0, 0, 10, 0.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="base_lr"):
        lr_at(0, -1.0, 0, 10)
