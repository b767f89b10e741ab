"""`dgslrm train` end to end: progress, held-out evaluation with previews, checkpoint, --resume."""
import json

import pytest

from dgslrm_ros.cli.main import main


def test_train_cli_runs_evaluates_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--image-size", "16", "--steps", "3", "--out", str(out), "--batch-size", "1",
            "--eval-every", "2", "--eval-scenes", "1", "--workers", "0", "--device", "cpu", "--perceptual", "ssim",
            "--warmup", "1", "--scene-preset", "simple", "--stop-after", "2", "--no-progress"]
    assert main(args) == 0
    assert "step 2:" in capsys.readouterr().out
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 2
    previews = list((out / "eval" / "step_0000002" / "previews").glob("*.png"))
    assert previews and previews[0].read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "eval" / "step_0000002" / "metrics.json").read_text())
    assert metrics["methods"]["network"]["novel_psnr"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["image_size"] == 16 and config["extra"]["scene_scale"] == 1.0

    assert main(args[:-3] + ["--resume", "--no-progress"]) == 0
    assert "step 3:" in capsys.readouterr().out
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "eval" not in r] == [1, 2, 3]
    assert any("eval" in r for r in log)

    (out / "trainer_state.json").write_text("{\"step\": ")  # a save interrupted half-way
    assert main(args[:-3] + ["--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trainer_state.json" in err and "without --resume" in err


def test_train_cli_loss_weights_reach_the_loss(tmp_path, capsys):
    def first_record(out, *extra):
        args = ["train", "--preset", "tiny", "--image-size", "16", "--steps", "1", "--out", str(out), "--batch-size",
                "1", "--eval-every", "0", "--workers", "0", "--device", "cpu", "--perceptual", "ssim", "--warmup", "1",
                "--scene-preset", "simple", "--no-progress", *extra]
        assert main(args) == 0
        return json.loads((out / "train_log.jsonl").read_text().splitlines()[0])

    paper = first_record(tmp_path / "paper")
    assert paper["total"] == pytest.approx(paper["photo"] + 10 * paper["depth"] + 10 * paper["flow"],
                                                         rel=1e-5)
    reweighted = first_record(tmp_path / "reweighted", "--depth-weight", "2", "--flow-weight", "80")
    assert reweighted["total"] == pytest.approx(
        reweighted["photo"] + 2 * reweighted["depth"] + 80 * reweighted["flow"], rel=1e-5)
    assert reweighted["flow"] > 0 and reweighted["depth"] > 0
    squared = first_record(tmp_path / "squared", "--flow-loss", "l2")
    state = json.loads((tmp_path / "squared" / "trainer_state.json").read_text())
    assert state["config"]["loss"]["flow_loss"] == "l2"
    assert squared["flow"] < paper["flow"]  # same weights and window: squared sub-unit errors are smaller


def test_train_options_are_the_config_fields():
    """Every option's default is the field's (written once, on TrainConfig / LossConfig), switches and the
    historical --warmup spelling included."""
    import argparse

    from dgslrm_ros.cli import train as train_cli
    from dgslrm_ros.training.config import LossConfig, TrainConfig

    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)

    def config(*argv: str) -> TrainConfig:
        return train_cli.train_config(parser.parse_args(list(argv)))

    assert config() == TrainConfig()
    changed = config("--warmup", "7", "--no-progress", "--resume", "--flow-balance", "--flow-loss", "l2", "--lr", "0.01")
    assert (changed.warmup_steps, changed.progress, changed.resume, changed.lr) == (7, False, True, 0.01)
    assert changed.loss == LossConfig(flow_balance=True, flow_loss="l2")
    assert config("--warmup-steps", "3").warmup_steps == 3
    # --geometry-only overrides the photometric options (their defaults included) and keeps the others.
    geometry = config("--geometry-only", "--depth-balance", "--perceptual", "ssim").loss
    assert geometry == LossConfig(perceptual="none", mse_weight=0.0, depth_balance=True)
    assert not geometry.photometric
    with pytest.raises(SystemExit):
        parser.parse_args(["--perceptual", "vgg"])  # the field's choices


def test_a_setting_out_of_range_is_refused_by_name(tmp_path, capsys):
    """TrainConfig's own checks are DgslrmErrors: one line naming the setting, exit 2, no traceback."""
    assert main(["train", "--steps", "0", "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dgslrm train: TrainConfig: steps" in err and "Traceback" not in err
