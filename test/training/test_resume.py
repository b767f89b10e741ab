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


def test_init_from_starts_a_new_run_from_committed_weights(tiny_windows, tmp_path):
    # Only the weights survive between sessions (the shipped fp16 checkpoint): a new run must start
    # from them, not from a fresh initialisation.
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM

    torch.manual_seed(123)
    earlier = DGSLRM(ModelConfig.preset("tiny", image_size=32))
    save_checkpoint(tmp_path / "earlier", earlier, dtype=torch.float16)
    stored = load_model(tmp_path / "earlier", "cpu")

    def run(out, **overrides):
        config = TrainConfig(preset="tiny", image_size=16, steps=1, out=str(out), batch_size=1, lr=1e-9, warmup_steps=1,
                             eval_every=0, checkpoint_every=0, workers=0, device="cpu", progress=False,
                             loss=LossConfig(perceptual="ssim", input_views=1), **overrides)
        return train(config, dataset=tiny_windows).model

    continued = run(tmp_path / "continued", init_from=str(tmp_path / "earlier"))
    fresh = run(tmp_path / "fresh")
    assert continued.config.image_size == 16  # the training resolution may change
    distance = lambda a, b: max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
    assert distance(continued, stored) < 1e-5  # one step at lr 1e-9 barely moves the loaded weights
    assert distance(fresh, stored) > 1e-2
    with pytest.raises(ValueError, match="window_frames"):
        run(tmp_path / "bad", init_from=str(tmp_path / "earlier"), window_frames=12)
    # The shipped weights draw with the classical appearance (appearance_residuals off); a photometric phase
    # from them can turn the residuals back on, and the checkpoint it writes says which.
    assert continued.config.appearance_residuals is True  # keep: as the checkpoint has it
    off = run(tmp_path / "off", init_from=str(tmp_path / "earlier"), appearance_residuals="off")
    assert off.config.appearance_residuals is False and load_model(tmp_path / "off", "cpu").config.appearance_residuals is False
    assert distance(off, stored) < 1e-5  # the same weights, only drawn differently
    with pytest.raises(ValueError, match="appearance_residuals: expected keep, on or off"):
        run(tmp_path / "typo", appearance_residuals="no")
    # The run records the architecture it really trains (the checkpoint's), not the --preset default.
    config = TrainConfig(preset="paper", image_size=16, steps=1, out=str(tmp_path / "named"), batch_size=1, lr=1e-9,
                         warmup_steps=1, eval_every=0, checkpoint_every=0, workers=0, device="cpu", progress=False,
                         loss=LossConfig(perceptual="ssim", input_views=1), init_from=str(tmp_path / "earlier"))
    train(config, dataset=tiny_windows)
    saved = json.loads((tmp_path / "named" / "config.json").read_text())
    assert saved["extra"]["preset"] == "tiny"
    assert json.loads((tmp_path / "named" / "trainer_state.json").read_text())["config"]["preset"] == "tiny"


def test_init_from_with_a_pixel_refiner_starts_from_the_loaded_predictions(tiny_windows, tmp_path):
    # The shipped weights have no refiner: a run adds one (zero-initialised), so its first predictions are
    # the loaded model's; the checkpoint it writes has the refiner, and a later run keeps it (-1).
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM

    torch.manual_seed(7)
    save_checkpoint(tmp_path / "earlier", DGSLRM(ModelConfig.preset("tiny", image_size=16)), dtype=torch.float16)
    stored = load_model(tmp_path / "earlier", "cpu")
    assert stored.refiner is None

    def run(out, init_from, **overrides):
        config = TrainConfig(preset="tiny", image_size=16, steps=1, out=str(out), batch_size=1, lr=1e-9, warmup_steps=1,
                             eval_every=0, checkpoint_every=0, workers=0, device="cpu", progress=False,
                             loss=LossConfig(perceptual="ssim", input_views=1), init_from=str(init_from), **overrides)
        return train(config, dataset=tiny_windows).model

    refined = run(tmp_path / "refined", tmp_path / "earlier", pixel_refiner=8)
    assert refined.config.pixel_refiner == 8 and refined.refiner is not None
    reloaded = load_model(tmp_path / "refined", "cpu")
    assert reloaded.config.pixel_refiner == 8
    window = tiny_windows[0]
    inputs = dict(frames=window.frames[None], K=window.K[None], world_T_cam=window.world_T_cam[None],
                  timestamps=window.timestamps[None])
    with torch.no_grad():
        before, after = stored(**inputs), reloaded(**inputs)
    assert torch.allclose(before.depth, after.depth, rtol=1e-4) and torch.allclose(before.gate, after.gate, atol=1e-4)
    assert run(tmp_path / "kept", tmp_path / "refined").config.pixel_refiner == 8  # keep
    dropped = run(tmp_path / "dropped", tmp_path / "refined", pixel_refiner=0)
    assert dropped.refiner is None and load_model(tmp_path / "dropped", "cpu").refiner is None
    with pytest.raises(ValueError, match="pixel_refiner: expected -1"):
        run(tmp_path / "typo", tmp_path / "earlier", pixel_refiner=-2)
