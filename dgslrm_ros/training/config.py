"""What a training run needs, as frozen dataclasses without torch, so `dgslrm train --help` stays instant.

A field declared with `parameter(default, description)` is also an option of `dgslrm train`
(`--field-name`, see cli/argtypes.add_config_options); the others keep their defaults from the command
line. `TrainConfig` is saved into trainer_state.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.parameters import parameter

if TYPE_CHECKING:
    from dgslrm_ros.model.config import ModelConfig

class TrainConfigError(DgslrmError, ValueError):
    """A training or loss setting out of range; the message names it."""


PERCEPTUAL = ("lpips", "ssim", "none")
FLOW_LOSSES = ("l1", "l2")


APPEARANCE_RESIDUALS = ("keep", "on", "off")  # train --appearance-residuals


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms and which views are rendered."""

    mse_weight: float = 1.0
    perceptual: str = parameter("lpips", "perceptual loss term: lpips (paper; needs >= 31 px renders), ssim "
                                "(1 - SSIM, any size) or none", choices=PERCEPTUAL)
    perceptual_weight: float = 0.5
    depth_weight: float = parameter(10.0, "weight of the keyframe depth L1 (paper: 10)")
    flow_weight: float = parameter(10.0, "weight of the scene-flow term (paper: 10)")
    flow_loss: str = parameter("l1", "scene-flow error: l1 (paper) or l2 (squared: the gradient grows with the "
                               "error, so the few moving pixels outweigh the many still ones early in training, "
                               "see docs/training.md)", choices=FLOW_LOSSES)
    flow_balance: bool = parameter(False, "average the flow error over moving and still pixels separately, then "
                                   "take the mean of the two: with the plain mean the ~17 % moving pixels lose to "
                                   "the still ones and the offsets collapse to zero (docs/training.md)")
    depth_balance: bool = parameter(False, "average the depth error over moving and still keyframe pixels "
                                    "separately, then take the mean of the two: the sweep cannot see a moving "
                                    "object's depth, so those pixels need their own weight (docs/training.md)")
    gate_weight: float = parameter(0.0, "weight of the binary cross-entropy of a geometry-primed model's gate "
                                   "against ground-truth moving pixels")
    moving_threshold: float = 0.05  # a pixel moves when its GT track travels further (normalised units)
    input_views: int = 2  # input-camera frames rendered per sample, evenly spread; -1 = all
    max_depth: float = 10.0  # GT beyond this (normalised units; the model's `far`) is sky: no depth/flow loss
    background: float = 0.0  # grey level behind the Gaussians

    @property
    def photometric(self) -> bool:
        """False for a geometry-only phase (no rendering at all: 3-4x cheaper per step)."""
        return self.mse_weight > 0 or (self.perceptual != "none" and self.perceptual_weight > 0)

    def __post_init__(self) -> None:
        if self.perceptual not in PERCEPTUAL:
            raise TrainConfigError(f"LossConfig.perceptual: expected one of {PERCEPTUAL}, got {self.perceptual!r}")
        if self.flow_loss not in FLOW_LOSSES:
            raise TrainConfigError(f"LossConfig.flow_loss: expected one of {FLOW_LOSSES}, got {self.flow_loss!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; saved into trainer_state.json. Defaults train `tiny` on CPU."""

    preset: str = parameter("tiny", "model size: a preset of model/config.py (tiny, small, paper)")
    steps: int = parameter(1000, "total optimizer steps of the run")
    out: str = parameter("out/train", "run directory (checkpoints, logs, previews)")
    batch_size: int = parameter(4, "windows per step and process")
    lr: float = parameter(4e-4, "peak learning rate (AdamW)")
    image_size: int = parameter(0, "square training size in px; 0 = the preset's")
    step_sizes: str = parameter("", "square training sizes in px, comma-separated, one per step in turn (64,128 "
                                "alternates): weights that serve each size, where a run at one size forgets the "
                                "other's cues (docs/training.md); replaces --image-size; empty = --image-size only")
    window_frames: int = 0  # 0 = the preset's
    warmup_steps: int = parameter(100, "linear warm-up steps before the cosine decay")
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = parameter(500, "steps between held-out evaluations with previews; 0 = never")
    eval_scenes: int = parameter(2, "held-out windows per periodic evaluation")
    checkpoint_every: int = parameter(500, "steps between checkpoints (and always at the end); 0 = only at the end")
    workers: int = parameter(2, "data loader processes per training process")
    device: str = parameter("auto", "torch device", choices=("auto", "cpu", "cuda"))
    resume: bool = parameter(False, "continue from the state saved in --out")
    init_from: str = parameter("", "start a new run from these weights (checkpoint folder; its architecture "
                               "replaces --preset), e.g. the shipped checkpoint")
    appearance_residuals: str = parameter(
        "keep", "colour/rotation/scale/opacity residuals of a geometry-primed model: keep (as the --init-from "
        "checkpoint or the preset has them), on, or off (only depth and motion are learned; the classical "
        "appearance at the predicted depth)", choices=APPEARANCE_RESIDUALS)
    pixel_refiner: int = parameter(
        -1, "hidden channels of a geometry-primed model's per-pixel refiner of its depth and gate residuals "
        "(model/refiner.py): -1 = keep (as the --init-from checkpoint or the preset has it), 0 = none; added to "
        "--init-from weights it starts at zero, so the run starts from exactly their predictions")
    stop_after: int = parameter(0, "run at most this many steps in this call, then checkpoint (continue later "
                                "with --resume); 0 = all")
    seed: int = parameter(0, "model initialisation seed")
    scene_scale: float = parameter(1.0, "metres per normalised unit (SceneNormalization prior)")
    scene_preset: str = parameter("default", "synthetic scene family (data.scenes presets); several, comma-separated "
                                  "(dynamic,wide), are interleaved window by window; the first one's held-out "
                                  "windows are the evaluation set")
    pixel_samples: int = parameter(1, "rays per pixel side for the synthetic windows' colour (data.dataset."
                                   "WindowDatasetConfig): 1 point-samples, 2+ integrate each pixel's area as a camera does")
    train_scenes: int = parameter(0, "size of the training scene pool (per family); 0 = a new scene for every sample")
    first_window: int = parameter(0, "first training seed of each family: the pool starts here, so a run can go on "
                                  "to windows that earlier runs (pools 0 .. N-1) never saw")
    cue_cache: str = parameter("", "folder caching each training window with its classical cues (geometry-primed "
                               "models; computed once, fp16); with several scene families one subfolder per "
                               "family (<folder>/<family>); empty = computed in the data workers every time, "
                               "kept nowhere (fresh windows that are read once)")
    progress: bool = parameter(True, "the tqdm bar (off: log files only)")
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise TrainConfigError(f"TrainConfig: steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0 or self.grad_clip <= 0:
            raise TrainConfigError(f"TrainConfig: lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")
        if min(self.workers, self.eval_every, self.checkpoint_every, self.train_scenes, self.stop_after,
               self.first_window) < 0:
            raise TrainConfigError("TrainConfig: workers, eval_every, checkpoint_every, train_scenes, stop_after, "
                                   "first_window must be >= 0")
        sizes = self.image_sizes
        if self.step_sizes and (min(sizes) < 1 or len(set(sizes)) != len(sizes)
                                or self.image_size not in (0, sizes[0])):
            raise TrainConfigError(f"TrainConfig.step_sizes: expected distinct sizes > 0 whose first is --image-size "
                                   f"(or --image-size 0), got {self.step_sizes!r} with image_size={self.image_size}")
        if self.pixel_refiner < -1:
            raise TrainConfigError(f"TrainConfig.pixel_refiner: expected -1 (keep), 0 (none) or hidden channels > 0, "
                                   f"got {self.pixel_refiner}")
        if self.appearance_residuals not in APPEARANCE_RESIDUALS:
            raise TrainConfigError(f"TrainConfig.appearance_residuals: expected keep, on or off, got "
                                   f"{self.appearance_residuals!r}")
        from dgslrm_ros.data.scenes import SCENE_PRESETS  # data pulls in torch: not at import of the config

        unknown = [name for name in self.scene_families if name not in SCENE_PRESETS]
        if unknown or len(set(self.scene_families)) != len(self.scene_families):
            raise TrainConfigError(f"TrainConfig.scene_preset: expected distinct families of {sorted(SCENE_PRESETS)}, "
                                   f"comma-separated, got {self.scene_preset!r}")

    @property
    def image_sizes(self) -> tuple[int, ...]:
        """The training sizes in step order: `step_sizes`, else (`image_size`,) (0: the preset's)."""
        try:
            return tuple(int(size) for size in self.step_sizes.split(",")) if self.step_sizes else (self.image_size,)
        except ValueError:
            raise TrainConfigError(f"TrainConfig.step_sizes: expected comma-separated sizes in px, "
                                   f"got {self.step_sizes!r}") from None

    @property
    def scene_families(self) -> tuple[str, ...]:
        """The scene families `scene_preset` names, in order (the first one gives the held-out windows)."""
        from dgslrm_ros.data.scenes import scene_families

        return scene_families(self.scene_preset)

    def model_config(self) -> ModelConfig:
        """The ModelConfig of a fresh run: the preset with this run's image size and window length."""
        from dgslrm_ros.model.config import ModelConfig

        overrides: dict[str, Any] = {}
        if self.image_sizes[0]:
            overrides["image_size"] = self.image_sizes[0]
        if self.window_frames:
            overrides["window_frames"] = self.window_frames
        return self.with_model_switches(ModelConfig.preset(self.preset, **overrides))

    def with_model_switches(self, model_config: ModelConfig) -> ModelConfig:
        """model_config with this run's appearance_residuals and pixel_refiner (each unchanged for `keep`)."""
        if self.appearance_residuals != "keep":
            model_config = replace(model_config, appearance_residuals=self.appearance_residuals == "on")
        if self.pixel_refiner >= 0:
            model_config = replace(model_config, pixel_refiner=self.pixel_refiner)
        return model_config
