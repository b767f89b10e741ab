"""The similarity between the metric world frame and the model's normalised frame of one window.

The paper rescales every scene with a monocular depth estimate (20th-percentile disparity = 2). We
have no depth estimator but a robot has metric poses, so *our choice* is:

- **orientation and origin**: the window's middle camera (frame `T // 2`) becomes the normalised
  frame, so `norm_T_cam[T // 2]` is the identity and the other cameras sit around it (the middle
  keeps the largest camera distance from the origin smallest);
- **scale** (metres per normalised unit): `max(scene_scale, max_travel_m / max_travel_units)`:
  the configured prior `scene_scale` (pick it so the typical near depth in metres / scene_scale is
  about 0.5, as the paper's disparity rule does), raised when the cameras travel so far inside the
  window that they would leave a ball of radius `max_travel_units` around the reference camera. The
  camera travel is the only scale evidence the poses carry; the prior keeps a slow or static camera
  from being blown up to a tiny scale.

Outputs (Gaussians, tracks, velocities) are mapped back with the inverse so everything published
is metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.core.poses import invert_pose

GaussiansLike = TypeVar("GaussiansLike", Gaussians, DeformableGaussians)


def _identity() -> Tensor:
    return torch.eye(4, dtype=torch.float64)


@dataclass(frozen=True)
class SceneNormalization:
    """world point = scale * R p_norm + t, with (R, t) from the rigid `world_T_norm`.

    `scale` is metres per normalised unit. The identity (scale 1, world_T_norm = I) is the default.
    """

    scale: float = 1.0
    world_T_norm: Tensor = field(default_factory=_identity)  # [4, 4] rigid

    def __post_init__(self) -> None:
        if not (float(self.scale) > 0.0):
            raise ValueError(f"SceneNormalization.scale: expected a positive metres-per-unit value, got {self.scale}")
        pose = self.world_T_norm
        if not isinstance(pose, Tensor) or tuple(pose.shape) != (4, 4):
            raise ValueError(
                f"SceneNormalization.world_T_norm: expected a [4, 4] rigid transform, got "
                f"{tuple(pose.shape) if isinstance(pose, Tensor) else type(pose).__name__}"
            )
        rotation = pose[:3, :3].double()
        orthogonal = torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-4)
        if not orthogonal or abs(float(torch.linalg.det(rotation)) - 1.0) > 1e-4:
            raise ValueError("SceneNormalization.world_T_norm: the rotation block is not a proper rotation")

    # ---------------------------------------------------------------- helpers
    def _rt(self, like: Tensor) -> tuple[Tensor, Tensor]:
        pose = self.world_T_norm.to(dtype=like.dtype, device=like.device)
        return pose[:3, :3], pose[:3, 3]

    def as_matrix(self) -> Tensor:
        """[4, 4] world_from_norm similarity matrix (rotation block scaled)."""
        matrix = self.world_T_norm.clone()
        matrix[:3, :3] = matrix[:3, :3] * self.scale
        return matrix

    # ---------------------------------------------------------------- points
    def points_to_world(self, points_norm: Tensor) -> Tensor:
        """[..., 3] normalised -> [..., 3] metric world."""
        _check_points(points_norm)
        rotation, translation = self._rt(points_norm)
        return self.scale * points_norm @ rotation.T + translation

    def points_to_norm(self, points_world: Tensor) -> Tensor:
        """[..., 3] metric world -> [..., 3] normalised."""
        _check_points(points_world)
        rotation, translation = self._rt(points_world)
        return (points_world - translation) @ rotation / self.scale

    def vectors_to_world(self, vectors_norm: Tensor) -> Tensor:
        """[..., 3] displacements or velocities (no translation) normalised -> metric."""
        _check_points(vectors_norm)
        rotation, _ = self._rt(vectors_norm)
        return self.scale * vectors_norm @ rotation.T

    def vectors_to_norm(self, vectors_world: Tensor) -> Tensor:
        """[..., 3] displacements or velocities metric -> normalised."""
        _check_points(vectors_world)
        rotation, _ = self._rt(vectors_world)
        return vectors_world @ rotation / self.scale

    # ---------------------------------------------------------------- poses
    def poses_to_norm(self, world_T_cam: Tensor) -> Tensor:
        """[..., 4, 4] metric camera poses -> norm_T_cam (rigid, translation in normalised units)."""
        _check_poses(world_T_cam)
        norm_T_world = invert_pose(self.world_T_norm.to(world_T_cam))
        out = norm_T_world @ world_T_cam
        out[..., :3, 3] = out[..., :3, 3] / self.scale
        return out

    def poses_to_world(self, norm_T_cam: Tensor) -> Tensor:
        """[..., 4, 4] norm_T_cam -> metric world_T_cam."""
        _check_poses(norm_T_cam)
        scaled = norm_T_cam.clone()
        scaled[..., :3, 3] = scaled[..., :3, 3] * self.scale
        return self.world_T_norm.to(norm_T_cam) @ scaled

    # ---------------------------------------------------------------- gaussians
    def gaussians_to_world(self, gaussians: GaussiansLike) -> GaussiansLike:
        """Normalised Gaussians (static or deformable) -> metric world (means, offsets, scales, quats)."""
        rotation, translation = self._rt(gaussians.means)
        return gaussians.transformed(self.scale, rotation, translation)

    def gaussians_to_norm(self, gaussians: GaussiansLike) -> GaussiansLike:
        """Metric Gaussians -> normalised frame (the inverse of `gaussians_to_world`)."""
        rotation, translation = self._rt(gaussians.means)
        inverse_scale = 1.0 / self.scale
        return gaussians.transformed(inverse_scale, rotation.T, -(rotation.T @ translation) * inverse_scale)


def _check_points(points: Tensor) -> None:
    if not isinstance(points, Tensor) or points.dim() < 1 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape [..., 3], got {getattr(points, 'shape', type(points))}")


def _check_poses(poses: Tensor) -> None:
    if not isinstance(poses, Tensor) or poses.dim() < 2 or tuple(poses.shape[-2:]) != (4, 4):
        raise ValueError(f"poses: expected shape [..., 4, 4], got {getattr(poses, 'shape', type(poses))}")


def normalize_window(
    world_T_cam: Tensor, scene_scale: float, max_travel_units: float = 1.0
) -> tuple[Tensor, SceneNormalization]:
    """Normalise one window of metric camera poses [T, 4, 4] -> (norm_T_cam [T, 4, 4], normalization).

    See the module docstring for the choice of reference frame (middle camera) and scale
    (`max(scene_scale, max camera distance from it / max_travel_units)`, metres per unit).
    """
    if not isinstance(world_T_cam, Tensor) or world_T_cam.dim() != 3 or tuple(world_T_cam.shape[1:]) != (4, 4):
        raise ValueError(
            f"normalize_window: expected world_T_cam [T, 4, 4], got {getattr(world_T_cam, 'shape', type(world_T_cam))}"
        )
    if world_T_cam.shape[0] < 1:
        raise ValueError("normalize_window: expected at least one camera pose, got T=0")
    if not (scene_scale > 0.0) or not (max_travel_units > 0.0):
        raise ValueError(
            f"normalize_window: expected positive scene_scale (metres per unit) and max_travel_units, "
            f"got {scene_scale} and {max_travel_units}"
        )
    reference = world_T_cam[world_T_cam.shape[0] // 2]
    positions = world_T_cam[:, :3, 3]
    travel = float((positions - reference[:3, 3]).norm(dim=-1).max())
    scale = max(float(scene_scale), travel / max_travel_units)
    normalization = SceneNormalization(scale=scale, world_T_norm=reference.detach().to(torch.float64).cpu())
    return normalization.poses_to_norm(world_T_cam), normalization
