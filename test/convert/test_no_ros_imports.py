"""convert/ must load no ROS (not rclpy, not even rosbags) and no torch; bags/ must load no rclpy."""
import json
import subprocess
import sys

import pytest

PROBE = "import sys, json, importlib; importlib.import_module({module!r}); print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"


def _loaded(module: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["dgslrm_ros.convert", "dgslrm_ros.convert.benchmark"])
def test_convert_loads_only_numpy(module):
    loaded = _loaded(module)
    assert not loaded & {"rclpy", "rosbags", "torch", "sensor_msgs", "std_msgs"}


@pytest.mark.parametrize("module", ["dgslrm_ros.bags.reader", "dgslrm_ros.bags.writer", "dgslrm_ros.bags.synth"])
def test_bags_load_no_rclpy(module):
    assert "rclpy" not in _loaded(module)
