"""Training DGS-LRM: one function, `train(config)`, that reads top to bottom like nanoGPT's train.py.

    model + AdamW (resumed from OUT when asked) -> deterministic per-step batches -> normalise ->
    forward (bf16 autocast on GPU) -> losses -> backward -> clip -> step -> log / eval / checkpoint

Runs alone or under `torchrun` (DistributedDataParallel; gloo on CPU, nccl on CUDA). The batch of
step s on rank r is a pure function of (s, r), so a resumed run sees exactly the data the
uninterrupted run would have seen, and ranks never share a scene. Only rank 0 writes files.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from dgslrm_ros.data.dataset import (EVAL_SEED_START, TRAIN_SEED_START, InterleavedDataset, SyntheticWindowDataset,
                                     dataset_config, one_thread_worker)
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.evaluation.evaluate import EvalConfig, evaluate_model
from dgslrm_ros.model import DGSLRM, ModelConfig
from dgslrm_ros.model.checkpoint import load_model, save_checkpoint
from dgslrm_ros.training.config import TrainConfig, TrainConfigError
from dgslrm_ros.training.cue_cache import CuedWindowDataset
from dgslrm_ros.training.distributed import (DistInfo, all_reduce_mean, barrier, cleanup_distributed, device_for,
                                             dist_info_from_env, setup_distributed)
from dgslrm_ros.training.losses import compute_losses
from dgslrm_ros.training.schedule import lr_at
from dgslrm_ros.training.state import load_trainer_state, save_trainer_state

LOG_FILE = "train_log.jsonl"


@dataclass
class TrainResult:
    model: torch.nn.Module  # unwrapped (no DDP)
    history: list[dict[str, float]]  # one entry per step run in this call
    step: int  # optimizer steps completed in total


class StepBatchSampler(Sampler[list[int]]):
    """Batch of step s on rank r = items [(s * world + r) * B, ... + B) (mod the pool size, if any).

    With `groups` > 1 the dataset interleaves that many pools of `pool` items (an InterleavedDataset of one
    set per image size: item i of pool g is index i * groups + g) and step s draws from pool s % groups:
    every batch one size, the sizes in turn.
    """

    def __init__(self, start_step: int, end_step: int, batch_size: int, rank: int, world_size: int, pool: int,
                 groups: int = 1):
        if groups > 1 and not pool:
            raise ValueError("StepBatchSampler: several groups need a finite pool (the size of one group)")
        self.start_step, self.end_step = start_step, end_step
        self.batch_size, self.rank, self.world_size, self.pool, self.groups = batch_size, rank, world_size, pool, groups

    def indices(self, step: int) -> list[int]:
        first = (step * self.world_size + self.rank) * self.batch_size
        items = range(first, first + self.batch_size)
        if not self.pool:
            return list(items)
        return [(i % self.pool) * self.groups + step % self.groups for i in items]

    def __iter__(self):
        for step in range(self.start_step, self.end_step):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)


def make_datasets(config: TrainConfig, model_config: ModelConfig) -> tuple[Dataset, Dataset]:
    """Training windows (index -> training seed; several families interleaved, each with its cue cache; with
    several `step_sizes` an InterleavedDataset of one such set and cache subfolder `<size>px` a size) and the fixed
    held-out windows (evaluation seeds) of the first family at the first size."""
    families = config.scene_families
    sizes = config.image_sizes if config.step_sizes else (model_config.image_size,)
    num_samples = config.train_scenes or EVAL_SEED_START - TRAIN_SEED_START - config.first_window
    groups: list[Dataset] = []
    for size in sizes:
        sized_config = replace(model_config, image_size=size)
        cache = Path(config.cue_cache) if config.cue_cache else None
        if cache is not None and len(sizes) > 1:
            cache = cache / f"{size}px"
        parts: list[Dataset] = []
        for family in families:
            part: Dataset = SyntheticWindowDataset(dataset_config(sized_config, family, config.pixel_samples),
                                                   num_samples=num_samples,
                                                   split="train", seed_offset=config.first_window)
            if model_config.geometry_primed:  # the cues in the data workers, cached where a folder is given
                folder = None if cache is None else cache if len(families) == 1 else cache / family
                part = CuedWindowDataset(part, folder, config.scene_scale)
            parts.append(part)
        groups.append(parts[0] if len(parts) == 1 else InterleavedDataset(parts))
    train_set = groups[0] if len(groups) == 1 else InterleavedDataset(groups)
    eval_set = SyntheticWindowDataset(dataset_config(replace(model_config, image_size=sizes[0]), families[0],
                                                     config.pixel_samples),
                                      num_samples=max(1, config.eval_scenes),
                                      split="eval")
    return train_set, eval_set


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (nanoGPT): biases, norms and embeddings of size 1-D are exempt."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _with_config(model: DGSLRM, model_config: ModelConfig) -> DGSLRM:
    """`model`'s weights under `model_config`, which may add (or drop) the pixel refiner: an added refiner
    starts at zero (model/refiner.py), so the predictions stay those of the loaded weights."""
    if model_config.pixel_refiner == model.config.pixel_refiner:
        model.config = model_config
        return model
    device = next(model.parameters()).device
    rebuilt = DGSLRM(model_config).to(device)
    kept = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("refiner.")}
    missing, unexpected = rebuilt.load_state_dict(kept, strict=False)
    assert not unexpected and all(name.startswith("refiner.") for name in missing), (missing, unexpected)
    return rebuilt


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _write_log(out: Path, record: dict[str, Any]) -> None:
    with open(out / LOG_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")


def save_training(out: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                  config: TrainConfig, info: DistInfo) -> None:
    """Checkpoint (model.safetensors + config.json) and resumable trainer state, rank 0 only."""
    if not info.is_main:
        return
    save_checkpoint(out, model, extra={"step": step, "preset": config.preset, "scene_scale": config.scene_scale,
                                       "scene_preset": config.scene_preset})
    state = {"step": step, "seed": config.seed, "world_size": info.world_size,
             "schedule": {"base_lr": config.lr, "warmup_steps": config.warmup_steps, "total_steps": config.steps,
                          "min_lr_ratio": config.min_lr_ratio},
             "config": json.loads(json.dumps(asdict(config), default=str))}
    save_trainer_state(out, optimizer, state, _rng_state())


def train(config: TrainConfig, dataset: Dataset | None = None,
          eval_samples: Dataset | Sequence[WindowSample] | None = None) -> TrainResult:
    """Run (or continue, with config.resume) a training run; returns the model and this call's loss history.

    `dataset` / `eval_samples` replace the synthetic ones (tests overfit a single window this way).
    """
    # ---- processes and device
    info = dist_info_from_env()
    device = device_for(config.device, info)
    setup_distributed(info, device)
    out = Path(config.out)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)

    # ---- model and optimizer, fresh or resumed
    start_step = 0
    resume_state = None
    if config.resume and (out / "model.safetensors").is_file():
        model = load_model(out, device)
        resume_state = load_trainer_state(out)
        start_step = int(resume_state[0]["step"])
    elif config.init_from:
        # Fine-tuning / continuing across sessions from committed weights when the optimizer state is
        # gone: the checkpoint's architecture wins over --preset; only the training resolution may change
        # (the model has no positional embedding, so it runs at any multiple of the patch size).
        model = load_model(config.init_from, device)
        if config.window_frames and config.window_frames != model.config.window_frames:
            raise TrainConfigError(f"TrainConfig.window_frames={config.window_frames} differs from the "
                             f"{model.config.window_frames} frames of --init-from {config.init_from}; drop it")
        if config.image_sizes[0]:
            model.config = replace(model.config, image_size=config.image_sizes[0])
        model = _with_config(model, config.with_model_switches(model.config))  # e.g. the shipped weights with a refiner
        config = replace(config, preset=model.config.preset_name())  # recorded in checkpoints and state
    else:
        torch.manual_seed(config.seed)
        model = DGSLRM(config.model_config()).to(device)
    model.train()
    model_config: ModelConfig = model.config
    loss_config = replace(config.loss, max_depth=model_config.far)  # GT beyond the model's far plane is sky
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas,
                                  fused=device.type == "cuda")
    if resume_state is not None:
        _, optimizer_state, rng = resume_state
        optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
    ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if info.enabled else model

    # ---- data: batch of step s on rank r is fixed by (s, r)
    groups = 1  # image sizes taking turns (StepBatchSampler); a dataset passed in is one
    if dataset is None:
        dataset, default_eval = make_datasets(config, model_config)
        groups = len(config.image_sizes)
        eval_samples = default_eval if eval_samples is None else eval_samples
    eval_samples = [] if eval_samples is None else eval_samples
    pool = len(dataset) // groups  # a map-style dataset; the training synthetic set spans the whole seed range
    end_step = min(config.steps, start_step + config.stop_after) if config.stop_after else config.steps
    sampler = StepBatchSampler(start_step, end_step, config.batch_size, info.rank, info.world_size, pool, groups)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.workers, pin_memory=device.type == "cuda",
                        collate_fn=WindowSample.collate, worker_init_fn=one_thread_worker if config.workers else None)

    # ---- the loop
    history: list[dict[str, float]] = []
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    bar = tqdm(total=config.steps, initial=start_step, disable=not (info.is_main and config.progress),
               desc="train", dynamic_ncols=True)
    step = start_step
    for batch in loader:
        t0 = time.perf_counter()
        lr = lr_at(step, config.lr, config.warmup_steps, config.steps, config.min_lr_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr

        batch, _ = batch.to(device).normalized(config.scene_scale)
        with autocast:
            prediction = ddp_model(**batch.model_inputs(), cues=batch.cues)
        losses = compute_losses(prediction, batch, loss_config)
        record = {k: float(all_reduce_mean(v.detach(), info)) for k, v in losses.items()}  # same on every rank
        if not all(math.isfinite(value) for value in record.values()):
            raise FloatingPointError(f"step {step + 1}: non-finite loss {record}; lower --lr or check the data")

        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1

        record.update(step=step, lr=lr, grad_norm=float(grad_norm), seconds=time.perf_counter() - t0)
        history.append(record)
        bar.update(1)
        bar.set_postfix({k: f"{record[k]:.4f}" for k in ("total", "mse", "depth", "flow")} | {"psnr": f"{record['psnr']:.1f}"})
        if info.is_main:
            _write_log(out, record)

        if config.eval_every and step % config.eval_every == 0 and len(eval_samples):
            if info.is_main:
                _evaluate(model, eval_samples, config, out / "eval" / f"step_{step:07d}", device, step)
            barrier(info)
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == end_step:
            save_training(out, model, optimizer, step, config, info)
            barrier(info)
    bar.close()
    cleanup_distributed(info)
    return TrainResult(model=model, history=history, step=step)


def _evaluate(model: torch.nn.Module, samples: Dataset | Sequence[WindowSample], config: TrainConfig, out: Path,
              device: torch.device, step: int) -> None:
    """Held-out metrics of the current weights (no baselines: they cost minutes) + preview PNGs."""
    eval_config = EvalConfig(num_scenes=config.eval_scenes, baselines=False, classical=False, oracles=False, previews=1,
                             progress=False, scene_scale=config.scene_scale)
    result = evaluate_model(model, samples, eval_config, out_dir=out, device=device)
    metrics = result["methods"]["network"]
    tqdm.write(f"step {step}: held-out novel PSNR {metrics['novel_psnr']:.2f} dB, SSIM {metrics['novel_ssim']:.3f}, "
               f"track EPE {metrics['track_epe_m']:.3f} m, moving-point flow EPE {metrics['moving_flow_epe_m']:.3f} m "
               f"(previews in {out})")
    _write_log(out.parent.parent, {"step": step, "eval": metrics})
