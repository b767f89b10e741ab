"""Training windows with their classical cues, computed once and cached on disk.

A window's cues (plane sweep, chained flow, lifting) cost about as much as rendering the window, so
both are computed in the data workers on first use and stored as one safetensors file per seed
(`cue_*` keys beside the WindowSample's own, cues in the window's normalised frame, fp16 where the
precision allows). Later epochs, resumed runs and other machines with the same folder read them back
as a WindowSample whose `cues` are set.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from dgslrm_ros.core.normalization import normalize_window
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.geometry.cues import CueConfig, GeometryCues, compute_cues

CUE_PREFIX = "cue_"


def sample_cues(sample: WindowSample, scene_scale: float) -> GeometryCues:
    """Cues of one sample in the normalised frame that WindowSample.normalized will use."""
    norm_T_cam, _ = normalize_window(sample.world_T_cam, scene_scale)
    return compute_cues(sample.frames, sample.K, norm_T_cam.float(), sample.keyframe_index)


class CuedWindowDataset(Dataset):
    """Wraps a dataset of WindowSamples (with `seed(i)`); adds the cues, caching sample + cues per seed.

    `cache_dir=None` computes them in the data worker every time and keeps nothing: for runs on fresh
    windows that are never read twice (a GPU run's windows would fill its disk), with the same fp16
    rounding that a cached read gives."""

    def __init__(self, base: Dataset, cache_dir: str | Path | None, scene_scale: float = 1.0):
        self.base = base
        self.scene_scale = scene_scale
        config = getattr(base, "config", None)
        self.config = config
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
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

    def __len__(self) -> int:
        return len(self.base)

    def seed(self, index: int) -> int:
        return self.base.seed(index) if hasattr(self.base, "seed") else index

    def __getitem__(self, index: int) -> WindowSample:
        path = None if self.cache_dir is None else self.cache_dir / f"window_{self.seed(index):08d}.safetensors"
        if path is not None and path.is_file():
            try:
                return _cued(load_file(str(path)))
            except (SafetensorError, OSError, KeyError):
                path.unlink(missing_ok=True)  # a half-written file from a killed worker: make it again
        sample = self.base[index]
        with torch.no_grad():
            tensors = sample.to_tensors() | sample_cues(sample, self.scene_scale).as_tensors(CUE_PREFIX)
        if path is not None:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file(tensors, str(tmp))
            os.replace(tmp, path)
        return _cued(tensors)  # what a later read gives (fp16-rounded cues), from the first epoch on


def _cued(values: dict) -> WindowSample:
    return dataclasses.replace(WindowSample.from_tensors(values), cues=GeometryCues.from_tensors(values, CUE_PREFIX))
