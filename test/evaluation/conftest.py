"""A tiny untrained model and one small held-out-style window for the evaluation tests."""
import dataclasses

import pytest
import torch

from dgslrm_ros.data.dataset import WindowDatasetConfig, make_window_sample
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.data.scenes import scene_preset
from dgslrm_ros.model import DGSLRM, ModelConfig

IMAGE = 16


@pytest.fixture(scope="session")
def tiny_model() -> DGSLRM:
    torch.set_num_threads(1)  # shared test machine
    torch.manual_seed(0)
    return DGSLRM(ModelConfig.preset("tiny", image_size=IMAGE)).eval()


def window_config() -> WindowDatasetConfig:
    scene = scene_preset("simple")
    return WindowDatasetConfig(height=IMAGE, width=IMAGE, window_frames=8, keyframe_stride=4, num_supervision=2,
                               scene=dataclasses.replace(scene, static_probability=0.0))


@pytest.fixture(scope="session")
def data_config() -> WindowDatasetConfig:
    return window_config()


@pytest.fixture(scope="session")
def window() -> WindowSample:
    # A held-out window whose 16 px cues see motion and resolve some depth (1.4 % of the keyframe pixels gated,
    # 20 % confident): the rows that must differ from `static` need some. Seed 1_000_003, used until session 26,
    # had one gated pixel of 512 and no confident one, and lost that pixel when the sweep's planes moved.
    return make_window_sample(1_000_005, window_config())
