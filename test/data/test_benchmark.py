from __future__ import annotations

from dgslrm_ros.data import benchmark
from dgslrm_ros.data.dataset import WindowDatasetConfig
from dgslrm_ros.data.scenes import SceneConfig


def test_measure_reports_positive_rates():
    config = WindowDatasetConfig(height=16, width=16, window_frames=4, scene=SceneConfig(num_objects=(1, 2)))
    row = benchmark._measure(config, num_workers=0, num_samples=2, warmup=1)
    assert row["samples"] == 2 and row["samples_per_s"] > 0 and row["size_px"] == 16
    product = row["ms_per_sample"] * row["samples_per_s"]
    assert abs(product - 1000) < 1e-6 * 1000
