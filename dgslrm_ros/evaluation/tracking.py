"""Track-error protocols, each named for what it measures (all errors are end-point distances in metres).

- `query_point_errors` (`dgslrm replay`'s `tracking`, over windows by `QueryPointScores`): the query-point
  protocol of PointOdyssey / TAP-Vid in 3D. Every ground-truth track visible at the window's first frame is a
  query: its point is projected into that frame's input camera, the keyframe-0 Gaussian at that pixel is the
  prediction, and its trajectory is compared with the ground truth at every window frame (mean = ATE-3D).
- `published_track_errors` (`dgslrm demo`): what a downstream planner receives on `trajectories`. Each
  published track is compared, at every frame, with the ground-truth track of the surface point its first
  sample's pixel sees at the window's first frame, beside the same track standing still; where that point
  travels more than `moving_m`, also the error of the motion alone (displacement from the first frame).
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
    "mean 3D end-point error over the window's frames between each received track and the ground-truth track of "
    "the surface point seen, at the window's first frame, in the input pixel its first point projects to; "
    "*_still_m: the same for tracks standing at their first point; moving_flow_*: error of the motion (track "
    f"minus its first point) where that ground truth travels more than {MOVING_TRACK_M} m in the window")


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


def published_track_errors(tracks: np.ndarray, gt_pixel_tracks: np.ndarray, K: np.ndarray, world_T_cam: np.ndarray,
                           moving_m: float = MOVING_TRACK_M) -> dict[str, Any]:
    """Published tracks [M, T, 3] of one window against the ground truth of the pixels they start in.

    gt_pixel_tracks [H, W, T, 3]: over the window's frames, the trajectory of the surface point each input
    pixel sees at the window's first frame; K [3, 3] and world_T_cam [4, 4]: that frame's input camera.
    Each track's first sample is projected into that camera and compared with the GT of its pixel, so a
    depth error counts in full and cannot pair a track with a surface it is not on (matching in 3D to the
    nearest of a sparse GT grid did: its nearest GT point lay 0.6-0.9 m away in `dgslrm demo`). Tracks
    whose first sample is missing, behind the camera or outside the image are not scored. {} when none is.
    """
    height, width = gt_pixel_tracks.shape[:2]
    start = tracks[:, 0]  # [M, 3]
    ok = np.isfinite(start).all(axis=1)
    if ok.any():
        uv, depth = project_points(torch.from_numpy(start[ok]).double(), torch.from_numpy(K).double(),
                                   torch.from_numpy(world_T_cam).double())
        uv, depth = uv.numpy(), depth.numpy()
        inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        ok[np.flatnonzero(ok)[~inside]] = False
        uv = uv[inside].astype(np.int64)
    if not ok.any():
        return {}
    truth = gt_pixel_tracks[uv[:, 1], uv[:, 0]].astype(np.float64)  # [M_ok, T, 3]
    received = tracks[ok].astype(np.float64)  # [M_ok, T, 3]
    error = np.linalg.norm(received - truth, axis=-1)
    still_error = np.linalg.norm(received[:, :1] - truth, axis=-1)  # the track standing at its first point
    gt_motion = truth - truth[:, :1]  # [M_ok, T, 3] displacement from the window's first frame
    moving = np.nanmax(np.linalg.norm(gt_motion, axis=-1), axis=1) > moving_m  # [M_ok]
    motion_error = np.linalg.norm((received - received[:, :1]) - gt_motion, axis=-1)  # [M_ok, T]
    nan = float("nan")
    return {"track_epe_m": float(np.nanmean(error)), "track_epe_still_m": float(np.nanmean(still_error)),
            "tracks_evaluated": int(ok.sum()), "moving_tracks": int(moving.sum()),
            "moving_flow_epe_m": float(np.nanmean(motion_error[moving])) if moving.any() else nan,
            "moving_flow_epe_still_m": float(np.nanmean(np.linalg.norm(gt_motion[moving], axis=-1)))
            if moving.any() else nan}
