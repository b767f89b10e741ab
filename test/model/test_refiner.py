"""The per-pixel refiner: starts as the identity, is wired to each pixel's own cues, and is added to
committed weights without changing their predictions."""
import dataclasses

import pytest
import torch

from dgslrm_ros.geometry.cues import GeometryCues
from dgslrm_ros.model import DGSLRM, ModelConfig
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.config import ModelConfigError
from dgslrm_ros.model.dgslrm import window_cues

from .conftest import as_if_trained


@pytest.fixture(scope="module")
def refined_config(tiny_config) -> ModelConfig:
    return dataclasses.replace(tiny_config, pixel_refiner=8)


@pytest.fixture(scope="module")
def cues(tiny_window, tiny_config) -> GeometryCues:
    keyframes = DGSLRM(tiny_config).keyframe_index()
    return window_cues(tiny_window["frames"], tiny_window["K"], tiny_window["world_T_cam"], keyframes)


def test_an_untrained_refiner_keeps_the_classical_method(refined_config, tiny_window, cues):
    torch.manual_seed(0)
    model = DGSLRM(refined_config).eval()
    assert model.refiner is not None and float(model.refiner.out.weight.detach().abs().sum()) == 0.0
    with torch.no_grad():
        p = model(**tiny_window, cues=cues)
        c = ClassicalReconstructor(refined_config)(**tiny_window, cues=cues)
    for name in ("depth", "offsets", "gate", "scales"):
        assert torch.allclose(getattr(p, name), getattr(c, name), atol=1e-6), name


def test_the_refiner_corrects_depth_and_gate_from_the_pixels_own_cues(refined_config, tiny_window, cues):
    # Tokens blind to the cues (zero cue embedding): without a refiner the depth and gate residuals cannot
    # depend on one pixel's confidence; with it they change at that pixel and only within its 5 x 5
    # neighbourhood (two 3 x 3 convolutions), in that keyframe and window alone.
    torch.manual_seed(0)
    model = as_if_trained(DGSLRM(refined_config)).eval()
    with torch.no_grad():
        model.tokenizer.cue_embed.weight.zero_()
        torch.nn.init.normal_(model.refiner.out.weight, std=0.1)
    b, k, y, x = 1, 1, 13, 20
    confidence = cues.sweep_confidence.clone()
    confidence[b, k, 0, y, x] = 1.0 - confidence[b, k, 0, y, x]
    changed = dataclasses.replace(cues, sweep_confidence=confidence)
    with torch.no_grad():
        before, after = model(**tiny_window, cues=cues), model(**tiny_window, cues=changed)
        plain = DGSLRM(dataclasses.replace(refined_config, pixel_refiner=0)).eval()
        plain.load_state_dict({n: t for n, t in model.state_dict().items() if not n.startswith("refiner.")})
        assert torch.equal(plain(**tiny_window, cues=cues).depth, plain(**tiny_window, cues=changed).depth)
    for name in ("depth", "gate"):
        moved = (getattr(after, name) - getattr(before, name)).abs()[:, :, 0] > 0  # [B, Kf, H, W]
        assert moved[b, k, y, x], name
        rows, cols = torch.nonzero(moved[b, k], as_tuple=True)
        assert int((rows - y).abs().max()) <= 2 and int((cols - x).abs().max()) <= 2, name
        moved[b, k] = False
        assert not moved.any(), name  # no other keyframe or window
    # The motion follows the gate: a corrected gate scales the lifted displacement where it changed.
    assert float(cues.lifted[b, k, :, :, y, x].abs().sum()) > 0
    assert not torch.equal(after.offsets[b, k, :, :, y, x], before.offsets[b, k, :, :, y, x])


def test_the_refiner_gets_gradients_from_the_start(refined_config, tiny_window):
    torch.manual_seed(0)
    model = DGSLRM(refined_config).train()
    p = model(**{k: v[:1] for k, v in tiny_window.items()})
    (p.depth.mean() + p.gate.mean()).backward()
    assert model.refiner.out.weight.grad.abs().sum() > 0  # zero weights, yet trainable


@pytest.mark.parametrize("changes, message", [
    (dict(pixel_refiner=-1), "pixel_refiner: expected an integer >= 0"),
    (dict(pixel_refiner=8, cue_channels=0, appearance_residuals=True), "only a geometry-primed model"),
])
def test_refiner_config_is_checked(tiny_config, changes, message):
    with pytest.raises(ModelConfigError, match=message):
        dataclasses.replace(tiny_config, **changes)


def test_old_configs_load_without_a_refiner(tiny_config):
    older = {k: v for k, v in tiny_config.to_dict().items() if k != "pixel_refiner"}
    assert ModelConfig.from_dict(older).pixel_refiner == 0
    assert DGSLRM(ModelConfig.from_dict(older)).refiner is None
