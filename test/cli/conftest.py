"""What the replay tests share: the CLI with only synth and replay registered, and the tiny pipeline flags."""
import pytest

from dgslrm_ros.cli import main as cli_main

# Node parameters that make a replay run the tiny model's 8-frame windows at 32 px on the CPU.
# 8-frame 32 px windows resolve almost no depth: every pixel seeded, so that tracks flow (the default's
# seeding is held by test/stream/test_track_seeds.py)
TINY_ARGS = ["--device", "cpu", "--renderer", "torch", "--window-frames", "8", "--window-stride", "4",
             "--image-width", "32", "--image-height", "32", "--track-grid", "8", "--min-track-confidence", "-1"]


@pytest.fixture(scope="module")
def dgslrm():
    """`main` with only synth and replay registered (the other subcommands are not these tests')."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_main, "SUBCOMMANDS", {k: cli_main.SUBCOMMANDS[k] for k in ("synth", "replay")})
        yield cli_main.main
