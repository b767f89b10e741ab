"""Metric scale for a COLMAP model (COLMAP's unit is arbitrary) and the anchored, metric poses."""
from __future__ import annotations

import numpy as np

from dgslrm_ros.posing.errors import PoseError

DEFAULT_MEDIAN_DEPTH_M = 2.0


def median_depth_scale(cam_from_world: np.ndarray, points: np.ndarray, median_depth_m: float) -> float:
    """Metres per COLMAP unit that put the median depth of `points` seen from this camera at
    `median_depth_m`. cam_from_world [4, 4], points [N, 3] (COLMAP units)."""
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected [N, 3], got {points.shape}")
    if median_depth_m <= 0:
        raise ValueError(f"median depth must be > 0 m, got {median_depth_m}")
    depth = points @ cam_from_world[2, :3] + cam_from_world[2, 3]  # [N]
    depth = depth[depth > 0]
    if depth.size < 3:
        raise PoseError(f"the first registered frame sees {depth.size} sparse points in front of it (need >= 3) "
                        "to set the scale; pass --scale (metres per COLMAP unit) instead")
    return float(median_depth_m / np.median(depth))


def metric_poses(cam_from_world: dict[int, np.ndarray], points: np.ndarray, scale: float,
                 anchor: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """COLMAP cam_from_world (units) -> metric world_T_cam with the world at the `anchor` frame's
    camera (its pose is the identity), and the points [N, 3] in that world, in metres."""
    if scale <= 0 or not np.isfinite(scale):
        raise ValueError(f"scale must be a positive number of metres per COLMAP unit, got {scale}")
    anchor_from_colmap = cam_from_world[anchor]  # [4, 4]
    poses = {}
    for frame, cam_T in cam_from_world.items():
        world_T_cam = anchor_from_colmap @ np.linalg.inv(cam_T)
        world_T_cam[:3, 3] *= scale
        poses[frame] = world_T_cam
    world_points = (points @ anchor_from_colmap[:3, :3].T + anchor_from_colmap[:3, 3]) * scale
    return poses, world_points
