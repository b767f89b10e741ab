"""Train DGS-LRM on synthetic dynamic scenes: single process, or data parallel under torchrun.

    dgslrm train --preset tiny --steps 200 --out out/tiny
    dgslrm train --preset small --steps 40000 --out runs/small --resume           # continue a run
    torchrun --nproc_per_node 4 -m dgslrm_ros.cli.main train --preset small ...   # 4 GPUs

OUT receives model.safetensors + config.json (the checkpoint `dgslrm eval` and the node read),
optimizer.safetensors + trainer_state.json (for --resume), train_log.jsonl and eval/ previews.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dgslrm_ros.cli.argtypes import add_config_options, config_from_options

if TYPE_CHECKING:
    from dgslrm_ros.training.config import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dgslrm_ros.training.config import LossConfig, TrainConfig

    add_config_options(parser, TrainConfig, aliases={"warmup_steps": ("--warmup",)})
    add_config_options(parser, LossConfig)
    parser.add_argument("--geometry-only", action="store_true",
                        help="no rendering: depth + scene-flow (+ gate) losses only, 3-4x cheaper per step (a first phase)")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's TrainConfig from the parsed options (--geometry-only switches the photometric terms off)."""
    from dgslrm_ros.training.config import LossConfig, TrainConfig

    geometry_only = {"perceptual": "none", "mse_weight": 0.0} if args.geometry_only else {}
    return config_from_options(TrainConfig, args, loss=config_from_options(LossConfig, args, **geometry_only))


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.training.loop import train

    config = train_config(args)
    result = train(config)  # --resume from a missing or damaged run directory: a DgslrmError, exit 2
    if result.history:
        last = result.history[-1]
        print(f"step {result.step}: loss {last['total']:.4f} (mse {last['mse']:.4f}, depth {last['depth']:.4f}, "
              f"flow {last['flow']:.4f}); checkpoint in {args.out}")
    else:
        print(f"nothing to do: {args.out} is already at step {result.step} of {args.steps}")
    return 0
