"""A bounded, time-sorted buffer of camera poses, looked up at image stamps.

Pure numpy on purpose: `add` runs inside a ROS callback at the pose rate (often 100-200 Hz) and a
lookup runs per image, so neither may pay torch's per-call overhead. The interpolation rule is the
one of `core/poses.interpolate_poses` (linear position, slerp rotation), for one query at a time.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import Enum

import numpy as np

from dgslrm_ros.core.rotations_np import matrix_to_quat_wxyz, quat_wxyz_to_matrix


class PoseLookup(Enum):
    OK = "ok"  # a pose was found (exact, interpolated or nearest within tolerance)
    WAIT = "wait"  # no pose yet at or after the stamp: a late pose may still arrive
    MISSING = "missing"  # poses on both sides, none within tolerance: it will never be found


@dataclass(frozen=True)
class PoseResult:
    status: PoseLookup
    world_T_cam: np.ndarray | None = None  # [4, 4] float64 when status is OK
    how: str = ""  # "exact" | "interpolated" | "nearest"


def slerp_np(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Shortest-arc spherical interpolation of two unit wxyz quaternions."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: lerp is exact to float precision and avoids 0/0
        q = q0 + alpha * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(min(dot, 1.0))
    return (np.sin((1 - alpha) * theta) * q0 + np.sin(alpha * theta) * q1) / np.sin(theta)


def interpolate_pose(p0: np.ndarray, p1: np.ndarray, alpha: float) -> np.ndarray:
    """[4, 4] x2 rigid poses, alpha in [0, 1] -> [4, 4] (linear position, slerp rotation)."""
    out = np.eye(4)
    out[:3, 3] = p0[:3, 3] + alpha * (p1[:3, 3] - p0[:3, 3])
    q = slerp_np(matrix_to_quat_wxyz(p0[:3, :3]), matrix_to_quat_wxyz(p1[:3, :3]), alpha)
    out[:3, :3] = quat_wxyz_to_matrix(q / np.linalg.norm(q))
    return out


def check_pose(world_T_cam: np.ndarray) -> str | None:
    """None for a usable rigid pose [4, 4], else a short reason (NaN, not a rotation, bad shape)."""
    pose = np.asarray(world_T_cam)
    if pose.shape != (4, 4):
        return f"expected a [4, 4] pose, got shape {pose.shape}"
    if not np.all(np.isfinite(pose)):
        return "pose contains NaN or infinite values"
    R = pose[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or abs(np.linalg.det(R) - 1.0) > 1e-3:
        return "rotation block is not a proper rotation (orientation quaternion not normalised?)"
    if not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6):
        return f"last row must be [0, 0, 0, 1], got {pose[3].tolist()}"
    return None


class PoseBuffer:
    """Time-sorted poses (at most `capacity`, oldest evicted) and lookup within a tolerance.

    Not thread-safe on its own: the pipeline holds its lock around every call.
    """

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 2:
            raise ValueError(f"PoseBuffer capacity: expected >= 2, got {capacity}")
        self.capacity = capacity
        self._stamps: list[float] = []
        self._poses: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def newest_stamp(self) -> float | None:
        return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        self._stamps.clear()
        self._poses.clear()

    def drop_newer_than(self, stamp: float) -> int:
        """Forget poses after `stamp` (a stream that restarted earlier); returns how many went."""
        index = bisect.bisect_right(self._stamps, stamp)
        removed = len(self._stamps) - index
        del self._stamps[index:]
        del self._poses[index:]
        return removed

    def add(self, stamp: float, world_T_cam: np.ndarray) -> None:
        """Insert in time order (a slightly late pose is welcome); a repeated stamp replaces the old pose.

        The caller checks the pose (`check_pose`) and handles stamps jumping backwards (bag loops).
        """
        pose = np.asarray(world_T_cam, dtype=np.float64).copy()
        index = bisect.bisect_left(self._stamps, stamp)
        if index < len(self._stamps) and self._stamps[index] == stamp:
            self._poses[index] = pose
            return
        self._stamps.insert(index, float(stamp))
        self._poses.insert(index, pose)
        if len(self._stamps) > self.capacity:
            del self._stamps[0]
            del self._poses[0]

    def lookup(self, stamp: float, tolerance: float, final: bool = False) -> PoseResult:
        """The pose at `stamp`.

        Bracketed by two poses at most 2 x tolerance apart: interpolated. Otherwise the nearest pose
        within `tolerance`. A stamp newer than every pose gives WAIT (a late pose may bracket it)
        unless `final`, when the nearest within tolerance is taken or MISSING returned.
        """
        stamps = self._stamps
        if not stamps:
            return PoseResult(PoseLookup.MISSING if final else PoseLookup.WAIT)
        index = bisect.bisect_left(stamps, stamp)
        if index < len(stamps) and stamps[index] == stamp:
            return PoseResult(PoseLookup.OK, self._poses[index].copy(), "exact")
        has_lower, has_upper = index > 0, index < len(stamps)
        if has_lower and has_upper:
            s0, s1 = stamps[index - 1], stamps[index]
            if s1 - s0 <= 2.0 * tolerance:
                alpha = (stamp - s0) / (s1 - s0)
                return PoseResult(PoseLookup.OK, interpolate_pose(self._poses[index - 1], self._poses[index], alpha),
                                  "interpolated")
            nearest = index - 1 if stamp - s0 <= s1 - stamp else index
            if abs(stamps[nearest] - stamp) <= tolerance:
                return PoseResult(PoseLookup.OK, self._poses[nearest].copy(), "nearest")
            return PoseResult(PoseLookup.MISSING)
        if has_upper:  # older than every pose: the poses before it are gone or never came
            if stamps[0] - stamp <= tolerance:
                return PoseResult(PoseLookup.OK, self._poses[0].copy(), "nearest")
            return PoseResult(PoseLookup.MISSING)
        # newer than every pose
        if not final:
            return PoseResult(PoseLookup.WAIT)
        if stamp - stamps[-1] <= tolerance:
            return PoseResult(PoseLookup.OK, self._poses[-1].copy(), "nearest")
        return PoseResult(PoseLookup.MISSING)
