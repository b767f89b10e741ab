"""Optimizer state round-trips through safetensors + JSON exactly (no pickle)."""
import json

import torch

from dgslrm_ros.training.state import (OPTIMIZER_FILE, TRAINER_STATE_FILE, TrainStateError, load_trainer_state,
                                       save_trainer_state)


def _trained_optimizer(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
    return opt


def test_optimizer_state_round_trip(tmp_path):
    import pytest

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = _trained_optimizer(model)
    rng = {"torch": torch.get_rng_state()}
    save_trainer_state(tmp_path, opt, {"step": 3, "seed": 7}, rng)
    assert (tmp_path / OPTIMIZER_FILE).read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle
    assert json.loads((tmp_path / TRAINER_STATE_FILE).read_text())["step"] == 3

    state, opt_state, rng_back = load_trainer_state(tmp_path)
    assert state["step"] == 3 and state["seed"] == 7
    assert torch.equal(rng_back["torch"], rng["torch"])
    fresh = torch.optim.AdamW(model.parameters(), lr=1.0)
    fresh.load_state_dict(opt_state)
    original = opt.state_dict()
    restored = fresh.state_dict()
    assert restored["param_groups"][0]["betas"] == (0.8, 0.9)
    assert restored["param_groups"][0]["lr"] == 1e-2
    for pid, entry in original["state"].items():
        for name, value in entry.items():
            assert torch.equal(restored["state"][pid][name], value), (pid, name)

    with pytest.raises(TrainStateError, match="cannot resume"):
        load_trainer_state(tmp_path / "missing")


def test_damaged_resume_files_raise_train_state_error_naming_the_file(tmp_path):
    import pytest

    model = torch.nn.Linear(4, 2)
    opt = _trained_optimizer(torch.nn.Sequential(model))
    save_trainer_state(tmp_path, opt, {"step": 3}, {"torch": torch.get_rng_state()})
    good_state = (tmp_path / TRAINER_STATE_FILE).read_text()
    (tmp_path / TRAINER_STATE_FILE).write_text(good_state[: len(good_state) // 2])  # interrupted write
    with pytest.raises(TrainStateError, match=TRAINER_STATE_FILE):
        load_trainer_state(tmp_path)
    (tmp_path / TRAINER_STATE_FILE).write_text(good_state)
    weights = (tmp_path / OPTIMIZER_FILE).read_bytes()
    (tmp_path / OPTIMIZER_FILE).write_bytes(weights[:40])
    with pytest.raises(TrainStateError, match="corrupt or truncated"):
        load_trainer_state(tmp_path)
