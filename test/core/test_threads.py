"""core/threads.py: the node's torch CPU pool leaves one core to the executor, DDS and the robot."""
import os
import subprocess
import sys
from pathlib import Path

from dgslrm_ros.core.threads import THREADS_VARIABLE, default_worker_threads, worker_threads

ROOT = Path(__file__).resolve().parents[2]


def test_all_cores_but_one_and_never_none():
    assert [worker_threads(n) for n in (1, 2, 4, 16)] == [1, 1, 3, 15]


def test_a_value_the_user_set_wins():
    env = {THREADS_VARIABLE: "3"}
    assert default_worker_threads(env, cpu_count=16) == "3" and env[THREADS_VARIABLE] == "3"
    env = {}
    assert default_worker_threads(env, cpu_count=16) == "15" and env[THREADS_VARIABLE] == "15"


def test_set_before_torch_loads_it_sizes_torch_pool():
    # What dgslrm_node's main does: the variable is read once, when torch (libgomp) loads.
    env = {k: v for k, v in os.environ.items() if k != THREADS_VARIABLE}
    env["PYTHONPATH"] = str(ROOT)
    code = ("import os; from dgslrm_ros.core.threads import default_worker_threads, worker_threads; "
            "value = default_worker_threads(os.environ); import torch; "
            "print(value, worker_threads(), torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    value, expected, threads = out.stdout.split()
    assert value == expected == threads, out.stdout
