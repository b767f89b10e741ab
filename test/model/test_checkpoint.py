import json

import pytest
import torch

from dgslrm_ros.model import CheckpointError, DGSLRM, load_model, read_checkpoint_info, save_checkpoint
from dgslrm_ros.model.checkpoint import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE


@pytest.fixture(scope="module")
def trained_like_model(tiny_config) -> DGSLRM:
    """A tiny model whose weights are not the init (so a loader that re-inits would be caught)."""
    torch.manual_seed(3)
    model = DGSLRM(tiny_config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model


@pytest.fixture(scope="module")
def saved(trained_like_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(directory, trained_like_model, extra={"step": 123, "note": "test"})
    return directory


def outputs(model, window):
    with torch.no_grad():
        p = model(**window)
    return [p.depth, p.colors, p.quats, p.scales, p.opacities, p.offsets]


def test_fp32_round_trip_is_bit_identical(trained_like_model, saved, tiny_window):
    loaded = load_model(saved)
    assert not loaded.training and loaded.config == trained_like_model.config
    for a, b in zip(outputs(trained_like_model, tiny_window), outputs(loaded, tiny_window)):
        assert torch.equal(a, b)
    # either file of the pair names the checkpoint as well as its directory
    assert torch.equal(load_model(saved / WEIGHTS_FILE).head.out.weight, trained_like_model.head.out.weight)
    assert torch.equal(load_model(saved / CONFIG_FILE).head.out.weight, trained_like_model.head.out.weight)


def test_fp16_round_trip_is_close_and_half_the_size(trained_like_model, saved, tiny_window, tmp_path):
    save_checkpoint(tmp_path, trained_like_model, dtype=torch.float16)
    info = read_checkpoint_info(tmp_path)
    assert info["weights_dtype"] == "float16"
    size16, size32 = (tmp_path / WEIGHTS_FILE).stat().st_size, (saved / WEIGHTS_FILE).stat().st_size
    assert size16 < 0.52 * size32
    loaded = load_model(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for a, b in zip(outputs(trained_like_model, tiny_window), outputs(loaded, tiny_window)):
        assert torch.allclose(a, b, atol=2e-3, rtol=2e-3)


def test_config_json_and_no_pickle(saved, trained_like_model):
    info = json.loads((saved / CONFIG_FILE).read_text())
    assert info["format_version"] == FORMAT_VERSION
    assert info["model_config"] == trained_like_model.config.to_dict()
    assert info["extra"] == {"step": 123, "note": "test"}
    assert info["num_parameters"] == trained_like_model.num_parameters()
    raw = (saved / WEIGHTS_FILE).read_bytes()
    header = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and json.loads(raw[8:8 + header])["__metadata__"]["format_version"] == "1"
    assert b"\x80\x04" not in raw[:2]  # not a pickle stream
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        save_checkpoint(saved.parent / "bad", trained_like_model, extra={"t": torch.zeros(1)})


def copy_checkpoint(source, target):
    target.mkdir()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def edit_config(directory, edit):
    info = json.loads((directory / CONFIG_FILE).read_text())
    edit(info)
    (directory / CONFIG_FILE).write_text(json.dumps(info))


def test_missing_files(saved, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nowhere")
    broken = copy_checkpoint(saved, tmp_path / "no_config")
    (broken / CONFIG_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_model(broken)
    broken = copy_checkpoint(saved, tmp_path / "no_weights")
    (broken / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_model(broken)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_weights(saved, tmp_path, damage):
    broken = copy_checkpoint(saved, tmp_path / damage)
    raw = (broken / WEIGHTS_FILE).read_bytes()
    damaged = {"truncate": raw[: len(raw) // 2], "garbage": b"\x13\x37" * 500, "empty": b""}[damage]
    (broken / WEIGHTS_FILE).write_bytes(damaged)
    with pytest.raises(CheckpointError, match="corrupt or truncated safetensors"):
        load_model(broken)


def test_non_finite_weights(trained_like_model, tmp_path):
    model = DGSLRM(trained_like_model.config)
    with torch.no_grad():
        model.head.fc.bias[0] = float("nan")
    save_checkpoint(tmp_path, model)
    with pytest.raises(CheckpointError, match=r"non-finite.*head\.fc\.bias"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda i: i["model_config"].update(width=32, heads=2), r"shape mismatch \[.*file \(64,\) vs config \(32,\)"),
        (lambda i: i["model_config"].update(layers=3), r"missing keys \[transformer\.blocks\.2\."),
        (lambda i: i["model_config"].update(layers=1), r"unexpected keys \[transformer\.blocks\.1\."),
        (lambda i: i["model_config"].update(window_frames=12), r"shape mismatch \[head\.out"),
        (lambda i: i.update(format_version=99), "format_version 99, this code reads version 1"),
        (lambda i: i.update(format="something.else"), "expected format 'dgslrm_ros.model'"),
        (lambda i: i["model_config"].update(patch_size=7), r"invalid model_config.*not divisible by patch_size=7"),
        (lambda i: i["model_config"].update(sh_degree=3), r"invalid model_config.*unknown fields \['sh_degree'\]"),
    ],
)
def test_config_that_does_not_fit(saved, tmp_path, edit, message):
    broken = copy_checkpoint(saved, tmp_path / "edited")
    edit_config(broken, edit)
    with pytest.raises(CheckpointError, match=message):
        load_model(broken)


def test_checkpoint_from_before_the_geometry_primed_model_is_refused_by_name(saved, tmp_path):
    old = copy_checkpoint(saved, tmp_path / "old")
    edit_config(old, lambda i: i["model_config"].pop("cue_channels"))
    with pytest.raises(CheckpointError, match="predates the geometry-primed model.*method: classical"):
        load_model(old)


def test_unreadable_config_json(saved, tmp_path):
    broken = copy_checkpoint(saved, tmp_path / "json")
    (broken / CONFIG_FILE).write_text("{ not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        load_model(broken)


def test_shipped_small_preset_fits_16_mb_in_fp16(tmp_path):
    from dgslrm_ros.model import ModelConfig

    model = DGSLRM(ModelConfig.preset("small"))
    save_checkpoint(tmp_path, model, dtype=torch.float16)
    assert (tmp_path / WEIGHTS_FILE).stat().st_size <= 16 * 2**20


def test_wrapped_models_are_unwrapped_and_other_modules_refused(trained_like_model, tmp_path):
    class Wrapper(torch.nn.Module):  # what DDP looks like from here: the model under .module
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    save_checkpoint(tmp_path, Wrapper(trained_like_model))
    assert torch.equal(load_model(tmp_path).head.fc.weight, trained_like_model.head.fc.weight)
    with pytest.raises(CheckpointError, match="expected a DGSLRM.*got Linear"):
        save_checkpoint(tmp_path, torch.nn.Linear(2, 2))
