"""Training / evaluation windows (`data.sample.WindowSample`) from a seed.

Seed split: training uses seeds TRAIN_SEED_START + i, evaluation EVAL_SEED_START + i; the training
range stops below EVAL_SEED_START (checked), so no evaluation scene is ever trained on. A sample is
a pure function of (seed, config): any worker, any epoch, any machine makes the same tensors.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.data.scenes import SceneConfig, scene_preset as get_scene_preset
from dgslrm_ros.data.sequence import SceneSetup, make_setup, single_threaded, render_camera, surface_flow, visibility_over_time

TRAIN_SEED_START = 0
EVAL_SEED_START = 1_000_000  # training seeds stay below this
SPLITS = {"train": (TRAIN_SEED_START, EVAL_SEED_START - TRAIN_SEED_START), "eval": (EVAL_SEED_START, 1_000_000)}


@dataclass(frozen=True)
class WindowDatasetConfig:
    """Shape of one training window and where its supervision comes from."""

    height: int = 64
    width: int = 64
    window_frames: int = 24
    fps: float = 10.0
    keyframe_stride: int = 4
    num_views: int = 4  # synchronised cameras per scene (the paper's Kubric rigs have 4)
    num_supervision: int = 4  # S: half from each of two cameras other than the input one
    random_input_view: bool = True  # any camera of the rig can be the input
    num_reference_frames: int = 0  # far-away frames of the input camera, outside the window
    reference_span: float = 3.0  # seconds before / after the window the references come from
    # Rays per pixel side for the colour: 1 point-samples the scene (every table so far); 2 or more
    # integrate each pixel's area as a camera does. Point sampling aliases detail finer than a pixel, which
    # other views cannot reproduce: what it costs is measured in docs/results/history.md ("Colours pre-compensated").
    pixel_samples: int = 1
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"WindowDatasetConfig image size must be >= 8 px, got {self.height}x{self.width}")
        if self.window_frames < 1 or self.keyframe_stride < 1:
            raise ValueError(f"WindowDatasetConfig needs window_frames >= 1 and keyframe_stride >= 1, got "
                             f"{self.window_frames}, {self.keyframe_stride}")
        if self.num_supervision > 0 and self.num_views < 2:
            raise ValueError("WindowDatasetConfig.num_supervision > 0 needs num_views >= 2 (supervision comes "
                             "from cameras other than the input)")
        if self.num_supervision < 0 or self.num_reference_frames < 0:
            raise ValueError("WindowDatasetConfig.num_supervision and num_reference_frames must be >= 0")
        if self.fps <= 0:
            raise ValueError(f"WindowDatasetConfig.fps must be > 0, got {self.fps}")
        if self.pixel_samples < 1:
            raise ValueError(f"WindowDatasetConfig.pixel_samples must be >= 1, got {self.pixel_samples}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WindowDatasetConfig:
        values = dict(values)
        scene = dict(values.pop("scene", {}))
        camera = CameraPathConfig(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in scene.pop("camera", {}).items()})
        scene_config = SceneConfig(camera=camera, **{k: tuple(v) if isinstance(v, list) else v
                                                      for k, v in scene.items()})
        return cls(scene=scene_config, **values)


def dataset_config(model_config, scene_preset: str = "default", pixel_samples: int = 1) -> WindowDatasetConfig:
    """The data windows that fit a model: its image size, window length and keyframe stride (pixel_samples:
    WindowDatasetConfig's).

    `model_config` is a model.ModelConfig, read by attribute only (data never imports the model).
    """
    size = model_config.image_size
    return WindowDatasetConfig(height=size, width=size, window_frames=model_config.window_frames,
                               keyframe_stride=model_config.keyframe_stride,
                               num_reference_frames=model_config.num_reference_frames,
                               pixel_samples=pixel_samples, scene=get_scene_preset(scene_preset))


def _supervision_plan(rng: np.random.Generator, config: WindowDatasetConfig, input_view: int):
    """-> (views [S], frame indices [S]): S/2 instants from each of two other cameras (dual-view)."""
    others = [v for v in range(config.num_views) if v != input_view]
    cameras = rng.choice(others, size=min(2, len(others)), replace=False)
    views, frames = [], []
    for i, camera in enumerate(cameras):
        count = config.num_supervision // len(cameras) + (1 if i < config.num_supervision % len(cameras) else 0)
        replace = count > config.window_frames
        picked = np.sort(rng.choice(config.window_frames, size=count, replace=replace))
        views += [int(camera)] * count
        frames += [int(f) for f in picked]
    return torch.tensor(views, dtype=torch.long), torch.tensor(frames, dtype=torch.long)


@dataclass
class WindowPlan:
    """Everything random about one window, drawn before rendering (tests use it to re-cast rays)."""

    setup: SceneSetup
    input_view: int
    sup_view: Tensor   # [S] long camera of each supervision view
    sup_index: Tensor  # [S] long window frame of each supervision view
    ref_times: Tensor  # [R] seconds, outside the window


def plan_window(seed: int, config: WindowDatasetConfig | None = None) -> WindowPlan:
    config = config or WindowDatasetConfig()
    T = config.window_frames
    setup = make_setup(seed, num_frames=T, height=config.height, width=config.width, fps=config.fps,
                       num_views=config.num_views, config=config.scene, pixel_samples=config.pixel_samples)
    rng = np.random.default_rng([seed, 1])  # window choices, independent of the scene draw
    input_view = int(rng.integers(config.num_views)) if config.random_input_view else 0
    sup_view, sup_index = _supervision_plan(rng, config, input_view) if config.num_supervision else (
        torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    ref_times = torch.zeros(0)
    if config.num_reference_frames:
        offsets = rng.uniform(1.0 / config.fps, config.reference_span, size=config.num_reference_frames)
        before = rng.uniform(size=config.num_reference_frames) < 0.5
        ref_times = torch.as_tensor(np.where(before, -offsets, (T - 1) / config.fps + offsets), dtype=torch.float32)
    return WindowPlan(setup=setup, input_view=input_view, sup_view=sup_view, sup_index=sup_index, ref_times=ref_times)


def make_window_sample(seed: int, config: WindowDatasetConfig | None = None) -> WindowSample:
    """One training window with its ground truth (see module docstring for the seed split)."""
    with single_threaded():
        return _make_window_sample(seed, config or WindowDatasetConfig())


def _make_window_sample(seed: int, config: WindowDatasetConfig) -> WindowSample:
    T = config.window_frames
    plan = plan_window(seed, config)
    setup, input_view, sup_view, sup_index, ref_times = (plan.setup, plan.input_view, plan.sup_view,
                                                         plan.sup_index, plan.ref_times)
    timestamps = torch.arange(T, dtype=torch.float32) / config.fps

    # One render call for everything: input window, supervision views, reference frames.
    views = torch.cat([torch.full((T,), input_view), sup_view, torch.full((len(ref_times),), input_view)])
    times = torch.cat([timestamps, timestamps[sup_index], ref_times])
    rendered, poses = render_camera(setup, views, times)
    S = len(sup_index)

    keyframe_index = torch.arange(0, T, config.keyframe_stride)
    keyframes = dataclasses.replace(rendered, rgb=rendered.rgb[keyframe_index], depth=rendered.depth[keyframe_index],
                                    object_id=rendered.object_id[keyframe_index],
                                    canonical=rendered.canonical[keyframe_index])
    keyframe_points = surface_flow(setup, keyframes, timestamps)  # [Kf, T, H, W, 3]
    keyframe_visible = visibility_over_time(
        setup, keyframe_points.permute(0, 2, 3, 1, 4), input_view, timestamps,
        owner=keyframes.object_id).permute(0, 3, 1, 2)  # [Kf, T, H, W]

    K_input = setup.rig.K[input_view]
    R = config.num_reference_frames
    return WindowSample(
        frames=rendered.rgb[:T], K=K_input.expand(T, 3, 3).clone(), world_T_cam=poses[:T], timestamps=timestamps,
        depth=rendered.depth[:T], keyframe_index=keyframe_index, keyframe_points=keyframe_points,
        keyframe_visible=keyframe_visible, sup_frames=rendered.rgb[T:T + S], sup_K=setup.rig.K[sup_view],
        sup_world_T_cam=poses[T:T + S], sup_frame_index=sup_index, sup_depth=rendered.depth[T:T + S],
        scene_id=torch.tensor(int(seed)),
        ref_frames=rendered.rgb[T + S:] if R else None, ref_K=K_input.expand(R, 3, 3).clone() if R else None,
        ref_world_T_cam=poses[T + S:] if R else None, ref_timestamps=ref_times if R else None)


def _check_seed_range(split: str, seed_start: int, num_samples: int) -> None:
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    first, size = SPLITS[split]
    if not (first <= seed_start and seed_start + num_samples <= first + size):
        raise ValueError(f"{split} seeds must lie in [{first}, {first + size}); asked for "
                         f"[{seed_start}, {seed_start + num_samples}). Evaluation seeds start at {EVAL_SEED_START}.")


class SyntheticWindowDataset(Dataset):
    """Index i -> make_window_sample(seed_start + i). Deterministic; renders on the fly."""

    def __init__(self, config: WindowDatasetConfig | None = None, num_samples: int = 10_000, split: str = "train",
                 seed_offset: int = 0):
        self.config = config or WindowDatasetConfig()
        self.split = split
        self.seed_start = SPLITS[split][0] + seed_offset if split in SPLITS else 0
        _check_seed_range(split, self.seed_start, num_samples)
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.num_samples

    def seed(self, index: int) -> int:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        return self.seed_start + index

    def __getitem__(self, index: int) -> WindowSample:
        return make_window_sample(self.seed(index), self.config)


class InterleavedDataset(Dataset):
    """Several map-style datasets of equal length, window by window: index i is item i // n of dataset i % n.

    Training on several scene families this way keeps every batch sequence a fixed function of the step
    (StepBatchSampler), and each family's windows keep their own seeds (and cue cache files).
    """

    def __init__(self, parts: list[Dataset]):
        if not parts or len({len(p) for p in parts}) != 1:
            raise ValueError(f"InterleavedDataset needs datasets of one length, got {[len(p) for p in parts]}")
        self.parts = list(parts)

    def __len__(self) -> int:
        return len(self.parts) * len(self.parts[0])

    def __getitem__(self, index: int) -> WindowSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        return self.parts[index % len(self.parts)][index // len(self.parts)]


def one_thread_worker(_: int) -> None:
    """worker_init_fn: workers run side by side (and beside the trainer); one thread each avoids oversubscription."""
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, batch_size: int = 1, num_workers: int = 2, shuffle: bool = False,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """DataLoader with worker processes, collating samples into a batched WindowSample."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=WindowSample.collate,
                      worker_init_fn=one_thread_worker if num_workers else None, generator=generator,
                      persistent_workers=num_workers > 0, drop_last=drop_last,
                      prefetch_factor=2 if num_workers else None)


