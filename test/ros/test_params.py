"""The parameter table (ros/params.py) tied to config/dgslrm.yaml, to PipelineConfig and to the live
node's declared parameters; bad values refused at start-up, by name."""
from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from dgslrm_ros.ros.params import (
    BY_NAME,
    PARAMETERS,
    NodeOptions,
    ParameterError,
    defaults,
    node_options,
    validate,
)
from dgslrm_ros.stream.config import ConfigError, PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
YAML = ROOT / "config" / "dgslrm.yaml"


def test_yaml_holds_exactly_the_table_defaults() -> None:
    data = yaml.safe_load(YAML.read_text())
    values = data["dgslrm"]["ros__parameters"]
    assert list(values) == [spec.name for spec in PARAMETERS]
    for spec in PARAMETERS:
        value = tuple(values[spec.name]) if isinstance(values[spec.name], list) else values[spec.name]
        assert value == spec.default and type(value) is spec.type, spec.name


def test_table_is_pipeline_config_and_node_options() -> None:
    """Scope "pipeline" entries are exactly PipelineConfig's fields, scope "node" ones NodeOptions'."""
    table = defaults()
    for scope, cls in (("pipeline", PipelineConfig), ("node", NodeOptions)):
        config_fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert list(config_fields) == [spec.name for spec in PARAMETERS if spec.scope == scope]
        assert config_fields == {name: table[name] for name in config_fields}
    assert all(spec.description and len(spec.description) > 20 for spec in PARAMETERS)
    assert {spec.scope for spec in PARAMETERS} == {"pipeline", "node"}


def test_node_options_refuse_bad_extrinsics_and_take_integers() -> None:
    assert node_options({}) == NodeOptions()
    taken = node_options({"camera_from_body": [0, 0, 1, 0, 0, 0, 1], "pose_type": "odometry"})
    assert taken.camera_from_body == (0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0) and taken.pose_type == "odometry"
    for bad, match in (([0, 0, 0, 0, 0, 0], "7 numbers"), ([0, 0, 0, 0, 0, 0, 2], "norm 2"),
                       ([0, 0, float("nan"), 0, 0, 0, 1], "finite"), ("identity", "7 numbers")):
        with pytest.raises(ParameterError, match="'camera_from_body'.*" + match):
            node_options({"camera_from_body": bad})
    with pytest.raises(ParameterError, match="'output_dir'"):
        node_options({"output_dir": ""})


@pytest.mark.parametrize("spec", [s for s in PARAMETERS if s.scope == "pipeline" and (s.minimum is not None or s.choices)],
                         ids=lambda s: s.name)
def test_table_and_pipeline_config_refuse_the_same_values(spec) -> None:  # noqa: ANN001
    if spec.choices:
        bad, good = "nonsense", spec.choices[-1]
    else:
        bad = spec.type(spec.minimum - 1) if spec.type is int else spec.minimum - max(abs(spec.minimum), 1e-3)
        good = spec.minimum if spec.type is float else int(spec.minimum)
    with pytest.raises(ParameterError, match=f"'{spec.name}'"):
        validate({spec.name: bad})
    with pytest.raises(ConfigError, match=f"'{spec.name}'"):
        PipelineConfig(**{**_pipeline_defaults(), spec.name: bad}).validate()
    assert validate({spec.name: good})[spec.name] == good
    if spec.maximum is not None:
        over = spec.maximum + 1
        with pytest.raises(ParameterError, match=f"'{spec.name}'"):
            validate({spec.name: spec.type(over)})


def _pipeline_defaults() -> dict:
    return {spec.name: spec.default for spec in PARAMETERS if spec.scope == "pipeline"}


def test_validate_refuses_wrong_types_and_unknown_names() -> None:
    with pytest.raises(ParameterError, match="'window_frames'.*expected int"):
        validate({"window_frames": "eight"})
    with pytest.raises(ParameterError, match="'frame_rate'.*finite"):
        validate({"frame_rate": float("nan")})
    with pytest.raises(ParameterError, match="window_frame"):
        validate({"window_frame": 8})  # a typo must not pass silently
    assert validate({"sync_tolerance": 0})["sync_tolerance"] == 0.0  # YAML int for a double is fine


