"""Synthetic dynamic scenes with exact multi-view ground truth (depth, dense 3D scene flow, tracks).

Independent of the Gaussian renderer: scenes are analytic primitives, ray cast in closed form.
  scenes.py        SceneConfig, random scenes, continuous-time object motion (rigid and squash/stretch)
  camera_paths.py  hand-held / robot camera rigs (REP 103 optical world_T_cam), intrinsics, blur
  raycast.py       vectorised ray casting, textures, shading, visibility
  sequence.py      SyntheticSequence / generate_sequence (whole multi-camera videos, for bags and demos)
  sample.py        WindowSample: one window + ground truth (or a batch of them), normalised frame, GT scene flow
  dataset.py       WindowSamples from seeds, seed split, loader, cached split
  benchmark.py     samples/s for `dgslrm bench --data`
"""
from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.dataset import (DATASET_PRESETS, EVAL_SEED_START, TRAIN_SEED_START, CachedWindowDataset,
                                     SyntheticWindowDataset, WindowDatasetConfig, cache_split, dataset_preset,
                                     make_loader, make_window_sample)
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.data.scenes import SCENE_PRESETS, SceneConfig, scene_preset
from dgslrm_ros.data.sequence import SyntheticSequence, generate_sequence

__all__ = [
    "CameraPathConfig", "SceneConfig", "SCENE_PRESETS", "scene_preset", "SyntheticSequence", "generate_sequence",
    "WindowSample", "WindowDatasetConfig", "DATASET_PRESETS", "dataset_preset", "make_window_sample",
    "SyntheticWindowDataset", "CachedWindowDataset", "cache_split", "make_loader", "TRAIN_SEED_START", "EVAL_SEED_START",
]
