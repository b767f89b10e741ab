"""Errors raised when a message cannot be converted.

All derive from `ConversionError` (a ValueError), so the ROS layer can catch one class, log the
message (which says what was expected, what came and what to do) and keep running.
"""
from __future__ import annotations

from dgslrm_ros.core.errors import DgslrmError


class ConversionError(DgslrmError, ValueError):
    """A message's fields do not describe what the conversion needs."""


class UnsupportedEncodingError(ConversionError):
    """An Image encoding we do not decode (e.g. 16UC1, yuv422, bayer_*)."""

    def __init__(self, encoding: str, supported: tuple[str, ...]) -> None:
        self.encoding = encoding
        self.supported = supported
        super().__init__(
            f"unsupported image encoding {encoding!r}: expected one of {', '.join(supported)}; "
            "republish the camera in one of them (e.g. with image_proc or the driver's format option)"
        )


class ImageLayoutError(ConversionError):
    """An Image's height/width/step/data sizes disagree."""


class CameraInfoError(ConversionError):
    """A CameraInfo without usable intrinsics (all-zero K, non-positive focal length or size)."""


class PoseError(ConversionError):
    """A pose with NaN / infinite values or a non-unit quaternion, or a non-rigid 4x4 matrix."""


class PointCloudLayoutError(ConversionError):
    """A PointCloud2 whose fields, steps or data length do not match the expected layout."""


class StampError(ConversionError):
    """A time stamp out of range (negative, or nanoseconds outside [0, 1e9))."""


class CompressedImageError(ConversionError):
    """A CompressedImage that cannot be decoded; `reason` is "unsupported_format" or "corrupt"."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)
