"""Track-error protocols, each named for what it measures (all errors are end-point distances in metres).

- `query_point_errors` (`dgslrm replay`'s `tracking`, over windows by `QueryPointScores`): the query-point
  protocol of PointOdyssey / TAP-Vid in 3D. Every ground-truth track visible at the window's first frame is a
  query: its point is projected into that frame's input camera, the keyframe-0 Gaussian at that pixel is the
  prediction, and its trajectory is compared with the ground truth at every window frame (mean = ATE-3D).
- `published_track_errors` (`dgslrm demo`): what a downstream planner receives on `trajectories`. Each
  published track is matched to the ground-truth track nearest to it at the window's first frame and
  compared at every frame, beside the same track standing still; on ground-truth tracks that travel more
  than `moving_m`, also the error of the motion alone (displacement from the first frame).
- `dgslrm eval` (evaluation/evaluate.py) scores every keyframe pixel's trajectory against dense
  ground-truth scene flow: the end-point error over all pixels rather than sampled queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dgslrm_ros.core.cameras import project_points
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.metrics import track_metrics

MOVING_TRACK_M = 0.05  # a ground-truth track travelling further than this within a window is on a moving object
QUERY_THRESHOLDS_M = {"0.1m": 0.1, "0.2m": 0.2}  # the query-point protocol's `within_*` fractions
GT_STAMP_TOLERANCE_S = 1e-3  # a GT sample (float32 t relative to its cloud's stamp) vs a window stamp
QUERY_POINT_PROTOCOL = ("GT seed visible at the window's first frame -> its input pixel -> the keyframe-0 Gaussian "
                        "there; end-point error over the window's frames (m)")
PUBLISHED_TRACK_PROTOCOL = (
    "mean 3D end-point error over the window's frames between each received track and the ground-truth surface "
    "track nearest to it at the window's first frame; *_still_m: the same for tracks standing at their first "
    "point; moving_flow_*: error of the motion (track minus its first point) on ground-truth tracks travelling "
    f"more than {MOVING_TRACK_M} m in the window")


def query_point_errors(gt: np.ndarray, visible: np.ndarray, keyframe_pixels: DeformableGaussians, K: np.ndarray,
                       world_T_cam: np.ndarray, height: int, width: int) -> np.ndarray | None:
    """Errors [Q, T] of the queries inside the first frame's image (None when there is none).

    gt [M, T, 3]: ground-truth tracks at the window's instants (NaN where missing); visible [M] at the first
    frame; keyframe_pixels: every keyframe pixel's Gaussian, keyframe 0 first, row-major; K [3, 3] and
    world_T_cam [4, 4] of the first frame (model image of height x width px).
    """
    start = gt[:, 0]
    visible = visible & np.isfinite(start).all(axis=-1)
    if not visible.any():
        return None
    uv, depth = project_points(torch.from_numpy(start[visible]), torch.from_numpy(K).double(),
                               torch.from_numpy(world_T_cam))
    uv, depth = uv.numpy(), depth.numpy()
    inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    if not inside.any():
        return None
    index = uv[inside, 1].astype(np.int64) * width + uv[inside, 0].astype(np.int64)  # keyframe 0 pixels
    with torch.no_grad():
        idx = torch.as_tensor(index, device=keyframe_pixels.means.device)
        predicted = (keyframe_pixels.means[idx][:, None] + keyframe_pixels.offsets[idx]).double().cpu().numpy()
    return np.linalg.norm(predicted - gt[np.flatnonzero(visible)[inside]], axis=-1)  # [Q, T]


@dataclass
class QueryPointScores:
    """Query-point errors gathered over windows; `summary` is `dgslrm replay`'s `tracking` in metrics.json."""

    errors: list[np.ndarray] = field(default_factory=list)  # each window's finite errors, flattened
    queries: int = 0

    def add_window(self, gt_tracks: np.ndarray, gt_t: np.ndarray, gt_visible: np.ndarray, stamps: np.ndarray,
                   keyframe_pixels: DeformableGaussians, K: np.ndarray, world_T_cam: np.ndarray, height: int,
                   width: int) -> None:
        """Score one window against GT tracks [M, S, 3] sampled at gt_t [S] (absolute s; visible [M, S]): each
        window stamp [T] takes the GT sample within GT_STAMP_TOLERANCE_S (NaN where none); no window is scored
        whose first frame the GT misses. The other arguments are query_point_errors'."""
        stamps = np.asarray(stamps, dtype=np.float64)
        if gt_t.size == 0 or stamps.size == 0:
            return
        nearest = np.abs(gt_t[None, :] - stamps[:, None]).argmin(axis=1)  # [T]
        samples = np.where(np.abs(gt_t[nearest] - stamps) <= GT_STAMP_TOLERANCE_S, nearest, -1)
        if samples[0] < 0:
            return
        gt = np.where((samples >= 0)[None, :, None], gt_tracks[:, samples].astype(np.float64), np.nan)  # [M, T, 3]
        errors = query_point_errors(gt, gt_visible[:, samples[0]] > 0.5, keyframe_pixels, K, world_T_cam, height,
                                    width)
        if errors is not None:
            self.errors.append(errors[np.isfinite(errors)])
            self.queries += errors.shape[0]

    def summary(self) -> dict[str, Any] | None:
        """tracks (queries), samples, epe / epe_median (m), within_0.1m / 0.2m, protocol; None when none was scored."""
        if not self.errors:
            return None
        errors = np.concatenate(self.errors)
        out: dict[str, Any] = {"tracks": self.queries, "samples": int(errors.size)}
        if errors.size:
            out.update(track_metrics(torch.from_numpy(errors), QUERY_THRESHOLDS_M))
        out["protocol"] = QUERY_POINT_PROTOCOL
        return out


