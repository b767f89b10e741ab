"""Every `dgslrm` subcommand, run for real with a bad input, ends with status 2 and a one-line message
(no traceback): a DgslrmError leaving a subcommand is printed by `cli/main.py`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dgslrm_ros.cli import main as cli_main


def _window_file(tmp: Path) -> Path:
    from dgslrm_ros.core.gaussians import DeformableGaussians

    n = 4
    return DeformableGaussians(means=torch.zeros(n, 3), quats=torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4),
                               scales=torch.full((n, 3), 0.1), opacities=torch.full((n,), 0.5),
                               colors=torch.full((n, 3), 0.5), offsets=torch.zeros(n, 2, 3),
                               timestamps=torch.tensor([0.0, 0.1]), keyframe_index=torch.zeros(n, dtype=torch.long),
                               ).save(tmp / "window.safetensors")


# subcommand -> (arguments given a temporary folder, what the message must say)
BAD_INPUTS = {
    "demo": (lambda tmp: ["demo", "--out", str(tmp / "d"), "--checkpoint", str(tmp / "none")], "no such checkpoint"),
    "synth": (lambda tmp: ["synth", "--out", str(tmp), "--scenes", "1", "--frames", "2", "--size", "16", "--views", "2",
                           "--no-progress"], "exists already"),
    "replay": (lambda tmp: ["replay", str(tmp / "no_bag"), "--out", str(tmp / "r"), "--no-progress"], "does not exist"),
    "train": (lambda tmp: ["train", "--init-from", str(tmp / "none"), "--out", str(tmp / "t"), "--device", "cpu",
                           "--workers", "0", "--no-progress"], "no such checkpoint"),
    "eval": (lambda tmp: ["eval", "--checkpoint", str(tmp / "none"), "--out", str(tmp / "e")], "no such checkpoint"),
    "bench": (lambda tmp: ["bench", "--soak", "1", "--out", str(tmp / "b"), "--param", "window_frames=1"],
              "'window_frames'"),
    "export": (lambda tmp: ["export", str(_window_file(tmp)), "--out", str(tmp / "x.ply"), "--frame", "5"],
               "outside the window of 2 frames"),
    "pose": (lambda tmp: ["pose", str(tmp / "clip.mp4"), "--out", str(tmp / "p"), "--start", "-1"],
             "start must be >= 0 s"),
    "view": (lambda tmp: ["view", str(tmp / "none.safetensors")], "none.safetensors"),
}


def test_every_subcommand_has_a_bad_input_case() -> None:
    assert set(BAD_INPUTS) == set(cli_main.SUBCOMMANDS)


@pytest.mark.parametrize("command", sorted(BAD_INPUTS))
def test_bad_input_ends_with_status_2_and_its_message(command: str, tmp_path: Path, capsys) -> None:
    argv, message = BAD_INPUTS[command]
    if command == "synth":
        (tmp_path / "scene_000000").mkdir()  # the bag it would write
    assert cli_main.main(argv(tmp_path)) == 2
    out, err = capsys.readouterr()
    assert message in out + err and "Traceback" not in out + err
    if command != "export":  # export refuses --frame itself, on stdout
        assert f"dgslrm {command}: " in err
