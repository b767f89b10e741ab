"""The geometry layer's C kernels for the CPU (`_kernels.c`), or None where they cannot run.

The plane sweep's cost volume and its cost curves' medians, the static fit's per-frame sums, the chained
2D tracks and their lifting are chains of small elementwise torch ops on a CPU (memory-bound, or a batch
step per frame; torch's reductions over a leading dim for the medians); the kernels do each in one pass with
everything in registers. Each caller keeps its torch formulation, which CUDA, machines
without a C compiler (setup.py marks the extension optional) and `DGSLRM_NO_GEOMETRY_KERNELS=1` run, and the
tests hold the two together (test/geometry/test_cpu_kernels.py). docs/benchmarks.md has the figures.
"""
from __future__ import annotations

import os
from types import ModuleType

import torch


def _load() -> ModuleType | None:
    if os.environ.get("DGSLRM_NO_GEOMETRY_KERNELS"):  # forces the torch paths (benchmarks compare the two)
        return None
    try:
        from dgslrm_ros.geometry import _kernels
    except ImportError:  # built without a C compiler
        return None
    return _kernels


KERNELS = _load()


def runs_on(tensor: torch.Tensor) -> bool:
    """Whether the C kernels take this computation: built, enabled, and the data on the CPU."""
    return KERNELS is not None and tensor.device.type == "cpu"
