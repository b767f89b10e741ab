"""Shared inputs for the model tests: a small posed window with a rotating, translating camera."""
from __future__ import annotations

import math

import pytest
import torch

from dgslrm_ros.model import DGSLRM, ModelConfig


def rotation_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def make_window(config: ModelConfig, batch: int = 1, size: int | None = None, seed: int = 0,
                references: int = 0) -> dict[str, torch.Tensor]:
    """frames/K/world_T_cam/timestamps (+ ref_* when references > 0) with the shapes DGSLRM expects."""
    generator = torch.Generator().manual_seed(seed)
    size = size or config.image_size

    def cameras(count: int, start_time: float, start_angle: float):
        K = torch.tensor([[0.9 * size, 0.0, size / 2 + 0.3], [0.0, 1.1 * size, size / 2 - 0.2], [0.0, 0.0, 1.0]])
        poses = torch.eye(4).repeat(batch, count, 1, 1)
        for b in range(batch):
            for n in range(count):
                poses[b, n, :3, :3] = rotation_y(start_angle + 0.02 * n + 0.1 * b)
                poses[b, n, :3, 3] = torch.tensor([0.05 * n, -0.01 * n, 0.1 * b])
        stamps = start_time + 0.1 * torch.arange(count, dtype=torch.float64)[None].repeat(batch, 1)
        return K.expand(batch, count, 3, 3).clone(), poses, stamps

    K, poses, stamps = cameras(config.window_frames, 100.0, 0.0)
    window = dict(frames=torch.rand(batch, config.window_frames, 3, size, size, generator=generator),
                  K=K, world_T_cam=poses, timestamps=stamps)
    if references:
        ref_K, ref_poses, ref_stamps = cameras(references, 90.0, 0.5)
        window.update(ref_frames=torch.rand(batch, references, 3, size, size, generator=generator),
                      ref_K=ref_K, ref_world_T_cam=ref_poses, ref_timestamps=ref_stamps)
    return window


@pytest.fixture(scope="module")
def tiny_config() -> ModelConfig:
    return ModelConfig.preset("tiny")


def as_if_trained(model: DGSLRM) -> DGSLRM:
    """Give the zero-initialised cue embedding and output layer small random weights, as training would:
    untrained, a geometry-primed model's output is exactly the classical method and ignores its tokens,
    which would hide any wiring fault of the network behind it."""
    with torch.no_grad():
        torch.nn.init.normal_(model.head.out.weight, std=0.02)
        if model.tokenizer.cue_embed is not None:
            torch.nn.init.normal_(model.tokenizer.cue_embed.weight, std=0.02)
    return model


@pytest.fixture(scope="module")
def tiny_model(tiny_config) -> DGSLRM:
    torch.manual_seed(0)
    return as_if_trained(DGSLRM(tiny_config)).eval()


@pytest.fixture(scope="module")
def tiny_window(tiny_config) -> dict[str, torch.Tensor]:
    return make_window(tiny_config, batch=2)


@pytest.fixture(scope="session")
def window_factory():
    """make_window, for tests that need other sizes or reference frames."""
    return make_window


@pytest.fixture(scope="session")
def paper_parameters() -> int:
    """Parameter count of the paper preset, built on the meta device (no memory, once per session)."""
    with torch.device("meta"):
        return DGSLRM(ModelConfig.preset("paper")).num_parameters()
