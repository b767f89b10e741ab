"""Print timing and memory figures for the current device.

With no selector flag every benchmark runs. Each layer owns its benchmark function (returning rows
of figures) so the figures are measured where the code lives; this command only selects and prints.

With `--soak MINUTES` it instead runs the long-run check of `dgslrm_node` (or, with `--replay`, of
`dgslrm replay`): memory, latency, windows per second and drops sampled over time, as a table,
OUT/soak.json and OUT/soak.png (see dgslrm_ros/cli/soak.py).
"""
from __future__ import annotations

import argparse
import importlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dgslrm_ros.stream.config import PipelineConfig

# flag -> (module, function, what it measures)
BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "renderer": ("dgslrm_ros.render.benchmark", "run_renderer_benchmark", "ms per frame at 64/128/256 px, 10k/50k/200k Gaussians"),
    "model": ("dgslrm_ros.model.benchmark", "run_model_benchmark", "parameters and forward time per window of each preset"),
    "data": ("dgslrm_ros.data.benchmark", "run_data_benchmark", "synthetic training samples per second"),
    "ros": ("dgslrm_ros.convert.benchmark", "run_ros_benchmark", "message packing/unpacking against a memcpy of the same bytes"),
    "geometry": ("dgslrm_ros.geometry.benchmark", "run_geometry_benchmark", "classical cues per window: plane sweep, DIS flow, chaining, static fit, moving-region depth, lifting"),
    "node": ("dgslrm_ros.stream.benchmark", "run_pipeline_benchmark", "end-to-end windowed pipeline latency per window"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, (_, _, what) in BENCHMARKS.items():
        parser.add_argument(f"--{flag}", action="store_true", help=what)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device to measure")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and sizes (smoke run)")
    parser.add_argument("--json", default=None, help="also write all rows to this JSON file")
    from dgslrm_ros.cli.soak import add_soak_arguments

    add_soak_arguments(parser)


def _print_table(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    if not rows:
        print("(no rows)")
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_format(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _pipeline_config(pairs: list[str]) -> PipelineConfig:
    """`--param NAME=VALUE` of `--node`: the pipeline's parameters (e.g. keyframe_stride=2), refused by name
    before anything runs; the node's own rows (topics, QoS, ...) only mean something to `--soak`."""
    import yaml

    from dgslrm_ros.cli.soak import _pairs
    from dgslrm_ros.stream.config import PIPELINE_PARAMETERS, ConfigError, PipelineConfig

    names = sorted(spec.name for spec in PIPELINE_PARAMETERS)
    values = {name: yaml.safe_load(text) for name, text in _pairs(pairs, "--param").items()}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SystemExit(f"dgslrm bench --node: --param takes the pipeline's parameters {names}, got {unknown}")
    try:
        config = PipelineConfig(**values)
        config.validate()
    except ConfigError as error:
        raise SystemExit(f"dgslrm bench --node: {error}") from None
    return config


def run(args: argparse.Namespace) -> int:
    if getattr(args, "soak", None):
        from dgslrm_ros.cli.soak import run_soak

        return run_soak(args)
    import torch

    from dgslrm_ros.core.device import resolve_device

    device = str(resolve_device(args.device, "--device"))
    selected = [flag for flag in BENCHMARKS if getattr(args, flag)] or list(BENCHMARKS)
    given = {"node": {"config": _pipeline_config(args.param)}} if args.param and "node" in selected else {}
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"dgslrm bench on {name}, torch {torch.__version__}")
    results: dict[str, list[dict]] = {}
    for flag in selected:
        module_name, function_name, what = BENCHMARKS[flag]
        function = getattr(importlib.import_module(module_name), function_name)
        rows = function(device=device, quick=args.quick, **given.get(flag, {}))
        results[flag] = rows
        _print_table(f"{flag}: {what}", rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "results": results}, f, indent=2)
    return 0
