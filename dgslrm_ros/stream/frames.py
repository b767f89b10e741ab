"""Frames accepted into the pipeline and their preparation for the model.

A ROS callback only checks and stores the raw RGB array (cheap); undistortion, centre-crop and
resize to the model input run later on the worker thread, once per frame: overlapping windows share
Frame objects, so the prepared tensor is cached on the frame.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.core.cameras import intrinsics_from_opencv, resize_crop_frames
from dgslrm_ros.core.distortion import undistort_image, undistortion_grid
from dgslrm_ros.core.errors import DgslrmError

# Lens models we can undistort (core/distortion.py: plumb_bob; rational_polynomial with k4..k6 = 0).
UNDISTORTABLE = ("plumb_bob", "rational_polynomial")
MAX_IMAGE_SIDE = 16384


class FrameError(DgslrmError, ValueError):
    """An image or camera model the pipeline cannot use (the message says what was expected)."""


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Intrinsics of the incoming images, in the library convention (pixel centres at +0.5)."""

    K: np.ndarray  # [3, 3] float64
    D: np.ndarray  # [n] float64
    distortion_model: str
    width: int
    height: int
    _grid: dict = field(default_factory=dict, repr=False)  # cached undistortion grid (worker thread only)

    @staticmethod
    def from_camera_info(K_opencv: np.ndarray, D: np.ndarray, distortion_model: str, width: int,
                         height: int) -> CameraModel:
        """CameraInfo values (K with pixel centres at integers) -> CameraModel; FrameError if unusable."""
        K_arr = np.asarray(K_opencv, dtype=np.float64)
        if K_arr.size != 9:
            raise FrameError(f"camera_info: expected K with 9 values, got {K_arr.size}")
        K_arr = K_arr.reshape(3, 3)
        D_arr = np.asarray(D if D is not None else [], dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(K_arr)) or not np.all(np.isfinite(D_arr)):
            raise FrameError("camera_info: K or D contains NaN/inf")
        if K_arr[0, 0] <= 0 or K_arr[1, 1] <= 0:
            raise FrameError(f"camera_info: expected positive focal lengths, got fx={K_arr[0, 0]} fy={K_arr[1, 1]} "
                             "(an all-zero K means the camera is uncalibrated)")
        if not (0 < int(width) <= MAX_IMAGE_SIDE and 0 < int(height) <= MAX_IMAGE_SIDE):
            raise FrameError(f"camera_info: expected a positive image size, got {width}x{height}")
        distorted = bool(D_arr.size and np.any(D_arr != 0))
        if distorted and distortion_model not in UNDISTORTABLE:
            raise FrameError(
                f"camera_info: distortion model {distortion_model!r} with non-zero coefficients is not "
                f"supported (expected one of {UNDISTORTABLE}); publish rectified images (image_proc) instead"
            )
        if distorted and distortion_model == "rational_polynomial" and np.any(D_arr[5:] != 0):
            raise FrameError("camera_info: rational_polynomial with non-zero k4..k6 is not supported; "
                             "publish rectified images (image_proc) instead")
        K_ours = intrinsics_from_opencv(torch.from_numpy(K_arr.copy())).numpy()
        return CameraModel(K=K_ours, D=D_arr, distortion_model=str(distortion_model), width=int(width),
                           height=int(height))

    @property
    def distorted(self) -> bool:
        return bool(self.D.size and np.any(self.D != 0))

    def undistort(self, rgb: np.ndarray) -> np.ndarray:
        """[H, W, 3] uint8 -> the pinhole image with the same K (identity without distortion)."""
        if not self.distorted:
            return rgb
        grid = self._grid.get("grid")
        if grid is None:
            grid = undistortion_grid(torch.from_numpy(self.K), self.D, self.height, self.width)
            self._grid["grid"] = grid
        return undistort_image(rgb, self.K, self.D, grid=grid)


def check_image(rgb: object, camera: CameraModel | None = None) -> str | None:
    """None if `rgb` is a usable uint8 [H, W, 3] image (matching the camera's size), else why not."""
    if not isinstance(rgb, np.ndarray):
        return f"expected a numpy uint8 [H, W, 3] image, got {type(rgb).__name__}"
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        return f"expected a uint8 [H, W, 3] RGB image, got {rgb.dtype} {rgb.shape}"
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        return f"expected a non-empty image, got {rgb.shape}"
    if camera is not None and (rgb.shape[0], rgb.shape[1]) != (camera.height, camera.width):
        return (f"image is {rgb.shape[1]}x{rgb.shape[0]} but camera_info says {camera.width}x{camera.height}; "
                "the intrinsics would not apply")
    return None


class Frame:
    """One admitted image with its pose and camera; shared by the windows that contain it."""

    __slots__ = ("stamp", "rgb", "world_T_cam", "camera", "_prepared", "_lock")

    def __init__(self, stamp: float, rgb: np.ndarray, world_T_cam: np.ndarray, camera: CameraModel) -> None:
        self.stamp = float(stamp)  # seconds (float64: absolute ROS times need it)
        self.rgb = rgb  # [H, W, 3] uint8, as received
        self.world_T_cam = np.asarray(world_T_cam, dtype=np.float64)  # [4, 4] metric world
        self.camera = camera
        self._prepared: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        self._lock = threading.Lock()

    def prepared(self, out_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(image [3, h, w] float32 in [0, 1], K [3, 3] float32) at the model input size, cached."""
        with self._lock:
            cached = self._prepared.get(out_hw)
            if cached is None:
                rgb = self.camera.undistort(self.rgb)
                image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0  # [3, H, W]
                image, K = resize_crop_frames(image, torch.from_numpy(self.camera.K).float(), out_hw)
                cached = (image.clamp(0.0, 1.0).contiguous(), K)
                self._prepared = {out_hw: cached}
            return cached


def stack_frames(frames: list[Frame] | tuple[Frame, ...],
                 out_hw: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor, np.ndarray]:
    """Frames -> (images [T, 3, h, w], K [T, 3, 3], world_T_cam [T, 4, 4] float64, stamps [T] float64)."""
    prepared = [frame.prepared(out_hw) for frame in frames]
    images = torch.stack([p[0] for p in prepared])
    K = torch.stack([p[1] for p in prepared])
    poses = torch.from_numpy(np.stack([frame.world_T_cam for frame in frames]))
    stamps = np.array([frame.stamp for frame in frames], dtype=np.float64)
    return images, K, poses, stamps
