"""Configuration of the windowed streaming pipeline (shared by `dgslrm_node` and `dgslrm replay`).

One field per node parameter of the contract, with the defaults of `config/dgslrm.yaml` (the node's
table is `dgslrm_ros/ros/params.py`; `test/ros/test_params.py` ties them together). The per-field
ranges are repeated here because the stream layer must not import `ros/`, and `dgslrm replay` builds
a PipelineConfig without the node: a bad value must be refused there too, by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dgslrm_ros.core.errors import DgslrmError


class ConfigError(DgslrmError, ValueError):
    """A PipelineConfig value is out of range or inconsistent; the message names the parameter."""


# name -> (minimum, maximum) inclusive, for the numeric fields (same as ros/params.py).
_RANGES: dict[str, tuple[float, float]] = {
    "window_frames": (2, 256),
    "window_stride": (1, 256),
    "keyframe_stride": (1, 64),
    "frame_rate": (0.1, 1000.0),
    "image_width": (8, 4096),
    "image_height": (8, 4096),
    "sync_tolerance": (0.0, 10.0),
    "max_pending_windows": (1, 64),
    "min_opacity": (0.0, 1.0),
    "track_grid": (1, 1024),
    "refine_iters": (0, 10000),
    "scene_scale": (1e-6, 1e6),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "device": ("auto", "cuda", "cpu"),
    "renderer": ("auto", "gsplat", "torch"),
    "method": ("network", "classical"),
}


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs to know; see ros/params.py for each parameter's description."""

    checkpoint: str = ""  # empty = the shipped checkpoint (dgslrm_ros/checkpoints/small)
    device: str = "auto"  # auto | cuda | cpu
    renderer: str = "auto"  # auto | gsplat | torch
    window_frames: int = 24  # T
    window_stride: int = 12  # admitted frames between window starts
    keyframe_stride: int = 4  # l
    frame_rate: float = 10.0  # frames per second admitted into windows
    image_width: int = 64  # model input (the CPU default: the cues cost ~4x more at 128 px)
    image_height: int = 64
    sync_tolerance: float = 0.05  # s, image <-> pose
    max_pending_windows: int = 2
    min_opacity: float = 0.005
    track_grid: int = 16  # pixels between track seeds on the model image
    world_frame: str = "world"
    refine_iters: int = 0
    scene_scale: float = 1.0  # metres per normalised unit (prior of core/normalization.py)
    method: str = "classical"  # classical | network (README, Results: why classical is the default)

    @property
    def frame_period(self) -> float:
        """Seconds between admitted frames."""
        return 1.0 / self.frame_rate

    def validate(self) -> None:
        """Raise ConfigError naming the first bad parameter and its allowed range."""
        for f in fields(self):
            value = getattr(self, f.name)
            expected = type(f.default)
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ConfigError(f"parameter '{f.name}': expected {expected.__name__}, got {value!r}")
            if expected is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, expected):
                raise ConfigError(
                    f"parameter '{f.name}': expected {expected.__name__}, got {type(value).__name__} {value!r}"
                )
            if f.name in _CHOICES and value not in _CHOICES[f.name]:
                choices = ", ".join(_CHOICES[f.name])
                raise ConfigError(f"parameter '{f.name}': expected one of {choices}, got {value!r}")
            if f.name in _RANGES:
                low, high = _RANGES[f.name]
                allowed = f"[{low:g}, {high:g}]"
                if isinstance(value, float) and not math.isfinite(value):
                    raise ConfigError(f"parameter '{f.name}': expected a finite number in {allowed}, got {value!r}")
                if not low <= value <= high:
                    raise ConfigError(f"parameter '{f.name}': {value!r} is outside the allowed range {allowed}")
        if not self.world_frame:
            raise ConfigError("parameter 'world_frame': expected a non-empty frame id, got ''")
        if self.window_frames % self.keyframe_stride:
            raise ConfigError(
                f"parameter 'window_frames': {self.window_frames} is not a multiple of keyframe_stride="
                f"{self.keyframe_stride} (every space-time token covers keyframe_stride frames)"
            )
        if self.window_stride > self.window_frames:
            raise ConfigError(
                f"parameter 'window_stride': {self.window_stride} exceeds window_frames={self.window_frames}; "
                f"frames between windows would never be reconstructed (allowed: [1, window_frames])"
            )
        if self.track_grid > min(self.image_width, self.image_height):
            raise ConfigError(
                f"parameter 'track_grid': {self.track_grid} px exceeds the model image "
                f"{self.image_width}x{self.image_height}; allowed: [1, min(image_width, image_height)]"
            )
        if self.sync_tolerance > 0.5 * self.window_frames * self.frame_period:
            raise ConfigError(
                f"parameter 'sync_tolerance': {self.sync_tolerance} s is more than half a window "
                f"({self.window_frames} frames at {self.frame_rate} Hz); allowed: [0, "
                f"{0.5 * self.window_frames * self.frame_period:g}]"
            )
