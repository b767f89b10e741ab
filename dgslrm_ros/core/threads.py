"""How many threads torch's CPU pool gets in the node's process, decided in one place (torch-free: it
must run before torch loads, libgomp reads OMP_NUM_THREADS once)."""
from __future__ import annotations

import os
from typing import MutableMapping

THREADS_VARIABLE = "OMP_NUM_THREADS"


def worker_threads(cpu_count: int | None = None) -> int:
    """Every core but one: the one left runs the ROS executor, DDS and the robot's other processes.

    With every core in torch's pool, each parallel op waits for whichever of its threads another process
    preempted. Measured live on the 2-core dev machine (docs/benchmarks.md, soaks): two threads handled
    0.64-0.67 windows/s of the 0.83 due (a window took 1.4 s, 62 drops in 6 minutes), one thread
    0.80-0.85 (0.95 s, no drop in 4 minutes)."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 2)
    return max(1, cores - 1)


def default_worker_threads(env: MutableMapping[str, str], cpu_count: int | None = None) -> str:
    """Set OMP_NUM_THREADS in `env` unless the user already did; -> the value in effect."""
    return env.setdefault(THREADS_VARIABLE, str(worker_threads(cpu_count)))
