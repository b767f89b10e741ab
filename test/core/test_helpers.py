"""The small shared helpers of core: strict JSON and the device rule."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dgslrm_ros.core.device import DeviceError, resolve_device
from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.strict_json import strict_json


def test_strict_json_turns_non_finite_numbers_into_null_and_arrays_into_lists() -> None:
    value = {"psnr": math.inf, "ssim": float("nan"), 3: np.float32(0.5), "n": np.int64(7), "ok": True,
             "grid": np.array([[1.0, np.nan]]), "t": torch.tensor([2.0, float("inf")]), "pair": (1, 2), "none": None,
             "path": object}
    out = strict_json(value)
    text = json.dumps(out, allow_nan=False)  # would raise on a NaN left over
    assert json.loads(text) == {"psnr": None, "ssim": None, "3": 0.5, "n": 7, "ok": True, "grid": [[1.0, None]],
                                "t": [2.0, None], "pair": [1, 2], "none": None, "path": str(object)}


def test_device_rule() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        pytest.skip("the refusal needs a machine without CUDA")
    with pytest.raises(DeviceError, match="--device: 'cuda' requested") as refused:
        resolve_device("cuda", "--device")
    assert isinstance(refused.value, DgslrmError)
