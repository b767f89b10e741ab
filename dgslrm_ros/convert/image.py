"""sensor_msgs/Image <-> uint8 RGB arrays [H, W, 3].

Pure numpy over the message's fields (height, width, encoding, step, data), so it works on rosbags
and rclpy messages alike. Rows may be padded (`step` > width * channels), as many drivers do.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np

from dgslrm_ros.convert.errors import ImageLayoutError, UnsupportedEncodingError
from dgslrm_ros.convert.fastcopy import pixels_to_rgb

# encoding -> (channels, channel order as indices giving R, G, B from the stored channels)
_DECODE: dict[str, tuple[int, tuple[int, ...]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_DECODE)


class ImageLike(Protocol):
    height: int
    width: int
    encoding: str
    step: int
    data: Any


class ImageFields(NamedTuple):
    """The fields of a sensor_msgs/Image other than the header; `data` is a flat uint8 array."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  # [step * height] uint8


def as_uint8_buffer(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's `data` (numpy array, bytes, bytearray, array.array or list)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)  # array.array, rclpy's uint8[]
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)  # plain list of ints


def image_fields_to_rgb(height: int, width: int, encoding: str, step: int, data: Any) -> np.ndarray:
    """Decode Image fields to a new contiguous uint8 array [H, W, 3] (RGB order)."""
    if encoding not in _DECODE:
        raise UnsupportedEncodingError(encoding, SUPPORTED_ENCODINGS)
    channels, order = _DECODE[encoding]
    height, width, step = int(height), int(width), int(step)
    row_bytes = width * channels
    if height <= 0 or width <= 0:
        raise ImageLayoutError(f"image must be non-empty, got height={height} width={width}")
    if step < row_bytes:
        raise ImageLayoutError(
            f"{encoding} image step {step} is smaller than width*channels = {row_bytes}; the publisher "
            "filled `step` wrongly (it must be the row length in bytes)"
        )
    buffer = as_uint8_buffer(data)
    needed = step * (height - 1) + row_bytes
    if buffer.size < needed:
        raise ImageLayoutError(
            f"{encoding} image {width}x{height} with step {step} needs at least {needed} data bytes, got "
            f"{buffer.size}; the message is truncated"
        )
    if encoding != "rgb8":  # a channel shuffle: one vectorised pass in C when built (convert/fastcopy.py)
        out = pixels_to_rgb(buffer, height, width, step, channels, order)
        if out is not None:
            return out
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, row_bytes), strides=(step, 1))
    pixels = rows.reshape(height, width, channels)
    # Always a copy: a view would alias the message buffer (read-only for rclpy bytes, shared with
    # the message for rosbags). One strided copy per channel beats fancy indexing by ~10x.
    out = np.empty((height, width, 3), dtype=np.uint8)
    if encoding == "rgb8":
        np.copyto(out, pixels)
    else:
        for target, source in enumerate(order):
            out[:, :, target] = pixels[:, :, source]
    return out


def image_to_rgb(msg: ImageLike) -> np.ndarray:
    """sensor_msgs/Image (any object with its fields) -> uint8 [H, W, 3] RGB."""
    return image_fields_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data)


def thumbnail(rgb: np.ndarray, max_width: int = 320) -> np.ndarray:
    """uint8 [H, W, 3] -> at most `max_width` wide, by striding: the viewer's frusta textures (keeps its page light)."""
    step = max(1, -(-rgb.shape[1] // max_width))
    return np.ascontiguousarray(rgb[::step, ::step])


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8", row_padding: int = 0) -> ImageFields:
    """uint8 [H, W, 3] RGB (or [H, W] / [H, W, 1] grey for mono8) -> Image fields in `encoding`.

    `row_padding` extra zero bytes per row reproduce drivers that pad rows (tests, benchmarks).
    Alpha channels are written opaque (255). For unpadded rgb8 `data` is a view of `rgb` (no copy).
    """
    if encoding not in _DECODE:
        raise UnsupportedEncodingError(encoding, SUPPORTED_ENCODINGS)
    pixels = np.asarray(rgb)
    if pixels.dtype != np.uint8:
        raise ImageLayoutError(
            f"expected uint8 pixels, got {pixels.dtype}; convert float frames in [0, 1] with frames_to_rgb8()"
        )
    channels, _ = _DECODE[encoding]
    if encoding == "mono8":
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        if pixels.ndim != 2:
            raise ImageLayoutError(f"mono8 expects a grey image [H, W], got shape {pixels.shape}")
        stored = pixels[:, :, None]
    else:
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ImageLayoutError(f"{encoding} expects RGB pixels [H, W, 3], got shape {pixels.shape}")
        if encoding == "rgb8":
            stored = pixels
        else:
            stored = np.empty(pixels.shape[:2] + (channels,), dtype=np.uint8)
            order = (0, 1, 2) if encoding == "rgba8" else (2, 1, 0)
            for target, source in enumerate(order):
                stored[:, :, target] = pixels[:, :, source]
            if channels == 4:
                stored[:, :, 3] = 255
    height, width = stored.shape[:2]
    row_bytes = width * channels
    if row_padding:
        out = np.zeros((height, row_bytes + int(row_padding)), dtype=np.uint8)
        out[:, :row_bytes] = stored.reshape(height, row_bytes)
        data = out.reshape(-1)
    else:
        data = np.ascontiguousarray(stored).reshape(-1)
    return ImageFields(height, width, encoding, 0, row_bytes + int(row_padding), data)


def frames_to_rgb8(frames: np.ndarray) -> np.ndarray:
    """Library frames float [..., 3, H, W] in [0, 1] -> uint8 [..., H, W, 3] (rounded, clipped)."""
    frames = np.asarray(frames)
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ImageLayoutError(f"expected frames [..., 3, H, W], got shape {frames.shape}")
    scaled = np.clip(np.rint(frames.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(scaled, -3, -1))


def rgb8_to_frames(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [0, 1] (the library's `frames` layout)."""
    rgb = np.asarray(rgb)
    if rgb.ndim < 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ImageLayoutError(f"expected uint8 [..., H, W, 3], got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(np.moveaxis(rgb, -1, -3)).astype(np.float32) / 255.0
