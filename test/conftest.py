"""Suite-wide settings that must be in place before torch is imported by any test module, and the
fresh-interpreter probe the import-boundary tests share."""
import os
import subprocess
import sys

import pytest

# torch's OpenMP workers busy-wait by default; with 2 cores shared by subprocesses (ROS nodes, data
# workers) that makes CPU rendering 4-30x slower. libgomp reads this once, at load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _modules_loaded_after(code: str) -> set[str]:
    """Runs `code` in a fresh interpreter and returns every name in its sys.modules afterwards: a module
    another test imported in this process cannot hide (or fake) a violation there."""
    code += "\nimport sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.fixture
def modules_loaded_after():
    """`modules_loaded_after(code) -> set[str]`: the modules a fresh interpreter holds after running `code`."""
    return _modules_loaded_after
