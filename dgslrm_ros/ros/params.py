"""Every parameter of `dgslrm_node`, described once.

`PARAMETERS` is the single table: the node declares each entry with its description and range
(rcl_interfaces/ParameterDescriptor), `config/dgslrm.yaml` holds the same defaults and the stream
layer's `PipelineConfig` has one field per entry of scope "pipeline" (shared with `dgslrm replay`);
entries of scope "node" configure only the ROS shell (pose message type, image transport, QoS,
service output folder) and live in `NodeOptions`. `test/ros/test_params.py` ties them together.
Kept free of rclpy so the table can be read (docs, tests, the demo) without a ROS install.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from dgslrm_ros.core.errors import DgslrmError


class ParameterError(DgslrmError, ValueError):
    """A parameter value the node refuses at start-up; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: its type is the type of `default` (bool excluded; a tuple is a double array)."""

    name: str
    default: int | float | str | tuple[float, ...]
    description: str
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    choices: tuple[str, ...] = ()
    scope: str = "pipeline"  # "pipeline": a PipelineConfig field; "node": the ROS shell only

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

    def check(self, value: Any) -> int | float | str | tuple[float, ...]:
        """Return `value` as this parameter's type, or raise ParameterError naming the parameter."""
        expected = self.type
        if expected is tuple:
            return self._check_array(value)
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

    def _check_array(self, value: Any) -> tuple[float, ...]:
        """A double array of the default's length, every element finite (ints welcome: YAML `0`)."""
        n = len(self.default)  # type: ignore[arg-type]
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ParameterError(f"parameter '{self.name}': expected {n} numbers, got {type(value).__name__} {value!r}")
        items = list(value)
        if len(items) != n or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
            raise ParameterError(f"parameter '{self.name}': expected {n} numbers ({self.description}), got {value!r}")
        floats = tuple(float(v) for v in items)
        if not all(math.isfinite(v) for v in floats):
            raise ParameterError(f"parameter '{self.name}': expected finite numbers, got {list(floats)}")
        return floats


QUATERNION_TOLERANCE = 1e-3  # camera_from_body's quaternion: typed by hand, so rounded values pass
IDENTITY_POSE: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # x y z qx qy qz qw

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
    ParamSpec("image_width", 64, "model input width in pixels (frames are centre-cropped and resized); 64 is "
              "the CPU default (the cues cost ~4x more at 128), raise it on a GPU", minimum=8, maximum=4096),
    ParamSpec("image_height", 64, "model input height in pixels", minimum=8, maximum=4096),
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
    ParamSpec("method", "classical", "reconstruction method: classical (multi-view-stereo depth + optical-flow "
              "cues alone, no learned weights; the default while the network is below it on real video) or the "
              "geometry-primed network", choices=("network", "classical")),
    # --- the ROS shell only (scope "node")
    ParamSpec("pose_type", "pose_stamped", "message type on camera_pose: geometry_msgs/PoseStamped, nav_msgs/Odometry "
              "(its pose, in the header frame) or geometry_msgs/TransformStamped",
              choices=("pose_stamped", "odometry", "transform_stamped"), scope="node"),
    ParamSpec("camera_from_body", IDENTITY_POSE, "fixed extrinsic [x, y, z, qx, qy, qz, qw] taking points of the "
              "pose's frame (a body/IMU frame) into the camera optical frame: camera_T_body, what "
              "`ros2 run tf2_ros tf2_echo <camera_optical_frame> <body_frame>` prints; identity = the pose "
              "is the camera's", scope="node"),
    ParamSpec("image_transport", "raw", "raw: sensor_msgs/Image on `image`; compressed: sensor_msgs/CompressedImage "
              "(jpeg, png) on `image/compressed`, decoded off the callback thread",
              choices=("raw", "compressed"), scope="node"),
    ParamSpec("input_qos", "sensor_data", "QoS of the image, camera_info and camera_pose subscriptions: sensor_data "
              "(best effort, matches any publisher), system_default or reliable (reliable publishers only)",
              choices=("sensor_data", "system_default", "reliable"), scope="node"),
    ParamSpec("output_dir", "dgslrm_output", "folder the ~/save_ply service writes PLY files into (created on "
              "demand; relative to the node's working directory)", scope="node"),
)

BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}


def defaults() -> dict[str, Any]:
    """Name -> default of every parameter (what config/dgslrm.yaml holds)."""
    return {spec.name: spec.default for spec in PARAMETERS}


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every value against the table; unknown names are refused too (a typo must not pass)."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; known: {sorted(BY_NAME)}")
    checked = defaults()
    for name, value in values.items():
        checked[name] = BY_NAME[name].check(value)
    if not checked["world_frame"]:
        raise ParameterError("parameter 'world_frame': expected a non-empty frame id, got ''")
    if not checked["output_dir"]:
        raise ParameterError("parameter 'output_dir': expected a folder path, got ''")
    _unit_quaternion("camera_from_body", checked["camera_from_body"][3:])
    return checked


def _unit_quaternion(name: str, q: tuple[float, ...]) -> None:
    norm = math.sqrt(sum(v * v for v in q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise ParameterError(f"parameter '{name}': the quaternion (qx, qy, qz, qw) = {list(q)} has norm {norm:.6g}, "
                             "expected 1 (within 1e-3); give a unit quaternion, identity is 0 0 0 1")


@dataclass(frozen=True)
class NodeOptions:
    """The scope-"node" parameters: how the ROS shell talks to the robot (validated)."""

    pose_type: str = "pose_stamped"
    camera_from_body: tuple[float, ...] = IDENTITY_POSE  # x y z qx qy qz qw
    image_transport: str = "raw"
    input_qos: str = "sensor_data"
    output_dir: str = "dgslrm_output"


def node_options(values: Mapping[str, Any]) -> NodeOptions:
    """Validated values -> NodeOptions."""
    checked = validate(values)
    return NodeOptions(**{spec.name: checked[spec.name] for spec in PARAMETERS if spec.scope == "node"})


def pipeline_config(values: Mapping[str, Any]) -> Any:
    """Validated values -> the stream layer's PipelineConfig (its own cross-field checks run too)."""
    from dgslrm_ros.stream.config import ConfigError, PipelineConfig

    checked = validate(values)
    try:
        config = PipelineConfig(**{spec.name: checked[spec.name] for spec in PARAMETERS if spec.scope == "pipeline"})
        config.validate()
    except ConfigError as error:
        raise ParameterError(str(error)) from error
    return config
