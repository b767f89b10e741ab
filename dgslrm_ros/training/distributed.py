"""Data-parallel plumbing: the same `dgslrm train` command runs alone or under `torchrun`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; we pick nccl on CUDA and gloo on CPU, give each rank
its own data stream, and let only rank 0 write files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dgslrm_ros.core.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info_from_env() -> DistInfo:
    """This process's place in the job, from the variables torchrun sets (a lone process otherwise)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def setup_distributed(info: DistInfo, device: torch.device) -> None:
    """Join the torchrun process group (nccl on CUDA, gloo on CPU); a no-op for a single process."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def device_for(requested: str, info: DistInfo) -> torch.device:
    """`requested` resolved (core/device.py: 'auto' -> a GPU when there is one), a GPU as this rank's own."""
    device = resolve_device(requested, "--device")
    if device.type != "cuda":
        return device
    torch.cuda.set_device(info.local_rank)
    return torch.device("cuda", info.local_rank)


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a (detached) tensor over ranks, for logging the same number everywhere."""
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
