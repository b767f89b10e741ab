"""Every parameter of `dgslrm_node`, described once.

`PARAMETERS` is the single table: the node declares each entry with its description and range
(rcl_interfaces/ParameterDescriptor), `config/dgslrm.yaml` holds the same defaults and the stream
layer's `PipelineConfig` has one field per entry; `test/ros/test_params.py` ties the four together.
Kept free of rclpy so the table can be read (docs, tests, the demo) without a ROS install.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping


class ParameterError(ValueError):
    """A parameter value the node refuses at start-up; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: its type is the type of `default` (bool excluded)."""

    name: str
    default: int | float | str
    description: str
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    choices: tuple[str, ...] = ()

    @property
    def type(self) -> type:
        return type(self.default)

    def constraints(self) -> str:
        """Human-readable range/choices, shown in the descriptor's additional_constraints."""
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.minimum is not None or self.maximum is not None:
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            return f"in [{low}, {high}]"
        return ""

    def check(self, value: Any) -> int | float | str:
        """Return `value` as this parameter's type, or raise ParameterError naming the parameter."""
        expected = self.type
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ParameterError(
                f"parameter '{self.name}': expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        if expected is float and isinstance(value, int):
            value = float(value)  # YAML `1` for a double is harmless
        if not isinstance(value, expected):
            raise ParameterError(
                f"parameter '{self.name}': expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        if self.choices and value not in self.choices:
            raise ParameterError(
                f"parameter '{self.name}': expected one of {', '.join(self.choices)}, got {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"parameter '{self.name}': expected a finite number, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParameterError(
                f"parameter '{self.name}': {value!r} is below the minimum {self.minimum:g} ({self.description})"
            )
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(
                f"parameter '{self.name}': {value!r} is above the maximum {self.maximum:g} ({self.description})"
            )
        return value


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", "", "model checkpoint folder or model.safetensors; empty = the shipped checkpoint"),
    ParamSpec("device", "auto", "torch device for the model and renderer (auto = cuda if available)",
              choices=("auto", "cuda", "cpu")),
    ParamSpec("renderer", "auto", "Gaussian rasterizer backend (auto = gsplat on CUDA when installed, else torch)",
              choices=("auto", "gsplat", "torch")),
    ParamSpec("window_frames", 24, "frames per reconstruction window (the model's T)", minimum=2, maximum=256),
    ParamSpec("window_stride", 12, "frames between the starts of consecutive windows", minimum=1, maximum=256),
    ParamSpec("keyframe_stride", 4, "window frames per keyframe (the model's l)", minimum=1, maximum=64),
    ParamSpec("frame_rate", 10.0, "frames per second taken into windows; faster input is skipped and counted",
              minimum=0.1, maximum=1000.0),
    ParamSpec("image_width", 128, "model input width in pixels (frames are centre-cropped and resized)",
              minimum=8, maximum=4096),
    ParamSpec("image_height", 128, "model input height in pixels", minimum=8, maximum=4096),
    ParamSpec("sync_tolerance", 0.05, "largest image-to-pose stamp gap in seconds that is still matched",
              minimum=0.0, maximum=10.0),
    ParamSpec("max_pending_windows", 2, "windows waiting for the model; older ones are dropped and counted",
              minimum=1, maximum=64),
    ParamSpec("min_opacity", 0.005, "Gaussians below this opacity are pruned from the outputs",
              minimum=0.0, maximum=1.0),
    ParamSpec("track_grid", 16, "pixel spacing of the track seeds on each keyframe of the window (model input pixels)",
              minimum=1, maximum=1024),
    ParamSpec("world_frame", "world", "frame_id of every output (the frame the input poses are given in)"),
    ParamSpec("refine_iters", 0, "test-time refinement steps per window (0 = pure feed-forward)",
              minimum=0, maximum=10000),
    ParamSpec("scene_scale", 1.0, "metres per normalised model unit (scene normalisation of the window)",
              minimum=1e-6, maximum=1e6),
    ParamSpec("method", "network", "reconstruction method: the geometry-primed network, or classical (its "
              "multi-view-stereo depth + optical-flow cues alone, no learned weights)", choices=("network", "classical")),
)

BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


def defaults() -> dict[str, int | float | str]:
    """Name -> default of every parameter (what config/dgslrm.yaml holds)."""
    return {spec.name: spec.default for spec in PARAMETERS}


def validate(values: Mapping[str, Any]) -> dict[str, int | float | str]:
    """Check every value against the table; unknown names are refused too (a typo must not pass)."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; known: {sorted(BY_NAME)}")
    checked = defaults()
    for name, value in values.items():
        checked[name] = BY_NAME[name].check(value)
    if not checked["world_frame"]:
        raise ParameterError("parameter 'world_frame': expected a non-empty frame id, got ''")
    return checked


def pipeline_config(values: Mapping[str, Any]) -> Any:
    """Validated values -> the stream layer's PipelineConfig (its own cross-field checks run too)."""
    from dgslrm_ros.stream.config import ConfigError, PipelineConfig

    checked = validate(values)
    try:
        config = PipelineConfig(**checked)
        config.validate()
    except ConfigError as error:
        raise ParameterError(str(error)) from error
    return config