@pytest.mark.ros
@pytest.mark.parametrize(
    ("override", "name"),
    [
        ("window_frames:=0", "window_frames"),  # outside the descriptor's integer range
        ("device:=tpu", "device"),  # not a choice
        ("image_width:=wide", "image_width"),  # wrong type
        ("frame_rate:=fast", "frame_rate"),  # a string for a double (integers are fine, see below)
        ("frame_rate:=true", "frame_rate"),  # a bool is not a number
        ("frame_rate:=0", "frame_rate"),  # an integer for a double is still range-checked
        ("window_frames:=6", "window_frames"),  # cross-field: not a multiple of keyframe_stride (PipelineConfig)
        ("pose_type:=tf", "pose_type"),  # a node-scope choice
        ("camera_from_body:=[0.0,0.0,0.0,1.0]", "camera_from_body"),  # 4 numbers, not 7
        ("checkpoint:=/no/such/checkpoint", "checkpoint"),  # a DgslrmError of the pipeline, not of the table
    ],
)
def test_bad_parameter_is_refused_at_start_up_by_name(dds, override: str, name: str) -> None:  # noqa: ANN001
    proc = subprocess.run(dds.node_args({}, ["-p", override, "-p", "device:=cpu"] if "device" not in override
                                        else ["-p", override]),
                          env=dds.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "refused at start-up" in line]
    assert lines and f"'{name}'" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


DESCRIBE = textwrap.dedent("""
    import json, sys, time, rclpy
    from rcl_interfaces.srv import DescribeParameters, GetParameters, ListParameters
    rclpy.init(); node = rclpy.create_node("param_probe")
    def call(srv, name, request):
        client = node.create_client(srv, name)
        if not client.wait_for_service(timeout_sec=30): sys.exit("no service " + name)
        future = client.call_async(request); rclpy.spin_until_future_complete(node, future, timeout_sec=20)
        return future.result()
    names = list(call(ListParameters, "/dgslrm/list_parameters", ListParameters.Request()).result.names)
    described = call(DescribeParameters, "/dgslrm/describe_parameters", DescribeParameters.Request(names=names))
    values = call(GetParameters, "/dgslrm/get_parameters", GetParameters.Request(names=names)).values
    out = {}
    for d, v in zip(described.descriptors, values):
        value = list(v.double_array_value) if v.type == 8 else [None, v.bool_value, v.integer_value, v.double_value, v.string_value][min(v.type, 4)]
        out[d.name] = dict(type=d.type, description=d.description, read_only=d.read_only, value=value,
                           int_range=[(r.from_value, r.to_value) for r in d.integer_range],
                           float_range=[(r.from_value, r.to_value) for r in d.floating_point_range])
    print("PARAMS " + json.dumps(out), flush=True)
    deadline = time.time() + 10
    while node.count_subscribers("/cam/image_raw") < 1 and time.time() < deadline: time.sleep(0.1)
    print("SUBSCRIBERS " + json.dumps({t: node.count_subscribers(t) for t in ("/cam/image_raw", "/image", "/camera_info")}))
    print("PUBLISHERS " + json.dumps({t: node.count_publishers(t) for t in ("/gaussians", "/diagnostics")}))
    node.destroy_node(); rclpy.shutdown()
""")


@pytest.mark.ros
def test_live_node_declares_the_table_with_yaml_defaults_and_remaps(dds, tiny_checkpoint: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """The node started from a copy of config/dgslrm.yaml (tiny values edited in, as a user would)."""
    params = {"checkpoint": str(tiny_checkpoint), **dds.tiny_params}
    data = yaml.safe_load(YAML.read_text())
    data["dgslrm"]["ros__parameters"].update(params)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(data))
    node = dds.spawn(dds.node_args({}, ["--params-file", str(params_file), "-r", "image:=/cam/image_raw"]), "node")
    probe = subprocess.run([dds.python, "-c", DESCRIBE], env=dds.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=90)
    line = next((x for x in probe.stdout.splitlines() if x.startswith("PARAMS ")), None)
    assert line, probe.stdout + probe.stderr + node.output
    live = json.loads(line[len("PARAMS "):])
    ours = {k: v for k, v in live.items() if k in BY_NAME}
    assert set(ours) == set(BY_NAME)  # everything in the table is declared ...
    assert set(live) - set(BY_NAME) <= {"use_sim_time", "start_type_description_service"}  # ... and no more
    for spec in PARAMETERS:
        declared = ours[spec.name]
        assert declared["description"] == spec.description and declared["read_only"]
        assert declared["type"] == {int: 2, float: 3, str: 4, tuple: 8}[spec.type], spec.name  # static
        expected = params.get(spec.name, spec.default)
        expected = list(expected) if isinstance(expected, tuple) else expected
        assert declared["value"] == pytest.approx(expected), (spec.name, declared["value"], expected)
        if spec.minimum is not None:
            ranges = declared["int_range"] if spec.type is int else declared["float_range"]
            # a sentinel (-1: the checkpoint's) widens the declared range; the table refuses the values between
            low = spec.minimum if spec.sentinel is None else min(spec.minimum, spec.sentinel)
            assert ranges == [[low, spec.maximum]]
    # relative topic names: the remapped input moved, the others stay where the contract puts them
    subscribers = json.loads(next(x for x in probe.stdout.splitlines() if x.startswith("SUBSCRIBERS "))[12:])
    assert subscribers == {"/cam/image_raw": 1, "/image": 0, "/camera_info": 1}
    publishers = json.loads(next(x for x in probe.stdout.splitlines() if x.startswith("PUBLISHERS "))[11:])
    assert publishers == {"/gaussians": 1, "/diagnostics": 1}
    assert node.popen.poll() is None, node.output
    rc, seconds = node.interrupt(signal.SIGTERM, timeout=15)  # systemd / launch stop with SIGTERM
    assert rc == 0 and seconds < 5.0, node.output
    assert "Traceback" not in node.output


