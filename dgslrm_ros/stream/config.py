"""Configuration of the windowed streaming pipeline (shared by `dgslrm_node` and `dgslrm replay`).

The parameter table of the node's scope "pipeline": each field is declared once with its default,
description and range (core/parameters.py); `ros/params.py` adds the ROS shell's own rows and declares
them all, `config/dgslrm.yaml` holds the same defaults (`test/ros/test_params.py`), and `dgslrm replay`
builds a PipelineConfig without the node: a bad value is refused there too, by name. Window length,
keyframe stride and input size default to the checkpoint's (FROM_MODEL); the pipeline resolves them with
`for_model` once the model is loaded, and everything downstream reads the resolved config.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.parameters import ParameterError, parameter, parameter_table
from dgslrm_ros.evaluation.config import DEFAULT_COLOR_SOLVE_ITERS
from dgslrm_ros.geometry.track_trust import DEFAULT_MIN_TRACK_CONFIDENCE

if TYPE_CHECKING:  # torch-free at run time: the table is read without a model (ros/params.py, docs)
    from dgslrm_ros.model.config import ModelConfig

# window_frames, keyframe_stride, image_width, image_height left to the loaded model (and window_stride to
# half its window): a new checkpoint runs with no parameter edits. `PipelineConfig.for_model` fills them.
FROM_MODEL = -1


class ConfigError(DgslrmError, ValueError):
    """A PipelineConfig value is out of range or inconsistent; the message names the parameter."""


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs to know: one field per node parameter of scope "pipeline"."""

    checkpoint: str = parameter("", "model checkpoint folder or model.safetensors; empty = the shipped checkpoint")
    device: str = parameter("auto", "torch device for the model and renderer (auto = cuda if available)",
                            choices=("auto", "cuda", "cpu"))
    renderer: str = parameter("auto", "Gaussian rasterizer backend (auto = gsplat on CUDA when installed, else torch)",
                              choices=("auto", "gsplat", "torch"))
    window_frames: int = parameter(FROM_MODEL, f"frames per reconstruction window (the model's T); {FROM_MODEL} = "
                                   "the checkpoint's; with method network another value must equal it", minimum=2,
                                   maximum=256, sentinel=FROM_MODEL)
    window_stride: int = parameter(FROM_MODEL, f"frames between the starts of consecutive windows; {FROM_MODEL} = "
                                   "half the window (consecutive windows share half their frames, where tracks "
                                   "chain)", minimum=1, maximum=256, sentinel=FROM_MODEL)
    keyframe_stride: int = parameter(FROM_MODEL, f"window frames per keyframe (the model's l); {FROM_MODEL} = the "
                                     "checkpoint's; with method network another value must equal it, with "
                                     "classical any divisor of the window (2: denser Gaussians, twice the cue time)",
                                     minimum=1, maximum=64, sentinel=FROM_MODEL)
    frame_rate: float = parameter(10.0, "frames per second taken into windows; faster input is skipped and counted",
                                  minimum=0.1, maximum=1000.0)
    image_width: int = parameter(FROM_MODEL, "model input width in pixels (frames are centre-cropped and resized), a "
                                 f"multiple of the model's patch size; {FROM_MODEL} = the checkpoint's training size "
                                 "(the cues cost ~4x more at twice the size: raise it on a GPU)", minimum=8,
                                 maximum=4096, sentinel=FROM_MODEL)
    image_height: int = parameter(FROM_MODEL, f"model input height in pixels, a multiple of the model's patch size; "
                                  f"{FROM_MODEL} = the checkpoint's training size", minimum=8, maximum=4096,
                                  sentinel=FROM_MODEL)
    sync_tolerance: float = parameter(0.05, "largest image-to-pose stamp gap in seconds that is still matched",
                                      minimum=0.0, maximum=10.0)
    max_pending_windows: int = parameter(2, "windows waiting for the model; older ones are dropped and counted",
                                         minimum=1, maximum=64)
    min_opacity: float = parameter(0.005, "Gaussians below this opacity are pruned from the outputs",
                                   minimum=0.0, maximum=1.0)
    track_grid: int = parameter(16, "pixel spacing of the track seeds on each keyframe of the window (model input "
                                "pixels)", minimum=1, maximum=1024)
    min_track_confidence: float = parameter(
        DEFAULT_MIN_TRACK_CONFIDENCE, "tracks are seeded only on keyframe pixels where the plane sweep's "
        "confidence exceeds this or the motion gate says the point moves; at 0 wherever the sweep resolved a "
        "depth at all (elsewhere a still point's depth is a guess, metres off: no parallax); -1 seeds every pixel",
        minimum=0.0, maximum=1.0, sentinel=-1)
    world_frame: str = parameter("world", "frame_id of every output (the frame the input poses are given in)")
    refine_iters: int = parameter(0, "test-time refinement steps per window (0 = pure feed-forward)",
                                  minimum=0, maximum=10000)
    color_solve_iters: int = parameter(DEFAULT_COLOR_SOLVE_ITERS, "iterations that solve each keyframe's Gaussian "
                                       "colours so that the keyframe drawn from its own camera gives its image back "
                                       "(sharper renders: a splat's neighbours blur and cover it; 3: +0.4-3.3 dB on "
                                       "real clips for +0.26 s a 64 px window on 2 CPU threads); 0 = the "
                                       "pre-compensated pixel colours; not used with "
                                       "refine_iters > 0, which fits the colours itself", minimum=0, maximum=100)
    scene_scale: float = parameter(1.0, "metres per normalised model unit (scene normalisation of the window)",
                                   minimum=1e-6, maximum=1e6)
    method: str = parameter("classical", "reconstruction method: classical (multi-view-stereo depth + optical-flow "
                            "cues alone, no learned weights; the default while the network is below it on real "
                            "video) or the geometry-primed network", choices=("network", "classical"))

    @property
    def frame_period(self) -> float:
        """Seconds between admitted frames."""
        return 1.0 / self.frame_rate

    def _given(self, *names: str) -> bool:
        """None of these fields is left to the model (a check between them can run before it loads)."""
        return all(getattr(self, name) != FROM_MODEL for name in names)

    def for_model(self, model: ModelConfig) -> PipelineConfig:
        """This config with the values left to the model taken from it, checked in full.

        An explicit window or keyframe stride other than the model's is refused by name (the head predicts
        exactly one offset per window frame); an explicit input size may differ from the training size
        (the model takes any multiple of its patch size).
        """
        for name in ("window_frames", "keyframe_stride"):
            value, expected = getattr(self, name), getattr(model, name)
            if value not in (FROM_MODEL, expected):
                raise ConfigError(f"parameter '{name}': {value} does not fit the checkpoint, whose model predicts "
                                  f"{name}={expected}; set it to {expected} or to {FROM_MODEL} (the checkpoint's)")
        for name in ("image_width", "image_height"):
            value = getattr(self, name)
            if value != FROM_MODEL and value % model.patch_size:
                raise ConfigError(f"parameter '{name}': {value} is not a multiple of the model's patch size "
                                  f"{model.patch_size}")
        window = model.window_frames
        stride = self.window_stride if self.window_stride != FROM_MODEL else max(window // 2, 1)
        config = dataclasses.replace(
            self, window_frames=window, keyframe_stride=model.keyframe_stride, window_stride=stride,
            **{name: model.image_size for name in ("image_width", "image_height") if getattr(self, name) == FROM_MODEL})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first bad parameter and its allowed range; a check between fields
        waits for `for_model` while one of its values is still the model's."""
        for spec in PIPELINE_PARAMETERS:
            try:
                spec.check(getattr(self, spec.name))
            except ParameterError as error:
                raise ConfigError(str(error)) from None
        if not self.world_frame:
            raise ConfigError("parameter 'world_frame': expected a non-empty frame id, got ''")
        if self._given("window_frames", "keyframe_stride") and self.window_frames % self.keyframe_stride:
            raise ConfigError(
                f"parameter 'window_frames': {self.window_frames} is not a multiple of keyframe_stride="
                f"{self.keyframe_stride} (every space-time token covers keyframe_stride frames)"
            )
        if self._given("window_stride", "window_frames") and self.window_stride > self.window_frames:
            raise ConfigError(
                f"parameter 'window_stride': {self.window_stride} exceeds window_frames={self.window_frames}; "
                f"frames between windows would never be reconstructed (allowed: [1, window_frames])"
            )
        if self._given("image_width", "image_height") and self.track_grid > min(self.image_width, self.image_height):
            raise ConfigError(
                f"parameter 'track_grid': {self.track_grid} px exceeds the model image "
                f"{self.image_width}x{self.image_height}; allowed: [1, min(image_width, image_height)]"
            )
        if self._given("window_frames") and self.sync_tolerance > 0.5 * self.window_frames * self.frame_period:
            raise ConfigError(
                f"parameter 'sync_tolerance': {self.sync_tolerance} s is more than half a window "
                f"({self.window_frames} frames at {self.frame_rate} Hz); allowed: [0, "
                f"{0.5 * self.window_frames * self.frame_period:g}]"
            )


PIPELINE_PARAMETERS = parameter_table(PipelineConfig, "pipeline")
