import dataclasses

import pytest
import torch

from dgslrm_ros.model import DGSLRM, PRESETS, ModelConfig, ModelConfigError


def meta_parameters(config: ModelConfig) -> int:
    with torch.device("meta"):
        return DGSLRM(config).num_parameters()


def test_presets_are_valid_and_named():
    assert set(PRESETS) == {"tiny", "small", "paper"}
    for name, config in PRESETS.items():
        assert ModelConfig.preset(name) is config
        assert config.image_size % config.patch_size == 0
        assert config.window_frames % config.keyframe_stride == 0


def test_paper_preset_matches_the_paper(paper_parameters):
    c = ModelConfig.preset("paper")
    assert (c.image_size, c.window_frames, c.keyframe_stride, c.patch_size) == (256, 24, 4, 8)
    assert (c.layers, c.width, c.heads, int(c.width * c.mlp_ratio)) == (24, 1024, 16, 4096)
    assert c.num_tokens(reference_frames=0) == 6144  # 32 x 32 x 6
    assert c.num_keyframes == 6 and c.head_channels == 12 + 3 * 24 + 1  # + the gate residual of our geometry-primed heads
    assert 280e6 < paper_parameters < 340e6  # "~300M"


def test_parameter_budgets():
    assert meta_parameters(ModelConfig.preset("tiny")) < 1_000_000
    small = meta_parameters(ModelConfig.preset("small"))
    assert 3_000_000 < small <= 8_000_000  # fp16 checkpoint <= 16 MB


def test_preset_overrides_and_unknown_name():
    c = ModelConfig.preset("small", window_frames=16)
    assert c.window_frames == 16 and c.width == PRESETS["small"].width
    with pytest.raises(ModelConfigError, match="unknown model preset 'huge'.*paper"):
        ModelConfig.preset("huge")


def test_preset_name_ignores_resolution_only():
    assert ModelConfig.preset("small", image_size=64).preset_name() == "small"
    assert ModelConfig.preset("small", appearance_residuals=False).preset_name() == "small"  # same weights
    assert ModelConfig.preset("small", depth_check=False).preset_name() == "small"
    assert ModelConfig.preset("paper").preset_name() == "paper"
    assert ModelConfig.preset("small", window_frames=16).preset_name() == "custom"
    assert ModelConfig.preset("tiny", width=128, heads=4).preset_name() == "custom"


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(image_size=100), "image_size=100 is not divisible by patch_size=8"),
        (dict(window_frames=10), "window_frames=10 is not divisible by keyframe_stride=4"),
        (dict(num_reference_frames=3), "num_reference_frames=3 is not a multiple of keyframe_stride=4"),
        (dict(width=250), "width=250 is not divisible by heads=4"),
        (dict(near=2.0, far=1.0), "near < far"),
        (dict(near=0.0), "near < far"),
        (dict(layers=0), "layers: expected a positive integer"),
        (dict(patch_size=2.0), "patch_size: expected a positive integer"),
        (dict(mlp_ratio=0.0), "mlp_ratio"),
        (dict(scale_max=-1.0), "scale_max"),
        (dict(appearance_residuals=False), "appearance_residuals=False .* only a geometry-primed model"),
        (dict(depth_check="yes"), "depth_check: expected true or false"),
    ],
)
def test_validation_names_the_problem(changes, message):
    with pytest.raises(ModelConfigError, match=message):
        dataclasses.replace(ModelConfig(), **changes)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().width = 3


def test_dict_round_trip_and_unknown_fields():
    for config in PRESETS.values():
        assert ModelConfig.from_dict(config.to_dict()) == config
    # a checkpoint written before appearance_residuals existed loads with the behaviour it was trained with
    older = {k: v for k, v in PRESETS["small"].to_dict().items() if k != "appearance_residuals"}
    assert ModelConfig.from_dict(older).appearance_residuals is True
    # ... and one written before depth_check existed gets the check at inference (it changes no weight)
    assert ModelConfig.from_dict({k: v for k, v in older.items() if k != "depth_check"}).depth_check is True
    values = ModelConfig().to_dict() | {"colour_mode": "sh3"}
    with pytest.raises(ModelConfigError, match=r"unknown fields \['colour_mode'\]"):
        ModelConfig.from_dict(values)
