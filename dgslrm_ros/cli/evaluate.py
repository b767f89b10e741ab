"""Evaluate a checkpoint on the fixed held-out synthetic windows, against two baselines.

Prints a table (novel-view PSNR/SSIM, 3D track error) for the network, the *static* baseline (its
motion forced to zero) and the *optimised* baseline (test-time optimisation of the same Gaussians
from depth-unprojected pixels), and writes metrics.json + preview PNGs to --out. What is scored and
how much it costs are EvalConfig's described fields (evaluation/config.py), one option each.
"""
from __future__ import annotations

import argparse
import sys

from dgslrm_ros.cli.argtypes import add_config_options, config_from_options
from dgslrm_ros.evaluation.config import EvalConfig  # torch-free: --help stays instant


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory or its model.safetensors")
    parser.add_argument("--out", default="out/eval", help="where metrics.json and previews go")
    add_config_options(parser, EvalConfig)
    parser.add_argument("--cache", default=None, help="directory caching the rendered held-out windows")
    parser.add_argument("--scene-scale", type=float, default=None, help="metres per unit; default: the training run's")
    parser.add_argument("--scene-preset", default=None,
                        help="held-out scene family (data.scenes presets); default: the training run's")
    parser.add_argument("--image-size", type=int, default=0,
                        help="square resolution of the held-out windows in px; 0 = the checkpoint's training size")
    parser.add_argument("--pixel-samples", type=int, default=1,
                        help="rays per pixel side for the held-out windows' colour: 1 point-samples (every table so "
                             "far), 2+ integrate each pixel's area as a camera does (data.dataset.WindowDatasetConfig)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.core.device import resolve_device
    from dgslrm_ros.data.scenes import scene_families
    from dgslrm_ros.evaluation.evaluate import evaluate_model, format_table, held_out_windows
    from dgslrm_ros.model.checkpoint import load_model, read_checkpoint_info

    device = resolve_device(args.device, "--device")
    model = load_model(args.checkpoint, device)  # a CheckpointError says which file and what to do
    extra = read_checkpoint_info(args.checkpoint).get("extra", {})
    if args.image_size:
        import dataclasses

        # the model has no positional embedding: it runs at any multiple of its patch size (else ModelConfigError)
        model.config = dataclasses.replace(model.config, image_size=args.image_size)
    scene_scale = args.scene_scale if args.scene_scale is not None else float(extra.get("scene_scale", 1.0))
    # a checkpoint trained on several families (comma-separated) is scored on the first one's windows
    preset = args.scene_preset or scene_families(extra.get("scene_preset", "default"))[0]
    try:
        samples = held_out_windows(model.config, args.num_scenes, cache=args.cache, scene_preset=preset,
                                   pixel_samples=args.pixel_samples)
    except KeyError as error:  # unknown preset name
        print(f"dgslrm eval: {error.args[0]}", file=sys.stderr)
        return 2
    except ValueError as error:  # e.g. --pixel-samples 0
        print(f"dgslrm eval: {error}", file=sys.stderr)
        return 2
    print(f"dgslrm eval: {args.num_scenes} held-out windows of the {preset!r} scene family at "
          f"{model.config.image_size} px")
    config = config_from_options(EvalConfig, args, scene_scale=scene_scale)
    result = evaluate_model(model, samples, config, out_dir=args.out, device=device)
    print(format_table(result))
    print(f"metrics: {args.out}/metrics.json, previews: {args.out}/previews/")
    return 0
