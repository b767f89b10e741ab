"""Which torch device a `device` option or parameter (auto | cuda | cpu) means, decided in one place."""
from __future__ import annotations

import torch

from dgslrm_ros.core.errors import DgslrmError


class DeviceError(DgslrmError, RuntimeError):
    """A device was asked for that this machine does not have."""


def resolve_device(requested: str, name: str = "device") -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu; cuda without one is refused naming the option `name`."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"{name}: 'cuda' requested but no CUDA device is available; use auto or cpu")
    return torch.device(requested)
