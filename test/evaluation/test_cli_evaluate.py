"""`dgslrm eval --checkpoint ...` end to end on one held-out window."""
import json

from dgslrm_ros.cli.main import main
from dgslrm_ros.model.checkpoint import save_checkpoint


def test_eval_cli_prints_table_and_writes_json(tiny_model, tmp_path, capsys):
    save_checkpoint(tmp_path / "ckpt", tiny_model, extra={"scene_scale": 1.0})
    code = main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-scenes", "1", "--out", str(tmp_path / "eval"),
                 "--optimize-iters", "3", "--device", "cpu", "--cache", str(tmp_path / "cache")])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("network", "classical", "static", "optimised", "nov PSNR", "EPE [m]", "mov flow", "AbsRel med", "'default' scene family"):
        assert name in printed
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["methods"]["static"]["motion_m"] == 0.0
    assert metrics["methods"]["network"]["heldout_psnr"] > 0  # mid-frame instants, ray-cast for the metric
    scene_id = metrics["scenes"][0]["scene_id"]
    assert scene_id >= 1_000_000  # an evaluation seed, never a training one
    assert (tmp_path / "cache" / "config.json").is_file()


def test_eval_cli_refuses_a_truncated_checkpoint_with_a_clear_message(tiny_model, tmp_path, capsys):
    save_checkpoint(tmp_path / "ckpt", tiny_model)
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # an interrupted copy
    code = main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-scenes", "1", "--out", str(tmp_path / "eval"),
                 "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "corrupt or truncated" in err
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_eval_cli_scene_preset_option(tiny_model, tmp_path, capsys):
    save_checkpoint(tmp_path / "ckpt", tiny_model, extra={"scene_scale": 1.0, "scene_preset": "default"})
    code = main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-scenes", "1", "--out", str(tmp_path / "eval"),
                 "--no-baselines", "--device", "cpu", "--scene-preset", "no-such-family"])
    assert code == 2 and "no-such-family" in capsys.readouterr().err
    code = main(["eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-scenes", "1", "--out", str(tmp_path / "eval"),
                 "--no-baselines", "--device", "cpu", "--scene-preset", "dynamic"])
    assert code == 0 and "'dynamic' scene family" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # Every object of a 'dynamic' scene moves: some keyframe pixels travel.
    assert metrics["methods"]["network"]["moving_fraction"] > 0


def test_eval_cli_image_size_option(tiny_model, tmp_path, capsys):
    save_checkpoint(tmp_path / "ckpt", tiny_model, extra={"scene_scale": 1.0, "scene_preset": "default"})
    args = ["eval", "--checkpoint", str(tmp_path / "ckpt"), "--num-scenes", "1", "--out", str(tmp_path / "eval"),
            "--no-baselines", "--device", "cpu"]
    assert main(args + ["--image-size", "30"]) == 2 and "patch_size" in capsys.readouterr().err
    assert main(args + ["--image-size", "24"]) == 0 and "at 24 px" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_scenes"] == 1 and metrics["methods"]["network"]["input_psnr"] > 0


def test_eval_options_are_the_config_fields(capsys):
    """Every option's default is EvalConfig's (written once, on the field), switches and ranges included."""
    import argparse

    import pytest

    from dgslrm_ros.cli import evaluate as evaluate_cli
    from dgslrm_ros.cli.argtypes import config_from_options
    from dgslrm_ros.evaluation.config import EvalConfig

    parser = argparse.ArgumentParser()
    evaluate_cli.add_arguments(parser)

    def config(*argv: str) -> EvalConfig:  # what `dgslrm eval` builds, the checkpoint's scene scale aside
        return config_from_options(EvalConfig, parser.parse_args(["--checkpoint", "c", *argv]))

    assert config() == EvalConfig()
    changed = config("--num-scenes", "3", "--optimize-iters", "0", "--refine-iters", "5", "--no-baselines",
                     "--no-classical", "--no-oracles", "--previews", "0", "--heldout-instants", "1", "--no-progress")
    assert changed == EvalConfig(num_scenes=3, optimize_iters=0, refine_iters=5, baselines=False, classical=False,
                                 oracles=False, previews=0, heldout_instants=1, progress=False)
    with pytest.raises(SystemExit):
        config("--num-scenes", "0")
    assert "num_scenes" in capsys.readouterr().err
