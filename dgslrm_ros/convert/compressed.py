"""sensor_msgs/CompressedImage (jpeg, png) <-> uint8 RGB arrays [H, W, 3].

What `image_transport`'s compressed plugin publishes: `format` is "jpeg"/"png" or its long form
("bgr8; jpeg compressed bgr8"), `data` a complete JPEG or PNG file. The payload's own signature
decides how it is decoded (a mislabelled format field is common and harmless); a payload that is
neither, or that does not decode, raises CompressedImageError with a reason the caller counts by.
Decoding uses Pillow (libjpeg-turbo, zlib); no ROS import.
"""
from __future__ import annotations

import io
from typing import Any, NamedTuple, Protocol

import numpy as np

from dgslrm_ros.convert.errors import CompressedImageError
from dgslrm_ros.convert.image import as_uint8_buffer

COMPRESSED_FORMATS: tuple[str, ...] = ("jpeg", "png")
_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}
_MODES_TO_RGB = {"RGB", "RGBA", "L", "LA", "P", "CMYK", "YCbCr", "1"}  # 8-bit modes Pillow converts to RGB
DEFAULT_JPEG_QUALITY = 90


class CompressedImageLike(Protocol):
    format: str
    data: Any


class CompressedFields(NamedTuple):
    """The fields of a sensor_msgs/CompressedImage other than the header."""

    format: str
    data: bytes


def payload_format(data: bytes) -> str | None:
    """'jpeg' | 'png' from the payload's signature, None for anything else."""
    for signature, name in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


def compressed_fields_to_rgb(fmt: str, data: Any) -> np.ndarray:
    """A CompressedImage's format + data -> new uint8 [H, W, 3] RGB."""
    from PIL import Image as PILImage  # lazy: only nodes with image_transport=compressed pay for it

    payload = as_uint8_buffer(data).tobytes()
    if "compresseddepth" in str(fmt).lower().replace(" ", ""):
        raise CompressedImageError("unsupported_format", f"compressed image format {fmt!r} is a depth image; "
                                   "expected a colour jpeg or png stream (use the camera's colour topic)")
    kind = payload_format(payload)
    if kind is None:
        head = payload[:8].hex(" ") if payload else "nothing"
        raise CompressedImageError("corrupt", f"compressed image (format {fmt!r}, {len(payload)} bytes) starts with "
                                   f"{head}, which is neither a JPEG nor a PNG signature; expected a complete "
                                   "jpeg or png file in `data`")
    try:
        with PILImage.open(io.BytesIO(payload), formats=[kind.upper()]) as image:
            image.load()  # decode now: truncated or damaged data raises here
            if image.mode not in _MODES_TO_RGB:
                raise CompressedImageError("unsupported_format", f"{kind} image in mode {image.mode!r} (e.g. 16-bit); "
                                           "expected 8-bit colour or grey")
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except CompressedImageError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ...
        raise CompressedImageError("corrupt", f"{kind} payload of {len(payload)} bytes does not decode "
                                   f"({type(error).__name__}: {error}); the message was damaged or truncated") from error


def compressed_to_rgb(msg: CompressedImageLike) -> np.ndarray:
    """sensor_msgs/CompressedImage (any object with .format and .data) -> uint8 [H, W, 3] RGB."""
    return compressed_fields_to_rgb(msg.format, msg.data)


def rgb_to_compressed_fields(rgb: np.ndarray, fmt: str = "jpeg", quality: int = DEFAULT_JPEG_QUALITY) -> CompressedFields:
    """uint8 [H, W, 3] RGB -> CompressedImage fields, format written as image_transport does ("rgb8; jpeg compressed bgr8")."""
    from PIL import Image as PILImage

    if fmt not in COMPRESSED_FORMATS:
        raise CompressedImageError("unsupported_format", f"expected one of {', '.join(COMPRESSED_FORMATS)}, got {fmt!r}")
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise CompressedImageError("unsupported_format", f"expected RGB pixels [H, W, 3], got shape {pixels.shape}")
    out = io.BytesIO()
    if fmt == "jpeg":
        PILImage.fromarray(pixels, "RGB").save(out, format="JPEG", quality=int(quality))
    else:
        PILImage.fromarray(pixels, "RGB").save(out, format="PNG", compress_level=1)
    return CompressedFields(f"rgb8; {fmt} compressed bgr8", out.getvalue())