# -- cached evaluation split ---------------------------------------------------------------------------

def _sample_path(directory: Path, seed: int) -> Path:
    return directory / f"sample_{seed:08d}.safetensors"


def cache_split(directory: str | Path, config: WindowDatasetConfig | None = None, num_samples: int = 64,
                split: str = "eval", seed_offset: int = 0) -> list[Path]:
    """Render a fixed split once and store one safetensors file per sample (+ config.json)."""
    dataset = SyntheticWindowDataset(config, num_samples=num_samples, split=split, seed_offset=seed_offset)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(
        {"split": split, "seed_start": dataset.seed_start, "num_samples": num_samples,
         "dataset": dataset.config.to_dict()}, indent=2))
    paths = []
    for index in range(num_samples):
        path = _sample_path(directory, dataset.seed(index))
        save_file(dataset[index].to_tensors(), str(path), metadata={"split": split})
        paths.append(path)
    return paths


class CachedWindowDataset(Dataset):
    """Samples written by `cache_split`, read back exactly (same fields, dtypes and values)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        meta_path = self.directory / "config.json"
        self.meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        self.config = WindowDatasetConfig.from_dict(self.meta["dataset"]) if "dataset" in self.meta else None
        if "seed_start" in self.meta:  # exactly the split that was written, not leftovers of an older one
            seeds = range(self.meta["seed_start"], self.meta["seed_start"] + self.meta["num_samples"])
            self.paths = [_sample_path(self.directory, seed) for seed in seeds]
            missing = [p.name for p in self.paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} cached samples missing in {self.directory} (first: "
                                        f"{missing[0]}); rewrite the split with cache_split()")
        else:
            self.paths = sorted(self.directory.glob("sample_*.safetensors"))
        if not self.paths:
            raise FileNotFoundError(f"no sample_*.safetensors in {self.directory}; write them with cache_split()")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> WindowSample:
        return WindowSample.from_tensors(load_file(str(self.paths[index])))
