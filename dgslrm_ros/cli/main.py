"""`dgslrm` command: one subcommand per module of this package.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int` and imports its heavy
dependencies (torch, rosbags, rclpy) inside `run`, so `dgslrm --help` stays instant. A `DgslrmError`
that leaves a subcommand is printed as one line and ends it with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from dgslrm_ros.core.errors import DgslrmError

# With torch's default OpenMP busy-waiting, a 2-core machine that also runs ROS callbacks or data
# workers slows rendering 4-30x; libgomp reads this once, so it must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("dgslrm_ros.cli.demo", "synthetic scene -> live dgslrm_node over DDS -> bag, PLY, PNG, metrics"),
    "synth": ("dgslrm_ros.cli.synth", "write synthetic dynamic scenes with ground truth as ROS 2 bags"),
    "replay": ("dgslrm_ros.cli.replay", "offline rosbag replay through the node's windowed pipeline"),
    "train": ("dgslrm_ros.cli.train", "train the model (single process or torchrun)"),
    "eval": ("dgslrm_ros.cli.evaluate", "evaluate a checkpoint on a held-out synthetic split"),
    "bench": ("dgslrm_ros.cli.bench", "print timing and memory figures for this device"),
    "export": ("dgslrm_ros.cli.export", "export a window's Gaussians to a standard 3DGS PLY"),
    "pose": ("dgslrm_ros.cli.pose", "pose a real video / image folder / camera-only bag with COLMAP -> posed bag"),
    "view": ("dgslrm_ros.cli.view", "web viewer (viser) of Gaussians as splats, their motion and the tracks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgslrm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(
            name, help=help_text, description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except DgslrmError as error:
        print(f"dgslrm {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
