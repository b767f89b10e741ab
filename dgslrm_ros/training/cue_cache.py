"""Training windows with their classical cues, computed once and cached on disk.

A window's cues (plane sweep, chained flow, lifting) cost about as much as rendering the window, so
both are computed in the data workers on first use and stored as one safetensors file per seed
(`cue_*` keys beside the data-sample keys, cues in the window's normalised frame, fp16 where the
precision allows). Later epochs, resumed runs and other machines with the same folder read them back.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from dgslrm_ros.core.normalization import normalize_window
from dgslrm_ros.geometry.cues import CueConfig, GeometryCues, compute_cues

CUE_PREFIX = "cue_"


def sample_cues(sample: dict[str, Any], scene_scale: float) -> GeometryCues:
    """Cues of one data sample in the normalised frame that data.batch.normalize_batch will use."""
    norm_T_cam, _ = normalize_window(sample["world_T_cam"], scene_scale)
    return compute_cues(sample["frames"], sample["K"], norm_T_cam.float(), sample["keyframe_index"])


def batch_cues(batch: dict[str, Any]) -> GeometryCues | None:
    """The cached cues of a collated batch ([B, ...] tensors), or None when the batch has none."""
    if not any(k.startswith(CUE_PREFIX) for k in batch):
        return None
    return GeometryCues.from_tensors(batch, CUE_PREFIX)


class CuedWindowDataset(Dataset):
    """Wraps a dataset of data samples (with `seed(i)`); adds the cues, caching sample + cues per seed."""

    def __init__(self, base: Dataset, cache_dir: str | Path, scene_scale: float = 1.0):
        self.base = base
        self.scene_scale = scene_scale
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        config = getattr(base, "config", None)
        # The cue settings belong to the key: cues cached by another sweep or flow setting would train the
        # network on inputs the node never gives it.
        meta = {"dataset": config.to_dict() if config is not None else None, "scene_scale": scene_scale,
                "cues": dataclasses.asdict(CueConfig())}
        meta_path = self.cache_dir / "cache.json"
        if meta_path.is_file():
            if json.loads(meta_path.read_text()) != json.loads(json.dumps(meta)):
                raise ValueError(f"{self.cache_dir}: the cache holds windows of another data config, scene scale or "
                                 f"cue settings; use an empty folder for this one")
        else:
            meta_path.write_text(json.dumps(meta, indent=2))
        self.config = config

    def __len__(self) -> int:
        return len(self.base)

    def seed(self, index: int) -> int:
        return self.base.seed(index) if hasattr(self.base, "seed") else index

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.cache_dir / f"window_{self.seed(index):08d}.safetensors"
        if path.is_file():
            try:
                values: dict[str, Any] = dict(load_file(str(path)))
                values["scene_id"] = int(values["scene_id"][0])
                return values
            except (SafetensorError, OSError, KeyError):
                path.unlink(missing_ok=True)  # a half-written file from a killed worker: make it again
        sample = dict(self.base[index])
        with torch.no_grad():
            sample.update(sample_cues(sample, self.scene_scale).as_tensors(CUE_PREFIX))
        tensors = {k: v.contiguous() for k, v in sample.items() if isinstance(v, Tensor)}
        tensors["scene_id"] = torch.tensor([int(sample["scene_id"])], dtype=torch.long)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp))
        os.replace(tmp, path)
        return sample
