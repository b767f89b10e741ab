"""Shared small fixtures: 32 px, 8-frame windows keep the data tests fast on two CPU cores."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.dataset import WindowDatasetConfig, make_window_sample
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.data.scenes import scene_preset


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """The generator is elementwise and memory-bound: one thread is as fast, and far faster when the
    machine is shared. Restored afterwards so other test folders keep their settings."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dynamic_config() -> WindowDatasetConfig:
    """Every object moves, half deform, no blur: the hardest flow."""
    return WindowDatasetConfig(height=32, width=32, window_frames=8, keyframe_stride=4,
                               scene=scene_preset("dynamic"))


@pytest.fixture(scope="session")
def static_config() -> WindowDatasetConfig:
    return WindowDatasetConfig(height=32, width=32, window_frames=8, keyframe_stride=4,
                               scene=dataclasses.replace(scene_preset("static"),
                                                         camera=CameraPathConfig(motion_blur_probability=0.0)))


@pytest.fixture(scope="session")
def dynamic_samples(dynamic_config) -> list[WindowSample]:
    return [make_window_sample(seed, dynamic_config) for seed in (3, 11)]