def _live_parameters(dds, extra: list[str]) -> tuple[dict, object]:  # noqa: ANN001
    """Start the node with `extra` ROS args, read its parameters over DDS; (name -> declared, node)."""
    node = dds.spawn(dds.node_args({}, [*extra, "-r", "image:=/cam/image_raw"]), "node")
    probe = subprocess.run([dds.python, "-c", DESCRIBE], env=dds.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=90)
    line = next((x for x in probe.stdout.splitlines() if x.startswith("PARAMS ")), None)
    assert line, probe.stdout + probe.stderr + node.output
    return json.loads(line[len("PARAMS "):]), node


@pytest.mark.ros
def test_live_node_takes_window_and_input_size_from_the_checkpoint(dds, tiny_checkpoint: Path) -> None:  # noqa: ANN001
    """Default window_frames, window_stride, keyframe_stride, image size (-1): the tiny checkpoint's 8 frames
    at 32 px, as the node declares them and reports them once ready."""
    given = {k: v for k, v in dds.tiny_params.items()
             if k not in ("window_frames", "window_stride", "keyframe_stride", "image_width", "image_height")}
    params = {"checkpoint": str(tiny_checkpoint), **given}
    live, node = _live_parameters(dds, [a for key, value in params.items() for a in ("-p", f"{key}:={value}")])
    assert all(live[name]["value"] == -1 for name in ("window_frames", "window_stride", "keyframe_stride",
                                                      "image_width", "image_height"))
    node.wait_for(lambda: "ready:" in node.output, 30, "node ready")
    assert "ready: window 8 frames every 4, 32x32 px" in node.output, node.output
    rc, _ = node.interrupt(signal.SIGINT, timeout=15)
    assert rc == 0 and "Traceback" not in node.output, node.output


@pytest.mark.ros
def test_integer_for_a_double_parameter_is_taken_as_a_double(dds, tiny_checkpoint: Path) -> None:  # noqa: ANN001
    """`-p frame_rate:=30`: rclpy types the override as an integer; the node takes it as 30.0."""
    params = {"checkpoint": str(tiny_checkpoint), **dds.tiny_params, "frame_rate": 30, "sync_tolerance": 0}
    args = [a for key, value in params.items() for a in ("-p", f"{key}:={value}")]
    assert "frame_rate:=30" in args and "sync_tolerance:=0" in args  # integers on the command line
    live, node = _live_parameters(dds, args)
    for name, expected in (("frame_rate", 30.0), ("sync_tolerance", 0.0)):
        declared = live[name]
        assert declared["type"] == 3 and declared["read_only"], (name, declared)  # PARAMETER_DOUBLE
        assert type(declared["value"]) is float and declared["value"] == expected, (name, declared)
        assert declared["float_range"] == [[BY_NAME[name].minimum, BY_NAME[name].maximum]]
    node.wait_for(lambda: "ready:" in node.output, 10, "node ready")
    assert node.popen.poll() is None, node.output
    rc, _ = node.interrupt(signal.SIGINT, timeout=15)
    assert rc == 0 and "Traceback" not in node.output, node.output