def published_track_errors(tracks: np.ndarray, gt_tracks: np.ndarray, newest: int,
                           moving_m: float = MOVING_TRACK_M) -> dict[str, Any]:
    """Published tracks [M, T, 3] of the window ending at ground-truth frame `newest`, against the
    ground-truth tracks [M_gt, frames, 3]; {} when nothing can be matched."""
    samples = tracks.shape[1]
    first = newest - samples + 1
    if first < 0 or tracks.shape[0] == 0:
        return {}
    gt = gt_tracks[:, first:newest + 1]  # [M_gt, T, 3]
    start = tracks[:, 0]  # [M, 3]
    ok = np.isfinite(start).all(axis=1)
    if not ok.any():
        return {}
    distance = np.linalg.norm(start[ok, None, :] - gt[None, :, 0, :], axis=-1)  # [M_ok, M_gt]
    nearest = gt[distance.argmin(axis=1)]  # [M_ok, T, 3]
    received = tracks[ok]  # [M_ok, T, 3]
    error = np.linalg.norm(received - nearest, axis=-1)
    still_error = np.linalg.norm(received[:, :1] - nearest, axis=-1)  # the track standing at its first point
    gt_motion = nearest - nearest[:, :1]  # [M_ok, T, 3] displacement from the window's first frame
    moving = np.nanmax(np.linalg.norm(gt_motion, axis=-1), axis=1) > moving_m  # [M_ok]
    motion_error = np.linalg.norm((received - received[:, :1]) - gt_motion, axis=-1)  # [M_ok, T]
    nan = float("nan")
    return {"track_epe_m": float(np.nanmean(error)), "track_epe_still_m": float(np.nanmean(still_error)),
            "tracks_evaluated": int(ok.sum()), "moving_tracks": int(moving.sum()),
            "moving_flow_epe_m": float(np.nanmean(motion_error[moving])) if moving.any() else nan,
            "moving_flow_epe_still_m": float(np.nanmean(np.linalg.norm(gt_motion[moving], axis=-1)))
            if moving.any() else nan}
