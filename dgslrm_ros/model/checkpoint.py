"""Model checkpoints: `model.safetensors` (weights, never pickle) + `config.json` (ModelConfig) side by side.

config.json:
    {"format": "dgslrm_ros.model", "format_version": 1, "weights": "model.safetensors",
     "weights_dtype": "float16", "model_config": {...ModelConfig fields...}, "extra": {...}}
`extra` is free JSON for the caller (training step, data seed, metrics); optimizer state is the training
loop's business, not this file's. Loading always gives an fp32 model on the requested device.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.model.config import ModelConfig, ModelConfigError
from dgslrm_ros.model.dgslrm import DGSLRM

FORMAT = "dgslrm_ros.model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "small"  # what `checkpoint: ""` loads


class CheckpointError(DgslrmError, RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit the model its config describes."""


def save_checkpoint(
    directory: str | Path,
    model: DGSLRM,
    dtype: torch.dtype | None = None,
    extra: dict | None = None,
) -> Path:
    """Write `directory/model.safetensors` and `directory/config.json`; returns the directory.

    dtype: store floating weights as this dtype (torch.float16 for the shipped file); None keeps them.
    Each file is written to a temporary name and renamed, so an interrupted save never leaves a half file.
    """
    directory = Path(directory)
    model = _unwrap(model)
    if dtype is not None and not dtype.is_floating_point:
        raise CheckpointError(f"save_checkpoint: dtype must be a floating dtype (e.g. torch.float16), got {dtype}")
    try:
        json.dumps(extra or {})
    except TypeError as error:
        raise CheckpointError(f"save_checkpoint: extra must be JSON-serialisable ({error}); convert tensors with .item()/.tolist()") from error
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.dtype.is_floating_point:
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    stored = {t.dtype for t in tensors.values() if t.dtype.is_floating_point}
    weights_dtype = str(stored.pop()).removeprefix("torch.") if len(stored) == 1 else "mixed"
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": WEIGHTS_FILE,
        "weights_dtype": weights_dtype,
        "num_parameters": model.num_parameters(),
        "model_config": model.config.to_dict(),
        "extra": extra or {},
    }
    _atomic_write(directory / WEIGHTS_FILE, lambda path: save_file(tensors, path, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)}))
    _atomic_write(directory / CONFIG_FILE, lambda path: Path(path).write_text(json.dumps(config, indent=2) + "\n"))
    return directory


def _unwrap(model) -> DGSLRM:
    """The DGSLRM inside DistributedDataParallel (`.module`) or torch.compile (`._orig_mod`) wrappers."""
    for attribute in ("module", "_orig_mod"):
        while not isinstance(model, DGSLRM) and hasattr(model, attribute):
            model = getattr(model, attribute)
    if not isinstance(model, DGSLRM):
        raise CheckpointError(f"save_checkpoint: expected a DGSLRM (or a DDP / compiled wrapper of one), got {type(model).__name__}")
    return model


def _atomic_write(target: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def checkpoint_paths(path_or_dir: str | Path) -> tuple[Path, Path]:
    """(weights, config) for a checkpoint directory or either of its two files."""
    path = Path(path_or_dir)
    directory = path if path.is_dir() else path.parent
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint; expected a directory holding {WEIGHTS_FILE} and {CONFIG_FILE}")
    for required in (WEIGHTS_FILE, CONFIG_FILE):
        if not (directory / required).is_file():
            raise CheckpointError(
                f"{directory}: missing {required}; a checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE} side by side "
                f"(written by dgslrm_ros.model.checkpoint.save_checkpoint)"
            )
    return directory / WEIGHTS_FILE, directory / CONFIG_FILE


def read_checkpoint_info(path_or_dir: str | Path) -> dict:
    """The parsed, validated config.json (with `model_config` turned into a ModelConfig)."""
    _, config_path = checkpoint_paths(path_or_dir)
    try:
        info = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path}: not readable JSON ({error}); re-save the checkpoint") from error
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{config_path}: expected format {FORMAT!r}, got {info.get('format') if isinstance(info, dict) else info!r}")
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: checkpoint format_version {version!r}, this code reads version {FORMAT_VERSION}; "
            f"use the dgslrm_ros release that wrote it, or re-export the checkpoint"
        )
    if isinstance(info.get("model_config"), dict) and "cue_channels" not in info["model_config"]:
        raise CheckpointError(
            f"{config_path}: this checkpoint predates the geometry-primed model (its model_config has no "
            f"cue_channels), so this version cannot run it; use the shipped checkpoint (checkpoint: ''), retrain "
            f"with `dgslrm train`, or run the cues alone with method: classical"
        )
    try:
        info["model_config"] = ModelConfig.from_dict(info.get("model_config"))
    except (ModelConfigError, TypeError) as error:
        raise CheckpointError(f"{config_path}: invalid model_config: {error}") from error
    return info


def load_model(path_or_dir: str | Path, device: torch.device | str = "cpu") -> DGSLRM:
    """A DGSLRM in fp32 and eval mode on `device`, from a checkpoint directory or one of its files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, _ = checkpoint_paths(path_or_dir)
    config = read_checkpoint_info(path_or_dir)["model_config"]
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{weights_path}: corrupt or truncated safetensors file ({error}); re-save or re-download it") from error
    model = DGSLRM(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{name}: file {tuple(tensors[name].shape)} vs config {tuple(expected[name].shape)}"
        for name in sorted(set(expected) & set(tensors))
        if tuple(tensors[name].shape) != tuple(expected[name].shape)
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys {_abbreviate(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_abbreviate(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatch {_abbreviate(mismatched)}")
        raise CheckpointError(
            f"{weights_path}: weights do not match the config.json model_config ({'; '.join(problems)}); "
            f"the two files come from different models"
        )
    bad = [name for name, tensor in tensors.items() if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise CheckpointError(f"{weights_path}: non-finite (NaN/inf) values in {_abbreviate(bad)}; the training run diverged")
    model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in tensors.items()})
    return model.to(device).eval()


def _abbreviate(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... ({len(items) - limit} more)' if len(items) > limit else ''}]"
