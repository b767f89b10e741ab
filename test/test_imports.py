"""Import boundaries (style habit 8): the core never loads rclpy, the renderer never loads gsplat.

Run in a fresh interpreter per case so modules imported by other tests can't hide a violation.
"""
from __future__ import annotations

import pytest

ROS_FREE = [
    "dgslrm_ros.core.cameras", "dgslrm_ros.core.gaussians", "dgslrm_ros.core.ply",
    "dgslrm_ros.render", "dgslrm_ros.model.dgslrm", "dgslrm_ros.stream.pipeline",
    "dgslrm_ros.convert.image", "dgslrm_ros.convert.pointcloud", "dgslrm_ros.bags.reader",
    "dgslrm_ros.bags.writer", "dgslrm_ros.data.dataset", "dgslrm_ros.training.loop",
    "dgslrm_ros.evaluation.evaluate", "dgslrm_ros.geometry.cues",
]


def _importing(*modules: str) -> str:
    return "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)


@pytest.mark.parametrize("module", ROS_FREE)
def test_core_layers_load_no_rclpy_and_no_ros_messages(module, modules_loaded_after):
    loaded = modules_loaded_after(_importing(module))
    offenders = {m for m in loaded if m.split(".")[0] in {"rclpy", "sensor_msgs", "geometry_msgs", "rosidl_runtime_py"}}
    assert not offenders, f"{module} pulled in {sorted(offenders)}"


@pytest.mark.parametrize("module", ["dgslrm_ros.render", "dgslrm_ros.model.dgslrm", "dgslrm_ros.stream.pipeline"])
def test_renderer_does_not_load_gsplat_until_the_gsplat_backend_runs(module, modules_loaded_after):
    assert not {m for m in modules_loaded_after(_importing(module)) if m.split(".")[0] == "gsplat"}


def test_cli_help_is_instant_and_loads_no_torch(modules_loaded_after):
    loaded = modules_loaded_after("from dgslrm_ros.cli.main import build_parser; build_parser().parse_args(['bench'])")
    assert "torch" not in loaded and "rclpy" not in loaded


def test_viewer_loads_no_rclpy_and_no_viser_until_it_serves(modules_loaded_after):
    """The viewer's scene and sources are testable without ROS or viser (one interpreter for both checks)."""
    loaded = modules_loaded_after(_importing("dgslrm_ros.viewer.scene", "dgslrm_ros.viewer.sources", "dgslrm_ros.cli.view"))
    offenders = {m for m in loaded if m.split(".")[0] in {"rclpy", "sensor_msgs", "geometry_msgs", "viser"}}
    assert not offenders, sorted(offenders)


def test_node_runs_without_viser(modules_loaded_after):
    """viser is an optional extra: the node's modules never load it."""
    loaded = modules_loaded_after(_importing("dgslrm_ros.ros.node", "dgslrm_ros.ros.main"))
    assert not {m for m in loaded if m.split(".")[0] == "viser"}


def test_viewer_never_imports_ros():
    """Layering: the viewer sits beside bags/cli and never reaches into ros/ (cli/view.py joins them)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "dgslrm_ros" / "viewer"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad = [n for n in names if n.startswith(("dgslrm_ros.ros", "rclpy")) or n.endswith("_msgs.msg")]
            assert not bad, f"{path.name} imports {bad}"
