"""`dgslrm replay --holdout N` on a tiny synthetic bag: which frames are scored, `copy` and `blend`
recomputed here from the bag's own pixels, and the rendered rows checked against `dgslrm eval`'s
held-out-instant computation (render_at_instants at n + 0.5, as evaluation.evaluate renders them, PSNR)
on the same Gaussians and frames."""
import json

import numpy as np
import pytest
import torch

from dgslrm_ros.bags.reader import load_sequence
from dgslrm_ros.cli import replay
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.evaluation.baselines import static_baseline
from dgslrm_ros.metrics import psnr
from dgslrm_ros.model.checkpoint import save_checkpoint
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.dgslrm import DGSLRM
from dgslrm_ros.render import render_at_instants

from .conftest import TINY_ARGS

FRAMES, SIZE, FPS = 18, 32, 20.0  # every 2nd frame fed: 9 frames at 10 fps, one 8-frame window or two


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory, dgslrm):
    root = tmp_path_factory.mktemp("holdout")
    assert dgslrm(["synth", "--out", str(root / "synth"), "--scenes", "1", "--frames", str(FRAMES), "--size",
                   str(SIZE), "--fps", str(FPS), "--views", "1", "--no-progress"]) == 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        checkpoint = save_checkpoint(root / "tiny", DGSLRM(ModelConfig.preset("tiny")).eval())
    bag, out = root / "synth" / "scene_000000", root / "out"
    assert dgslrm(["replay", str(bag), "--out", str(out), "--checkpoint", str(checkpoint), "--method", "network", "--holdout", "2",
                   "--save-windows", "--no-progress", *TINY_ARGS]) == 0
    return bag, out, json.loads((out / "metrics.json").read_text())


def _psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_holdout_scores_every_skipped_frame_inside_each_window(holdout_run):
    bag, out, metrics = holdout_run
    held = metrics["holdout"]
    assert metrics["frames_admitted"] == FRAMES // 2  # the pipeline saw every 2nd frame only
    assert list(held["methods"]) == ["network", "static", "copy", "blend"]
    assert held["windows_scored"] == metrics["windows"] >= 1 and held["frames_without_pose"] == 0
    sequence = load_sequence(bag)
    t0 = sequence.stamps_ns[0] / 1e9
    for window in held["per_window"]:
        source = np.rint((np.asarray(window["stamps"]) - t0) * FPS).astype(int)
        assert (source % 2 == 1).all()  # only frames the pipeline never got
        # a window of 8 fed frames spans 15 source frames: its 7 skipped ones, each half-way
        assert len(source) == 7 and np.allclose(window["positions"], np.arange(7) + 0.5, atol=1e-4)
        for values in window["values"].values():
            assert set(values) == {"psnr", "ssim", "lpips"} and np.isfinite(values["lpips"]).all()
    total = sum(len(w["stamps"]) for w in held["per_window"])
    assert all(row["frames"] == total for row in held["methods"].values())
    assert (out / "holdout" / "window_0000.png").stat().st_size > 5000


def test_copy_and_blend_agree_with_an_independent_computation(holdout_run):
    bag, _, metrics = holdout_run
    sequence = load_sequence(bag)
    rgb = sequence.rgb[0].astype(np.float64) / 255.0  # [T, H, W, 3]; model size = bag size: no resize
    t0 = sequence.stamps_ns[0] / 1e9
    for window in metrics["holdout"]["per_window"]:
        for i, stamp in enumerate(window["stamps"]):
            j = int(round((stamp - t0) * FPS))
            copy = rgb[j - 1]  # equidistant neighbours: the earlier one
            blend = 0.5 * (rgb[j - 1] + rgb[j + 1])
            assert window["values"]["copy"]["psnr"][i] == pytest.approx(_psnr_np(copy, rgb[j]), abs=1e-3)
            assert window["values"]["blend"]["psnr"][i] == pytest.approx(_psnr_np(blend, rgb[j]), abs=1e-3)


def test_rendered_rows_agree_with_evals_held_out_instant_psnr(holdout_run):
    bag, out, metrics = holdout_run
    sequence = load_sequence(bag)
    t0 = sequence.stamps_ns[0] / 1e9
    frames = torch.from_numpy(sequence.rgb[0]).permute(0, 3, 1, 2).float() / 255.0  # [T, 3, H, W]
    for window in metrics["holdout"]["per_window"]:
        gaussians = DeformableGaussians.load(out / replay.WINDOWS_DIR / f"window_{window['window']:04d}.safetensors")
        source = [int(round((s - t0) * FPS)) for s in window["stamps"]]
        positions = torch.tensor(window["positions"])
        poses = torch.from_numpy(sequence.world_T_cam[0][source]).float()
        K = torch.from_numpy(sequence.K[0]).float().expand(len(source), 3, 3)
        for name, deformable in (("network", gaussians), ("static", static_baseline(gaussians))):
            rendered = render_at_instants(deformable, positions, poses, K, SIZE, SIZE, 0.0)[0].clamp(0, 1)
            expected = psnr(rendered, frames[source]).tolist()
            np.testing.assert_allclose(window["values"][name]["psnr"], expected, atol=1e-3)


def test_holdout_prints_a_table_and_refuses_n_below_two(dgslrm, holdout_run, tmp_path, capsys):
    bag, _, _ = holdout_run
    assert dgslrm(["replay", str(bag), "--out", str(tmp_path / "x"), "--holdout", "1", "--no-progress"]) == 2
    assert "--holdout expects N >= 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
