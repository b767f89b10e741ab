"""Static checks of launch/dgslrm.launch.py and config/dgslrm.rviz (launch_ros and RViz are not installed
here): they must name the executable setup.py installs, the contract's topics, parameters that exist in
the node's table, and files that setup.py ships."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from dgslrm_ros.ros.params import BY_NAME

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "dgslrm.launch.py"
RVIZ = ROOT / "config" / "dgslrm.rviz"
OUTPUT_TOPICS = {"gaussians", "trajectories", "tracks_markers", "rendered", "camera_path"}
INPUT_TOPICS = {"image", "camera_info", "camera_pose"}


def _setup_entry_points() -> dict[str, str]:
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(\w+)\s*=\s*([\w.]+:\w+)"', text))


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def _kw(call: ast.Call, key: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == key), None)


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def test_launch_starts_the_installed_executable_with_node_name(launch_tree: ast.Module) -> None:
    entry_points = _setup_entry_points()
    nodes = [c for c in _calls(launch_tree, "Node")
             if isinstance(_kw(c, "package"), ast.Constant) and _kw(c, "package").value == "dgslrm_ros"]
    assert len(nodes) == 1
    executable = _kw(nodes[0], "executable").value
    assert executable in entry_points, f"{executable} not among setup.py entry points {entry_points}"
    module, func = entry_points[executable].split(":")
    assert (ROOT / (module.replace(".", "/") + ".py")).exists()
    assert func in (ROOT / (module.replace(".", "/") + ".py")).read_text()
    assert _kw(nodes[0], "name").value == "dgslrm"


def test_launch_remaps_every_input_topic_from_an_argument(launch_tree: ast.Module) -> None:
    declared = {c.args[0].value for c in _calls(launch_tree, "DeclareLaunchArgument")}
    assert {"image", "camera_info", "camera_pose", "use_sim_time", "params_file"} <= declared
    node = next(c for c in _calls(launch_tree, "Node") if _kw(c, "executable").value == "dgslrm_node")
    remaps = _kw(node, "remappings")
    plain = [e for e in remaps.elts if isinstance(e.elts[1], ast.Call)]
    pairs = {e.elts[0].value: e.elts[1].args[0].value for e in plain}
    assert pairs == {t: t for t in INPUT_TOPICS}  # each from the launch argument of the same name
    # image_transport: compressed subscribes to image/compressed, which follows the `image` argument
    compressed = next(e for e in remaps.elts if e.elts[0].value == "image/compressed")
    assert [part.args[0].value if isinstance(part, ast.Call) else part.value
            for part in compressed.elts[1].elts] == ["image", "/compressed"]
    assert all(arg in declared for arg in pairs.values())


def test_launch_parameters_exist_and_files_ship(launch_tree: ast.Module) -> None:
    node = next(c for c in _calls(launch_tree, "Node") if _kw(c, "executable").value == "dgslrm_node")
    overrides = [d for d in _kw(node, "parameters").elts if isinstance(d, ast.Dict)]
    names = {k.value for d in overrides for k in d.keys}
    assert names - {"use_sim_time"} <= set(BY_NAME), names
    # every file joined onto the package share must exist in the source tree and be installed by setup.py
    setup_text = (ROOT / "setup.py").read_text()
    joined = [c for c in _calls(launch_tree, "join") if len(c.args) == 3]
    assert joined
    for call in joined:
        folder, filename = call.args[1].value, call.args[2].value
        assert (ROOT / folder / filename).exists(), f"{folder}/{filename} missing"
        assert f'share/{{PACKAGE}}/{folder}"' in setup_text or f"share/{{PACKAGE}}/{folder}" in setup_text


def test_default_params_file_is_the_node_table() -> None:
    data = yaml.safe_load((ROOT / "config" / "dgslrm.yaml").read_text())
    assert set(data) == {"dgslrm"}
    assert set(data["dgslrm"]["ros__parameters"]) == set(BY_NAME)


def test_rviz_config_shows_the_contract_topics_in_world() -> None:
    config = yaml.safe_load(RVIZ.read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "world"
    displays = {d["Topic"]["Value"].lstrip("/"): d for d in manager["Displays"] if "Topic" in d}
    assert set(displays) == OUTPUT_TOPICS
    assert displays["gaussians"]["Class"] == "rviz_default_plugins/PointCloud2"
    assert displays["gaussians"]["Color Transformer"] == "RGB8"
    assert displays["trajectories"]["Class"] == "rviz_default_plugins/PointCloud2"
    assert displays["tracks_markers"]["Class"] == "rviz_default_plugins/MarkerArray"
    assert displays["rendered"]["Class"] == "rviz_default_plugins/Image"
    assert displays["camera_path"]["Class"] == "rviz_default_plugins/Path"
    # the outputs are transient-local reliable; RViz must ask for something compatible
    for display in displays.values():
        assert display["Topic"]["Reliability Policy"] == "Reliable"
    assert "glob(\"config/*.yaml\") + glob(\"config/*.rviz\")" in (ROOT / "setup.py").read_text()
