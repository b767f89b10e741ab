"""Trainer state on disk without pickle: optimizer tensors in safetensors, everything else as JSON.

A training directory holds the model checkpoint (`model.safetensors` + `config.json`, written by
model/checkpoint.py) and beside it `optimizer.safetensors` + `trainer_state.json`, so a run continues
on another machine with `--resume` exactly where it stopped (same next-step loss).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dgslrm_ros.core.errors import DgslrmError

OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"


class TrainStateError(DgslrmError, RuntimeError):
    """A resume directory is missing or inconsistent."""


def optimizer_to_safetensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten `optimizer.state_dict()` into ({"state.<param>.<name>": tensor}, JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_safetensors(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of `optimizer_to_safetensors`: a dict for `optimizer.load_state_dict`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, entry in meta.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(entry)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_trainer_state(directory: str | Path, optimizer: torch.optim.Optimizer, state: dict[str, Any],
                       rng: dict[str, torch.Tensor]) -> None:
    """Write optimizer tensors + RNG states (safetensors) and the JSON trainer state into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, opt_meta = optimizer_to_safetensors(optimizer)
    tensors.update({f"rng.{k}": v.detach().cpu().contiguous() for k, v in rng.items()})
    tmp = directory / (OPTIMIZER_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "dgslrm_ros.optimizer", "version": "1"})
    os.replace(tmp, directory / OPTIMIZER_FILE)
    _atomic_write_text(directory / TRAINER_STATE_FILE, json.dumps({**state, "optimizer": opt_meta}, indent=2))


def load_trainer_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, torch.Tensor]]:
    """Read what `save_trainer_state` wrote -> (trainer state, optimizer state_dict, RNG states)."""
    directory = Path(directory)
    state_path, opt_path = directory / TRAINER_STATE_FILE, directory / OPTIMIZER_FILE
    if not state_path.is_file() or not opt_path.is_file():
        raise TrainStateError(
            f"{directory}: cannot resume, expected {TRAINER_STATE_FILE} and {OPTIMIZER_FILE} there "
            f"(written by `dgslrm train --out {directory}`); start without --resume instead"
        )
    try:
        state = json.loads(state_path.read_text())
        if not isinstance(state, dict) or "step" not in state or "optimizer" not in state:
            raise ValueError("expected an object with 'step' and 'optimizer'")
    except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise TrainStateError(f"{state_path}: unreadable trainer state ({error}); the run was interrupted while "
                              "saving or the file was damaged; start without --resume") from error
    try:
        tensors = load_file(str(opt_path))
    except Exception as error:  # safetensors raises its own SafetensorError for a truncated file
        raise TrainStateError(f"{opt_path}: corrupt or truncated optimizer state ({error}); "
                              "start without --resume") from error
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    opt_tensors = {k: v for k, v in tensors.items() if k.startswith("state.")}
    return state, optimizer_from_safetensors(opt_tensors, state.pop("optimizer")), rng
