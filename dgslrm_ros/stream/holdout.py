"""Frame bookkeeping of `dgslrm replay --holdout N`: which frames reach the pipeline, and the
skipped ones kept (with their poses) until the windows around them are scored.

Every N-th image of the input topic (the first, the N+1-th, ...) goes to the pipeline, so a window
still holds its usual number of frames and spans N times the time. Held-out and fed frames are
prepared exactly like the pipeline's inputs (stream.frames.Frame: undistortion, resize, crop), so
`copy`/`blend` and the targets are on the same pixels the model saw. Scoring itself is
evaluation/holdout.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.evaluation.holdout import HeldOutView
from dgslrm_ros.stream.frames import CameraModel, Frame


@dataclass
class HoldoutFeed:
    """Split an image stream into fed and held-out frames and keep what scoring needs."""

    every: int  # N: feed one image in N
    sync_tolerance: float = 0.005  # s: a pose within this of an image's stamp is its pose
    images: dict[float, np.ndarray] = field(default_factory=dict)  # stamp s -> rgb [H, W, 3] uint8 (fed and held out)
    held_out: set[float] = field(default_factory=set)  # stamps never given to the pipeline
    poses: dict[float, np.ndarray] = field(default_factory=dict)  # stamp s -> world_T_cam [4, 4]
    camera: CameraModel | None = None
    seen: int = 0
    missing_pose: int = 0  # held-out frames skipped for want of a pose

    def __post_init__(self) -> None:
        if self.every < 2:
            raise ValueError(f"holdout: expected N >= 2 (feed every N-th frame), got {self.every}")

    def camera_info(self, K_opencv: np.ndarray, D: np.ndarray, distortion_model: str, width: int, height: int) -> None:
        self.camera = CameraModel.from_camera_info(K_opencv, D, distortion_model, width, height)

    def pose(self, stamp: float, world_T_cam: np.ndarray) -> None:
        self.poses[float(stamp)] = np.asarray(world_T_cam, dtype=np.float64)

    def image(self, stamp: float, rgb: np.ndarray) -> bool:
        """Keep the image; True when it goes to the pipeline."""
        feed = self.seen % self.every == 0
        self.seen += 1
        self.images[float(stamp)] = rgb
        if not feed:
            self.held_out.add(float(stamp))
        return feed

    def _pose_at(self, stamp: float) -> np.ndarray | None:
        if not self.poses:
            return None
        keys = np.fromiter(self.poses, dtype=np.float64)
        nearest = float(keys[np.argmin(np.abs(keys - stamp))])
        return self.poses[nearest] if abs(nearest - stamp) <= self.sync_tolerance else None

    def _prepared(self, stamp: float, out_hw: tuple[int, int]) -> tuple[Tensor, Tensor, np.ndarray] | None:
        pose = self._pose_at(stamp)
        if pose is None or self.camera is None or stamp not in self.images:
            return None
        image, K = Frame(stamp, self.images[stamp], pose, self.camera).prepared(out_hw)
        return image, K, pose

    def window(self, stamps: np.ndarray, out_hw: tuple[int, int]) -> tuple[Tensor, list[HeldOutView]] | None:
        """The window's input frames [T, 3, H, W] and the held-out views strictly inside its span.

        stamps [T] float64 s (WindowResult.stamps); out_hw the model input size. None when an input
        frame is no longer kept (it cannot be: frames are forgotten only before scored windows)."""
        inputs = []
        for stamp in stamps:
            key = min(self.images, key=lambda s: abs(s - stamp), default=None)
            prepared = None if key is None or abs(key - stamp) > 1e-6 else self._prepared(key, out_hw)
            if prepared is None:
                return None
            inputs.append(prepared[0])
        views = []
        for stamp in sorted(s for s in self.held_out if stamps[0] < s < stamps[-1]):
            prepared = self._prepared(stamp, out_hw)
            if prepared is None:
                self.missing_pose += 1
                continue
            image, K, pose = prepared
            views.append(HeldOutView(stamp=stamp, image=image, world_T_cam=torch.from_numpy(pose), K=K))
        return torch.stack(inputs), views

    def forget_before(self, stamp: float) -> None:
        """Bound memory: no later window starts before `stamp`."""
        for store in (self.images, self.poses):
            for key in [k for k in store if k < stamp]:
                del store[key]
        self.held_out = {s for s in self.held_out if s >= stamp}


class HoldoutEvaluation:
    """Feed split + per-window scoring + results, for one replay.

    `primary` names the pipeline's own Gaussians in the table (its `method`); `methods` replaces
    the default set (evaluation.holdout.default_methods) to add or drop rows."""

    def __init__(self, every: int, sync_tolerance: float = 0.005, primary: str = "network", renderer: str = "auto",
                 device: str = "cpu", lpips: bool = True, methods: dict | None = None) -> None:
        from dgslrm_ros.evaluation.holdout import default_methods
        from dgslrm_ros.metrics.lpips import LPIPS

        self.feed = HoldoutFeed(every=every, sync_tolerance=sync_tolerance)
        self.methods = methods if methods is not None else default_methods(primary, renderer)
        self.primary = primary
        self.device = device
        self.lpips = LPIPS() if lpips else None  # loaded once for the whole replay
        self.windows: list = []  # evaluation.holdout.WindowScores
        self.windows_without_frames = 0

    def score(self, result, window: int) -> None:
        """Score one WindowResult's held-out frames (call once the bag has been read past its span)."""
        from dgslrm_ros.evaluation.holdout import score_window

        stamps = np.asarray(result.stamps, dtype=np.float64)
        prepared = self.feed.window(stamps, tuple(result.rendered.shape[-2:]))
        scored = None
        if prepared is not None:
            inputs, views = prepared
            scored = score_window(window, result.deformable.to(self.device), stamps, inputs, views, self.methods,
                                  self.lpips)
        if scored is None:
            self.windows_without_frames += 1
        else:
            self.windows.append(scored)
        if len(stamps):
            self.feed.forget_before(float(stamps[0]))

    def summary(self) -> dict:
        from dgslrm_ros.evaluation.holdout import summarise

        return {
            "every": self.feed.every,
            "protocol": (f"the pipeline got every {self.feed.every}-th frame; each skipped frame inside a window's span "
                         "is rendered at its pose and instant (offsets interpolated) and scored against the real "
                         "frame at the model resolution; static = deformation zero, copy = nearest input frame, "
                         "blend = mean of the two neighbouring input frames"),
            "primary": self.primary,
            "methods": summarise(self.windows),
            "windows_scored": len(self.windows),
            "windows_without_held_out_frames": self.windows_without_frames,
            "frames_without_pose": self.feed.missing_pose,
            "per_window": [{"window": w.window, "stamps": w.stamps, "positions": w.positions, "values": w.values}
                           for w in self.windows],
        }

    def table(self) -> str:
        from dgslrm_ros.evaluation.holdout import format_table, summarise

        return format_table(summarise(self.windows))

    def write_pngs(self, out_dir, max_windows: int = 8) -> list:
        """One grid per window (at most `max_windows`, spread over the replay) in out_dir/holdout/."""
        from pathlib import Path

        from dgslrm_ros.evaluation.holdout import save_grid

        if not self.windows:
            return []
        chosen = sorted(set(np.linspace(0, len(self.windows) - 1, min(max_windows, len(self.windows)))
                            .round().astype(int).tolist()))
        return [save_grid(Path(out_dir) / "holdout" / f"window_{self.windows[i].window:04d}.png", self.windows[i])
                for i in chosen]
