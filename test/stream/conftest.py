"""Shared pieces of the stream tests: a tiny config, a tiny seeded model, a posed camera."""
import numpy as np
import pytest
import torch

from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.dgslrm import DGSLRM
from dgslrm_ros.stream.config import PipelineConfig

# CameraInfo-style intrinsics (pixel centres at integers) of a 64 x 48 camera.
K_INFO = np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 23.5], [0.0, 0.0, 1.0]])
IMAGE_W, IMAGE_H = 64, 48


def tiny_config(**overrides) -> PipelineConfig:
    # min_track_confidence -1: the helpers' frames are noise, where the sweep resolves no depth; every pixel
    # is seeded, so that tracks flow (test_track_seeds.py holds the default's seeding)
    values = dict(window_frames=8, window_stride=4, keyframe_stride=4, image_width=32, image_height=32,
                  track_grid=8, frame_rate=10.0, device="cpu", renderer="torch", sync_tolerance=0.05,
                  min_track_confidence=-1.0)
    values.update(overrides)
    return PipelineConfig(**values)


@pytest.fixture(scope="session")
def tiny_model() -> DGSLRM:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return DGSLRM(ModelConfig.preset("tiny")).eval()


def pose_at(t: float) -> np.ndarray:
    """A camera sliding along +x at 0.1 m/s, looking down +z (optical frame = world axes)."""
    pose = np.eye(4)
    pose[0, 3] = 0.1 * t
    return pose


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8)


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(K_INFO=K_INFO, W=IMAGE_W, H=IMAGE_H, config=tiny_config, pose_at=pose_at, image=image)


@pytest.fixture
def make_pipeline(tiny_model):
    """Factory: a StreamingReconstructor on the tiny model with camera_info already given."""
    from dgslrm_ros.stream.pipeline import StreamingReconstructor

    def make(camera_info: bool = True, logs: list | None = None, model=None, **overrides):
        logger = (lambda level, message: logs.append((level, message))) if logs is not None else None
        pipeline = StreamingReconstructor(tiny_config(**overrides), logger, model=model or tiny_model,
                                          weights="test tiny")
        if camera_info:
            pipeline.add_camera_info(K_INFO, np.zeros(5), "plumb_bob", IMAGE_W, IMAGE_H)
        return pipeline

    return make
