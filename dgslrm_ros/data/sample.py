"""`WindowSample`: a training / evaluation window with its ground truth, or a batch of them (not `stream.Window`,
the node's buffered camera frames). docs/architecture.md (Data sample) has the one-class-two-forms rule and the
on-disk keys: those of the caches written before this class, which load unchanged.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from dgslrm_ros.core.normalization import SceneNormalization, normalize_window


@dataclass
class WindowSample:
    """One window of the input camera, its ground truth and supervision views. Shapes are a sample's;
    `collate` / `add_batch_dim` make a batch: the same class, every tensor with a leading B (`scene_id` [B])."""

    frames: Tensor  # [T, 3, H, W] input camera's video, in [0, 1]
    K: Tensor  # [T, 3, 3]
    world_T_cam: Tensor  # [T, 4, 4] metric world frame (normalised after `normalized`)
    timestamps: Tensor  # [T] seconds
    depth: Tensor  # [T, 1, H, W] GT z-depth of the input frames
    keyframe_index: Tensor  # [Kf] long
    keyframe_points: Tensor  # [Kf, T, H, W, 3] position at frame n of the point seen at each keyframe pixel
    keyframe_visible: Tensor  # [Kf, T, H, W] bool: that point is unoccluded in the input camera at frame n
    sup_frames: Tensor  # [S, 3, H, W] supervision views from other synchronised cameras (S may be 0)
    sup_K: Tensor  # [S, 3, 3]
    sup_world_T_cam: Tensor  # [S, 4, 4]
    sup_frame_index: Tensor  # [S] long window frame (instant) of each supervision view
    sup_depth: Tensor  # [S, 1, H, W]
    scene_id: Tensor  # [] long scene seed
    ref_frames: Tensor | None = None  # [R, 3, H, W] far-away frames of the input camera, outside the window
    ref_K: Tensor | None = None  # [R, 3, 3]
    ref_world_T_cam: Tensor | None = None  # [R, 4, 4]
    ref_timestamps: Tensor | None = None  # [R] seconds
    # geometry.cues.GeometryCues ([Kf, ...]) in the window's normalised frame, attached by training.cue_cache
    # (typed loosely: `data` sits beside `geometry` in the layer table and does not import it)
    cues: Any = None

    def map(self, fn: Callable[[Tensor], Tensor]) -> WindowSample:
        """The same sample with `fn` applied to every tensor, the cues' too."""
        return _map(self, fn)

    def to(self, device: torch.device | str) -> WindowSample:
        return self.map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> WindowSample:
        """Called by a DataLoader with pin_memory=True."""
        return self.map(Tensor.pin_memory)

    def add_batch_dim(self) -> WindowSample:
        """One sample -> a batch of one."""
        return self.map(lambda t: t.unsqueeze(0))

    @staticmethod
    def collate(samples: Sequence[WindowSample]) -> WindowSample:
        """Samples -> one batch, every tensor stacked along a new dim 0 (the DataLoader collate_fn)."""
        return _stack(list(samples), "sample")

    def model_inputs(self) -> dict[str, Tensor]:
        """frames, K, world_T_cam, timestamps (+ the reference frames when present) as DGSLRM.forward keywords."""
        names = ("frames", "K", "world_T_cam", "timestamps", "ref_frames", "ref_K", "ref_world_T_cam", "ref_timestamps")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def normalized(self, scene_scale: float) -> tuple[WindowSample, list[SceneNormalization]]:
        """Batch (metric) -> (the batch in each window's normalised frame, one normalisation per window).

        Poses become norm_T_cam, depths are divided by the scale, scene-flow points are mapped as points.
        """
        if self.frames.dim() != 5:
            raise ValueError(f"WindowSample.normalized: expected a batch, frames [B, T, 3, H, W], got "
                             f"{tuple(self.frames.shape)}; use add_batch_dim() or collate() first")
        norms = [normalize_window(poses, scene_scale)[1] for poses in self.world_T_cam]

        def each(value: Tensor | None, convert: Callable) -> Tensor | None:  # per window, dtype kept
            return None if value is None else torch.stack([convert(n, v) for n, v in zip(norms, value)]).to(value.dtype)

        poses, scaled = SceneNormalization.poses_to_norm, lambda n, depth: depth / n.scale
        return dataclasses.replace(
            self, world_T_cam=each(self.world_T_cam, poses), sup_world_T_cam=each(self.sup_world_T_cam, poses),
            ref_world_T_cam=each(self.ref_world_T_cam, poses), depth=each(self.depth, scaled),
            sup_depth=each(self.sup_depth, scaled),
            keyframe_points=each(self.keyframe_points, SceneNormalization.points_to_norm)), norms

    def to_tensors(self) -> dict[str, Tensor]:
        """Flat dict for a safetensors file (one unbatched sample; the cues are the cue cache's to store)."""
        return {f.name: getattr(self, f.name).contiguous() for f in fields(self)
                if f.name != "cues" and getattr(self, f.name) is not None} | {"scene_id": self.scene_id.reshape(1)}

    @staticmethod
    def from_tensors(values: dict[str, Tensor]) -> WindowSample:
        """The inverse of `to_tensors` (other keys, such as cached cues, are left to their owner)."""
        missing = [f.name for f in fields(WindowSample) if f.default is dataclasses.MISSING and f.name not in values]
        if missing:
            raise KeyError(f"WindowSample.from_tensors: missing {missing}; the file predates this data format, "
                           f"write it again (cache_split or an empty cue-cache folder)")
        kept = {f.name: values[f.name] for f in fields(WindowSample) if f.name in values and f.name != "cues"}
        return WindowSample(**kept | {"scene_id": kept["scene_id"].reshape(())})


def _map(value: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """`fn` on a tensor, on every tensor field of a dataclass (recursively); None stays None."""
    if value is None or isinstance(value, Tensor):
        return value if value is None else fn(value)
    return dataclasses.replace(value, **{f.name: _map(getattr(value, f.name), fn) for f in fields(value)})


def _stack(items: list, name: str) -> Any:
    """Stack tensors, or dataclasses of tensors field by field; None when every item is None."""
    if any(item is None for item in items):
        if all(item is None for item in items):
            return None
        raise ValueError(f"WindowSample.collate: `{name}` is set in some samples and None in others; "
                         f"batch samples of one dataset (same reference frames, all cued or none)")
    if isinstance(items[0], Tensor):
        return torch.stack(items)
    return type(items[0])(**{f.name: _stack([getattr(i, f.name) for i in items], f.name) for f in fields(items[0])})


def scene_flow_targets(keyframe_points: Tensor, keyframe_index: Tensor) -> Tensor:
    """GT displacement of every keyframe pixel's point from its own keyframe instant.

    keyframe_points [B, Kf, T, H, W, 3] (where each pixel's surface point is at every frame),
    keyframe_index [Kf] -> [B, Kf, T, H, W, 3], zero at the own keyframe.
    """
    kf = keyframe_index.long().to(keyframe_points.device)
    own = keyframe_points[:, torch.arange(kf.numel(), device=kf.device), kf]  # [B, Kf, H, W, 3]
    return keyframe_points - own[:, :, None]
