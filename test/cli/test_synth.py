"""`dgslrm synth` end to end with the real scene generator (tiny sizes)."""
import argparse

import numpy as np
import pytest

from dgslrm_ros.bags.reader import load_sequence
from dgslrm_ros.cli import synth


def _parse(argv):
    parser = argparse.ArgumentParser(prog="dgslrm synth")
    synth.add_arguments(parser)
    return parser.parse_args(argv)


def test_synth_writes_readable_bags(tmp_path, capsys):
    out = tmp_path / "out"
    args = _parse(["--out", str(out), "--scenes", "2", "--seed", "5", "--frames", "3", "--size", "16",
                   "--views", "2", "--track-grid", "8", "--fps", "5", "--no-progress"])
    assert synth.run(args) == 0
    printed = capsys.readouterr().out
    bags = sorted(p.name for p in out.iterdir())
    assert bags == ["scene_000005", "scene_000006"]
    assert str(out / "scene_000005") in printed
    seq = load_sequence(out / "scene_000005")
    assert seq.rgb.shape == (2, 3, 16, 16, 3) and seq.world_T_cam.shape == (2, 3, 4, 4)
    assert np.diff(seq.stamps_ns).tolist() == [200_000_000] * 2  # 5 fps
    assert seq.trajectories.tracks.shape == (4, 3, 3)  # (16 / 8)^2 grid points, all 3 samples
    assert seq.rgb.std() > 0  # a rendered scene, not a blank image
    other = load_sequence(out / "scene_000006")
    assert not np.array_equal(seq.rgb, other.rgb)  # different seeds, different scenes


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        _parse(["--out", "x", "--frames", "0"])
    with pytest.raises(SystemExit):
        _parse(["--scenes", "1"])  # --out is required
