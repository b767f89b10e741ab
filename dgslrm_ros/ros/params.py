"""Every parameter of `dgslrm_node`: the pipeline's rows (stream/config.py) plus the ROS shell's own.

`PARAMETERS` is the table the node declares, each entry with its description and range
(rcl_interfaces/ParameterDescriptor); `config/dgslrm.yaml` holds the same defaults. Scope "pipeline"
rows are `PipelineConfig` fields, scope "node" rows configure only the ROS shell (pose message type,
image transport, QoS, service output folder) and are the fields of `NodeOptions` below; both are
declared once with `core.parameters.parameter`. `test/ros/test_params.py` ties them together. Kept free
of rclpy so the table can be read (docs, tests, the demo) without a ROS install.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from dgslrm_ros.core.parameters import ParameterError, ParamSpec, parameter, parameter_table
from dgslrm_ros.stream.config import PIPELINE_PARAMETERS, ConfigError, PipelineConfig

QUATERNION_TOLERANCE = 1e-3  # camera_from_body's quaternion: typed by hand, so rounded values pass
IDENTITY_POSE: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # x y z qx qy qz qw


@dataclass(frozen=True)
class NodeOptions:
    """The scope-"node" parameters: how the ROS shell talks to the robot (validated)."""

    pose_type: str = parameter("pose_stamped", "message type on camera_pose: geometry_msgs/PoseStamped, "
                               "nav_msgs/Odometry (its pose, in the header frame) or geometry_msgs/TransformStamped",
                               choices=("pose_stamped", "odometry", "transform_stamped"))
    camera_from_body: tuple[float, ...] = parameter(
        IDENTITY_POSE, "fixed extrinsic [x, y, z, qx, qy, qz, qw] taking points of the pose's frame (a body/IMU "
        "frame) into the camera optical frame: camera_T_body, what `ros2 run tf2_ros tf2_echo "
        "<camera_optical_frame> <body_frame>` prints; identity = the pose is the camera's")
    image_transport: str = parameter("raw", "raw: sensor_msgs/Image on `image`; compressed: "
                                     "sensor_msgs/CompressedImage (jpeg, png) on `image/compressed`, decoded off "
                                     "the callback thread", choices=("raw", "compressed"))
    input_qos: str = parameter("sensor_data", "QoS of the image, camera_info and camera_pose subscriptions: "
                               "sensor_data (best effort, matches any publisher), system_default or reliable "
                               "(reliable publishers only)", choices=("sensor_data", "system_default", "reliable"))
    output_dir: str = parameter("dgslrm_output", "folder the ~/save_ply service writes PLY files into (created on "
                                "demand; relative to the node's working directory)")


PARAMETERS: tuple[ParamSpec, ...] = PIPELINE_PARAMETERS + parameter_table(NodeOptions, "node")
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
    if not checked["output_dir"]:
        raise ParameterError("parameter 'output_dir': expected a folder path, got ''")
    _unit_quaternion("camera_from_body", checked["camera_from_body"][3:])
    return checked


def _unit_quaternion(name: str, q: tuple[float, ...]) -> None:
    norm = math.sqrt(sum(v * v for v in q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise ParameterError(f"parameter '{name}': the quaternion (qx, qy, qz, qw) = {list(q)} has norm {norm:.6g}, "
                             "expected 1 (within 1e-3); give a unit quaternion, identity is 0 0 0 1")


def node_options(values: Mapping[str, Any]) -> NodeOptions:
    """Validated values -> NodeOptions."""
    checked = validate(values)
    return NodeOptions(**{spec.name: checked[spec.name] for spec in PARAMETERS if spec.scope == "node"})


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """Validated values -> the stream layer's PipelineConfig (its own cross-field checks run too)."""
    checked = validate(values)
    try:
        config = PipelineConfig(**{spec.name: checked[spec.name] for spec in PARAMETERS if spec.scope == "pipeline"})
        config.validate()
    except ConfigError as error:
        raise ParameterError(str(error)) from error
    return config
