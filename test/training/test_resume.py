"""A run stopped and resumed from its files continues exactly like an uninterrupted run."""
import json

import pytest
import torch

from dgslrm_ros.model.checkpoint import load_model
from dgslrm_ros.training.loop import TrainConfig, train
from dgslrm_ros.training.losses import LossConfig


def _config(out, steps, resume=False, stop_after=0):
    return TrainConfig(preset="tiny", image_size=16, steps=steps, out=str(out), batch_size=1, lr=2e-3,
                       warmup_steps=1, eval_every=0, checkpoint_every=0, workers=0, device="cpu", resume=resume,
                       stop_after=stop_after,
                       progress=False, loss=LossConfig(perceptual="ssim", input_views=1))


def test_resume_matches_uninterrupted_run(tiny_windows, tmp_path):
    full = train(_config(tmp_path / "full", 4), dataset=tiny_windows)
    assert [r["step"] for r in full.history] == [1, 2, 3, 4]
    # Two different windows alternate (step s uses window s mod 2): the data order is part of the state.

    # Interrupted after 2 of 4 steps (as when a session ends), then continued from the files alone.
    first = train(_config(tmp_path / "split", 4, stop_after=2), dataset=tiny_windows)
    assert first.step == 2
    state = json.loads((tmp_path / "split" / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["schedule"]["total_steps"] == 4
    second = train(_config(tmp_path / "split", 4, resume=True), dataset=tiny_windows)
    assert [r["step"] for r in second.history] == [3, 4]

    for resumed, uninterrupted in zip(second.history, full.history[2:]):
        assert resumed["total"] == pytest.approx(uninterrupted["total"], rel=1e-5, abs=1e-7)
        assert resumed["lr"] == pytest.approx(uninterrupted["lr"])
    for a, b in zip(second.model.parameters(), full.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)

    # The files on disk are a loadable model checkpoint and a finished run resumes to a no-op.
    reloaded = load_model(tmp_path / "split", "cpu")
    assert all(torch.equal(a, b) for a, b in zip(reloaded.parameters(), second.model.parameters()))
    again = train(_config(tmp_path / "split", 4, resume=True), dataset=tiny_windows)
    assert again.history == [] and again.step == 4
    log = [json.loads(line) for line in (tmp_path / "split" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
