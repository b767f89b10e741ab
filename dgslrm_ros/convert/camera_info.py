"""sensor_msgs/CameraInfo <-> intrinsics (K [3, 3], D, distortion_model, width, height).

Only the fields the pipeline uses are read; the rest (R, P, binning, roi) are written with the
values of a monocular, unrectified camera so RViz and image_proc accept the message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from dgslrm_ros.convert.errors import CameraInfoError

# Number of coefficients each model carries in ROS (image_geometry conventions).
DISTORTION_COEFFS: dict[str, int] = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


class CameraInfoLike(Protocol):
    height: int
    width: int
    distortion_model: str
    d: Any
    k: Any


@dataclass(frozen=True)
class CameraIntrinsics:
    """What the pipeline needs from a CameraInfo."""

    K: np.ndarray  # [3, 3] float64, pixel units
    D: np.ndarray  # [n] float64 distortion coefficients (may be empty)
    distortion_model: str
    width: int
    height: int

    @property
    def has_distortion(self) -> bool:
        return bool(self.D.size and np.any(self.D != 0))


class CameraInfoFields(NamedTuple):
    """The fields of a sensor_msgs/CameraInfo other than the header, binning and roi."""

    height: int
    width: int
    distortion_model: str
    d: np.ndarray  # [n] float64
    k: np.ndarray  # [9] float64, row-major
    r: np.ndarray  # [9] float64
    p: np.ndarray  # [12] float64


# CameraInfo K is OpenCV's (pixel centres at integer coordinates); the library's K puts them at +0.5
# (core.cameras.intrinsics_from_opencv is the torch twin). Conversion happens once, at this edge.
PIXEL_CENTRE_SHIFT = 0.5


def opencv_to_library_K(K: np.ndarray) -> np.ndarray:
    """K [..., 3, 3] from a CameraInfo -> the library convention (principal point + 0.5 px)."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[..., :2, 2] += PIXEL_CENTRE_SHIFT
    return out


def library_to_opencv_K(K: np.ndarray) -> np.ndarray:
    """K [..., 3, 3] in the library convention -> the CameraInfo one (principal point - 0.5 px)."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[..., :2, 2] -= PIXEL_CENTRE_SHIFT
    return out


def _check_K(K: np.ndarray, width: int, height: int, what: str) -> None:
    if K.shape != (3, 3):
        raise CameraInfoError(f"{what}: expected K with 9 values (3x3), got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise CameraInfoError(f"{what}: K contains NaN or infinite values: {K.tolist()}")
    if not np.any(K):
        raise CameraInfoError(
            f"{what}: K is all zero, i.e. the camera is uncalibrated; calibrate it (camera_calibration) "
            "or publish the intrinsics of its datasheet"
        )
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError(f"{what}: expected positive focal lengths fx, fy, got fx={K[0, 0]} fy={K[1, 1]}")
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"{what}: expected a positive image size, got width={width} height={height}")


def camera_info_fields_to_intrinsics(
    height: int, width: int, distortion_model: str, d: Any, k: Any
) -> CameraIntrinsics:
    """CameraInfo fields -> CameraIntrinsics; raises CameraInfoError on unusable values."""
    K = np.asarray(k, dtype=np.float64).reshape(-1)
    if K.size != 9:
        raise CameraInfoError(f"camera_info: expected 9 values in k, got {K.size}")
    K = K.reshape(3, 3).copy()
    _check_K(K, int(width), int(height), "camera_info")
    D = np.asarray(d, dtype=np.float64).reshape(-1).copy()
    if not np.all(np.isfinite(D)):
        raise CameraInfoError(f"camera_info: distortion coefficients contain NaN or inf: {D.tolist()}")
    return CameraIntrinsics(K=K, D=D, distortion_model=str(distortion_model), width=int(width), height=int(height))


def camera_info_to_intrinsics(msg: CameraInfoLike) -> CameraIntrinsics:
    """sensor_msgs/CameraInfo (any object with its fields) -> CameraIntrinsics."""
    return camera_info_fields_to_intrinsics(msg.height, msg.width, msg.distortion_model, msg.d, msg.k)


def intrinsics_to_camera_info_fields(
    K: np.ndarray,
    width: int,
    height: int,
    D: Sequence[float] | np.ndarray | None = None,
    distortion_model: str = "plumb_bob",
) -> CameraInfoFields:
    """K [3, 3] (+ optional distortion) -> CameraInfo fields; R = identity, P = [K | 0] (monocular)."""
    K = np.asarray(K, dtype=np.float64)
    _check_K(K, int(width), int(height), "intrinsics")
    if D is None:
        D = np.zeros(DISTORTION_COEFFS.get(distortion_model, 0))
    d = np.asarray(D, dtype=np.float64).reshape(-1).copy()
    p = np.zeros((3, 4))
    p[:, :3] = K
    return CameraInfoFields(
        height=int(height),
        width=int(width),
        distortion_model=distortion_model,
        d=d,
        k=K.reshape(-1).copy(),
        r=np.eye(3).reshape(-1),
        p=p.reshape(-1),
    )
