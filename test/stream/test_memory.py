"""stream/memory.py: the figures the node reports about itself, and the per-window release of the
malloc heaps' free pages that keeps a long stream's resident memory flat (issue 16).

The release is shown on the mechanism that made the node grow, in a fresh process (the allocator
state is per process): once a large block has been mmapped and freed, glibc serves blocks of up to
that size from its heap; freed, they stay resident there as free space behind a block still in use.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dgslrm_ros.stream import memory

ROOT = Path(__file__).resolve().parents[2]
GLIBC = memory.malloc_bytes() is not None

# Runs in a fresh interpreter: raise glibc's dynamic mmap threshold (free one mmapped 16 MiB block),
# then take 96 x 1 MiB from the heap, each followed by a small block that stays in use (fragmentation:
# no free block can merge into the heap top), touch them and free the 96: the 96 MiB stay resident as
# free heap space until released.
MECHANISM = r"""
import ctypes, json, sys
from dgslrm_ros.stream import memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
MIB = 1 << 20
big = libc.malloc(16 * MIB); libc.memset(big, 1, 16 * MIB); libc.free(big)
blocks, pins = [], []
for _ in range(96):
    blocks.append(libc.malloc(MIB))
    pins.append(libc.malloc(4096))
for b in blocks:
    libc.memset(b, 1, MIB)
rss_used = memory.process_rss_bytes()
for b in blocks:
    libc.free(b)
rss_freed = memory.process_rss_bytes()
free_kept = memory.malloc_bytes()[1]
released = memory.release_after_window()
rss_released = memory.process_rss_bytes()
print(json.dumps({"rss_used": rss_used, "rss_freed": rss_freed, "free_kept": free_kept, "released": released,
                  "rss_released": rss_released}))
"""
MIB = 1 << 20


def _mechanism(**env: str) -> dict:
    environment = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    environment.pop(memory.ALLOCATOR_ENV, None)
    environment.update(env)
    proc = subprocess.run([sys.executable, "-c", MECHANISM], env=environment, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the retention and its release are glibc malloc's")
def test_freed_heap_blocks_stay_resident_until_released_after_the_window():
    figures = _mechanism()
    # freeing did not shrink the process: the blocks are kept as heap free space...
    assert figures["rss_used"] - figures["rss_freed"] < 8 * MIB
    assert figures["free_kept"] >= 90 * MIB
    # ...and the per-window release gives them back
    assert figures["released"] is True
    assert figures["rss_freed"] - figures["rss_released"] >= 80 * MIB


@pytest.mark.skipif(not GLIBC, reason="the retention and its release are glibc malloc's")
def test_release_can_be_switched_off_to_measure_glibc_as_it_is():
    figures = _mechanism(**{memory.ALLOCATOR_ENV: "glibc-default"})
    assert figures["released"] is False
    assert figures["rss_freed"] - figures["rss_released"] < 8 * MIB


def test_memory_status_reports_own_rss_heap_and_python_blocks():
    status = memory.memory_status()
    rss_mb = status["memory_rss_mb"]
    assert 10.0 < rss_mb < 64 * 1024.0
    assert status["python_allocated_blocks"] > 1000
    if GLIBC:
        assert 0.0 < status["memory_malloc_in_use_mb"] < rss_mb + status["memory_malloc_mmapped_mb"] + 1.0
        assert status["memory_malloc_free_mb"] >= 0.0
    assert "python_traced_mb" not in status or status["python_traced_mb"] >= 0.0


def test_rss_and_cpu_time_of_another_process_and_of_none():
    assert memory.process_rss_bytes(os.getppid()) > 0
    assert memory.process_rss_bytes(2**22 + 12345) is None  # above pid_max: no such process
    before = memory.process_cpu_seconds()
    sum(i * i for i in range(2_000_000))  # burn some CPU
    assert memory.process_cpu_seconds() > before >= 0.0
    assert memory.process_cpu_seconds(2**22 + 12345) is None


def test_reconstruct_releases_after_each_window(make_pipeline, kit):
    pipeline = make_pipeline()
    for i in range(8):
        pipeline.add_pose(0.1 * i, kit.pose_at(0.1 * i), "world")
        pipeline.add_image(0.1 * i, kit.image(i))
    result = pipeline.reconstruct(pipeline.pop_window())
    assert "release_memory" in result.timings and result.timings["release_memory"] >= 0.0
