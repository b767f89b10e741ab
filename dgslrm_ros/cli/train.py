"""Train DGS-LRM on synthetic dynamic scenes: single process, or data parallel under torchrun.

    dgslrm train --preset tiny --steps 200 --out out/tiny
    dgslrm train --preset small --steps 40000 --out runs/small --resume           # continue a run
    torchrun --nproc_per_node 4 -m dgslrm_ros.cli.main train --preset small ...   # 4 GPUs

OUT receives model.safetensors + config.json (the checkpoint `dgslrm eval` and the node read),
optimizer.safetensors + trainer_state.json (for --resume), train_log.jsonl and eval/ previews.
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small", "paper"], help="model size")
    parser.add_argument("--steps", type=int, default=1000, help="total optimizer steps of the run")
    parser.add_argument("--out", default="out/train", help="run directory (checkpoints, logs, previews)")
    parser.add_argument("--resume", action="store_true", help="continue from the state saved in --out")
    parser.add_argument("--init-from", default="",
                        help="start a new run from these weights (checkpoint folder; its architecture replaces --preset)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="run at most this many steps now, then checkpoint (continue later with --resume)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per step and process")
    parser.add_argument("--lr", type=float, default=4e-4, help="peak learning rate (AdamW)")
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps before the cosine decay")
    parser.add_argument("--image-size", type=int, default=0, help="square training size in px; 0 = preset's")
    parser.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations; 0 = never")
    parser.add_argument("--eval-scenes", type=int, default=2, help="held-out windows per periodic evaluation")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (and at the end)")
    parser.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--scene-scale", type=float, default=1.0, help="metres per normalised unit (prior)")
    parser.add_argument("--scene-preset", default="default", help="synthetic scene family (data.scenes presets)")
    parser.add_argument("--train-scenes", type=int, default=0, help="limit the training pool; 0 = new scene per sample")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    parser.add_argument("--perceptual", default="lpips", choices=["lpips", "ssim", "none"],
                        help="perceptual loss term (LPIPS needs >= 31 px renders; ssim works at any size)")
    parser.add_argument("--depth-weight", type=float, default=10.0, help="weight of the keyframe depth L1 (paper: 10)")
    parser.add_argument("--flow-weight", type=float, default=10.0, help="weight of the scene-flow term (paper: 10)")
    parser.add_argument("--flow-loss", default="l1", choices=["l1", "l2"],
                        help="scene-flow error: l1 (paper) or l2 (squared; favours the moving pixels early on)")
    parser.add_argument("--geometry-only", action="store_true",
                        help="no rendering: depth + scene-flow (+ gate) losses only, 3-4x cheaper per step (a first phase)")
    parser.add_argument("--flow-balance", action="store_true",
                        help="average the flow error over moving and still pixels separately (keeps motion from collapsing)")
    parser.add_argument("--gate-weight", type=float, default=0.0,
                        help="weight of the gate's cross-entropy against ground-truth moving pixels (geometry-primed)")
    parser.add_argument("--cue-cache", default="",
                        help="folder caching each training window with its classical cues (computed once, fp16)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar (log files only)")


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.training.loop import TrainConfig, train
    from dgslrm_ros.training.losses import LossConfig

    config = TrainConfig(
        preset=args.preset, steps=args.steps, out=args.out, resume=args.resume, init_from=args.init_from, stop_after=args.stop_after, batch_size=args.batch_size,
        lr=args.lr, warmup_steps=args.warmup, image_size=args.image_size, eval_every=args.eval_every,
        eval_scenes=args.eval_scenes, checkpoint_every=args.checkpoint_every, workers=args.workers,
        device=args.device, scene_scale=args.scene_scale, scene_preset=args.scene_preset,
        train_scenes=args.train_scenes, seed=args.seed, progress=not args.no_progress, cue_cache=args.cue_cache,
        loss=LossConfig(perceptual="none" if args.geometry_only else args.perceptual,
                        mse_weight=0.0 if args.geometry_only else 1.0, depth_weight=args.depth_weight,
                        flow_weight=args.flow_weight, flow_loss=args.flow_loss, flow_balance=args.flow_balance,
                        gate_weight=args.gate_weight),
    )
    result = train(config)  # --resume from a missing or damaged run directory: a DgslrmError, exit 2
    if result.history:
        last = result.history[-1]
        print(f"step {result.step}: loss {last['total']:.4f} (mse {last['mse']:.4f}, depth {last['depth']:.4f}, "
              f"flow {last['flow']:.4f}); checkpoint in {args.out}")
    else:
        print(f"nothing to do: {args.out} is already at step {result.step} of {args.steps}")
    return 0
