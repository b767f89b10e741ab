"""Small synthetic windows shared by the training tests (16 x 16 px, 8 frames: the `tiny` model's window)."""
import pytest
import torch

from dgslrm_ros.data.dataset import WindowDatasetConfig, make_window_sample
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.data.scenes import scene_preset

IMAGE = 16


def window_config(image: int = IMAGE) -> WindowDatasetConfig:
    """Real synthetic windows (two supervision views from two other cameras), only small."""
    return WindowDatasetConfig(height=image, width=image, window_frames=8, keyframe_stride=4, num_supervision=2,
                               scene=scene_preset("simple"))


@pytest.fixture(scope="session")
def tiny_windows() -> list[WindowSample]:
    """Two training windows (fixed seeds)."""
    torch.set_num_threads(1)  # the test machine is shared: one thread each is fastest overall
    return [make_window_sample(seed, window_config()) for seed in (3, 4)]
