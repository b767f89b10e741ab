"""CompressedImage decoding (jpeg, png) and the errors a damaged stream gives, by reason."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from dgslrm_ros.convert.compressed import compressed_to_rgb, payload_format, rgb_to_compressed_fields
from dgslrm_ros.convert.errors import CompressedImageError, ConversionError


def _smooth(height: int = 48, width: int = 64) -> np.ndarray:
    """A camera-like image (gradients + a disc): what JPEG is made for, unlike noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2).astype(np.float32)
    rgb = np.stack([x / width * 255, y / height * 255, 80 + 120 * disc], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _msg(fmt: str, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(format=fmt, data=data)


def test_png_is_lossless_and_jpeg_within_its_error() -> None:
    rgb = _smooth()
    png = rgb_to_compressed_fields(rgb, "png")
    np.testing.assert_array_equal(compressed_to_rgb(_msg(png.format, png.data)), rgb)
    jpeg = rgb_to_compressed_fields(rgb, "jpeg", quality=90)
    decoded = compressed_to_rgb(_msg("jpeg", jpeg.data))  # the short format name works too
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    error = np.abs(decoded.astype(int) - rgb)
    # quality 90 with 4:2:0 chroma: small on average, larger only at the disc's sharp colour edge
    assert error.mean() < 3.0 and np.median(error) <= 2
    assert np.abs(decoded[:, :, ::-1].astype(int) - rgb).mean() > 20  # channel order matters at this tolerance
    assert payload_format(jpeg.data) == "jpeg" and payload_format(png.data) == "png"


def test_grey_and_rgba_png_become_rgb() -> None:
    from io import BytesIO

    from PIL import Image

    grey = np.arange(12 * 8, dtype=np.uint8).reshape(12, 8)
    out = BytesIO()
    Image.fromarray(grey, "L").save(out, format="PNG")
    decoded = compressed_to_rgb(_msg("mono8; png compressed mono8", out.getvalue()))
    np.testing.assert_array_equal(decoded, np.repeat(grey[:, :, None], 3, axis=2))
    rgba = np.dstack([_smooth(8, 8), np.full((8, 8), 255, np.uint8)])
    out = BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    np.testing.assert_array_equal(compressed_to_rgb(_msg("png", out.getvalue())), rgba[:, :, :3])


@pytest.mark.parametrize(
    ("mutate", "reason", "text"),
    [
        (lambda data: data[: len(data) // 2], "corrupt", "does not decode"),  # truncated in flight
        (lambda data: b"\x00" * 64, "corrupt", "neither a JPEG nor a PNG"),  # not an image at all
        (lambda data: b"", "corrupt", "0 bytes"),
    ],
)
def test_damaged_payloads_raise_with_a_reason(mutate, reason: str, text: str) -> None:  # noqa: ANN001
    data = rgb_to_compressed_fields(_smooth(), "jpeg").data
    with pytest.raises(CompressedImageError, match=text) as caught:
        compressed_to_rgb(_msg("jpeg", mutate(data)))
    assert caught.value.reason == reason and isinstance(caught.value, ConversionError)


def test_depth_and_sixteen_bit_streams_are_refused_as_unsupported() -> None:
    from io import BytesIO

    from PIL import Image

    png = rgb_to_compressed_fields(_smooth(), "png").data
    with pytest.raises(CompressedImageError, match="depth") as caught:
        compressed_to_rgb(_msg("16UC1; compressedDepth png", png))
    assert caught.value.reason == "unsupported_format"
    out = BytesIO()
    Image.fromarray(np.full((4, 4), 4000, np.uint16)).save(out, format="PNG")
    with pytest.raises(CompressedImageError, match="16-bit") as caught:
        compressed_to_rgb(_msg("png", out.getvalue()))
    assert caught.value.reason == "unsupported_format"
