"""Area-sampled synthetic frames (WindowDatasetConfig.pixel_samples): each pixel's colour is the mean of an
n x n grid of rays over its area, as a camera pixel integrates light, instead of one ray through its centre."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from dgslrm_ros.data.dataset import WindowDatasetConfig, make_window_sample
from dgslrm_ros.evaluation.evaluate import held_out_windows
from dgslrm_ros.model.config import ModelConfig

SMALL = WindowDatasetConfig(height=32, width=32, window_frames=8, keyframe_stride=4)


def test_two_rays_a_side_equal_the_double_resolution_render_averaged_2x2() -> None:
    """The 2x2 sub-pixel rays sit where the pixel centres of a render at twice the size are, so the two must
    agree exactly; the geometry (depth) stays the point-sampled centre ray's."""
    seed = 1_000_000
    area = make_window_sample(seed, dataclasses.replace(SMALL, pixel_samples=2))
    fine = make_window_sample(seed, dataclasses.replace(SMALL, height=64, width=64))
    point = make_window_sample(seed, SMALL)
    assert torch.allclose(area.frames, F.avg_pool2d(fine.frames, 2), atol=1e-6)
    assert torch.allclose(area.sup_frames, F.avg_pool2d(fine.sup_frames, 2), atol=1e-6)
    assert torch.equal(area.depth, point.depth) and torch.equal(area.K, point.K)
    assert float((area.frames - point.frames).abs().mean()) > 1e-3  # the colour did change


def test_pixel_samples_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pixel_samples"):
        WindowDatasetConfig(pixel_samples=0)


def test_an_eval_cache_written_before_the_field_existed_is_reused(tmp_path) -> None:
    model_config = ModelConfig.preset("tiny", image_size=16, window_frames=4)
    held_out_windows(model_config, 1, cache=tmp_path, scene_preset="default")
    meta_path = tmp_path / "config.json"
    meta = json.loads(meta_path.read_text())
    del meta["dataset"]["pixel_samples"]  # as a cache of an earlier version has it
    meta_path.write_text(json.dumps(meta))
    sample = next(tmp_path.glob("sample_*.safetensors"))
    before = sample.stat().st_mtime_ns
    held_out_windows(model_config, 1, cache=tmp_path, scene_preset="default")
    assert sample.stat().st_mtime_ns == before  # read back, not rendered again
    # a different sampling is a different split: rendered anew
    windows = held_out_windows(model_config, 1, cache=tmp_path, scene_preset="default", pixel_samples=2)
    assert windows.config.pixel_samples == 2 and sample.stat().st_mtime_ns != before


def test_a_training_run_draws_its_windows_with_its_pixel_samples() -> None:
    from dgslrm_ros.training.config import TrainConfig
    from dgslrm_ros.training.loop import make_datasets

    model_config = ModelConfig.preset("tiny", image_size=16, window_frames=4)
    for samples in (1, 2):
        train_set, eval_set = make_datasets(TrainConfig(pixel_samples=samples), model_config)
        assert train_set.config.pixel_samples == samples and eval_set.config.pixel_samples == samples
