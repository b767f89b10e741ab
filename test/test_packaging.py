"""The package as ROS and pip see it: package.xml, setup.py, resource marker, installed share files.

Marked `packaging` so `colcon test` (tools/colcon_check.sh) runs exactly these against the built
install space as well.
"""
from __future__ import annotations

import ast
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]

# Every module the node imports at run time must be declared for rosdep on a robot.
RUNTIME_ROS_DEPS = {
    "rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
    "builtin_interfaces", "rcl_interfaces",
}


def _package_xml() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


def test_package_xml_is_format_3_ament_python_named_dgslrm_ros():
    root = _package_xml()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "dgslrm_ros"
    assert root.find("export/build_type").text == "ament_python"
    assert re.fullmatch(r"\d+\.\d+\.\d+", root.findtext("version"))


def test_package_xml_declares_every_ros_message_package_the_code_imports():
    declared = {e.text for e in _package_xml() if e.tag in ("depend", "exec_depend")}
    assert RUNTIME_ROS_DEPS <= declared, RUNTIME_ROS_DEPS - declared
    imported = set()
    for path in (ROOT / "dgslrm_ros").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith((".msg", ".srv")):
                imported.add(node.module.split(".")[0])
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names if a.name.endswith((".msg", ".srv"))}
    assert imported <= declared, f"imported but not in package.xml: {imported - declared}"


def test_setup_declares_both_executables_and_keeps_ros_wheels_out_of_install_requires():
    text = (ROOT / "setup.py").read_text()
    assert "dgslrm_node = dgslrm_ros.ros.main:main" in text
    assert "dgslrm = dgslrm_ros.cli.main:main" in text
    requires = re.search(r"install_requires=\[(.*?)\]", text, re.S).group(1)
    assert "ros-" not in requires and "rclpy" not in requires


def test_resource_marker_and_setup_cfg_script_dir_for_ros2_run():
    assert (ROOT / "resource" / "dgslrm_ros").is_file()
    cfg = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/dgslrm_ros" in cfg and "install_scripts=$base/lib/dgslrm_ros" in cfg


def _installed_share() -> Path | None:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        share = Path(prefix) / "share" / "dgslrm_ros"
        marker = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / "dgslrm_ros"
        if share.is_dir() and marker.is_file():
            return share
    return None


def test_share_files_exist_in_source_and_in_any_install_space():
    expected = ["launch/dgslrm.launch.py", "config/dgslrm.yaml", "config/dgslrm.rviz"]
    for rel in expected:
        assert (ROOT / rel).is_file(), rel
    share = _installed_share()
    if share is not None:  # under colcon test the built package is on AMENT_PREFIX_PATH
        for rel in expected + ["package.xml"]:
            assert (share / rel).is_file(), f"{rel} missing from {share}"
