#!/usr/bin/env python3
"""Copy a training run's weights into the package as the shipped fp16 checkpoint.

    .venv/bin/python tools/ship_checkpoint.py runs/small-cpu-1 [--dest dgslrm_ros/checkpoints/small]

The node, `dgslrm replay` and `dgslrm demo` load dgslrm_ros/checkpoints/small when no checkpoint is
given. fp16 keeps the `small` file under 16 MB; loading converts back to fp32. The run's `extra`
(step, scene scale, ...) and a note of where the weights came from travel in config.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DEST = Path(__file__).resolve().parents[1] / "dgslrm_ros" / "checkpoints" / "small"
MAX_BYTES = 16 * 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="training run folder (or model.safetensors) to ship")
    parser.add_argument("--dest", default=str(DEFAULT_DEST), help="package checkpoint folder")
    parser.add_argument("--note", default="", help="provenance note stored in config.json extra.shipped_from")
    args = parser.parse_args()

    import torch

    from dgslrm_ros.model.checkpoint import load_model, read_checkpoint_info, save_checkpoint

    info = read_checkpoint_info(args.run)
    model = load_model(args.run)
    extra = dict(info.get("extra") or {})
    extra["shipped_from"] = args.note or str(args.run)
    extra["preset"] = model.config.preset_name()  # runs started with --init-from once recorded the default
    dest = save_checkpoint(args.dest, model, dtype=torch.float16, extra=extra)
    size = (dest / "model.safetensors").stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{dest}/model.safetensors is {size / 2**20:.1f} MiB, over the 16 MiB budget")
    print(f"shipped {args.run} (step {extra.get('step')}) -> {dest} ({size / 2**20:.1f} MiB fp16)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
