"""Hand-held / robot-like camera paths for several synchronised cameras, as functions of time.

A path is drawn once per camera and evaluated at any instant, so a window, its supervision instants,
motion-blur sub-frames and far-away reference frames all come from the same continuous trajectory.
Poses are `world_T_cam` in the REP 103 optical convention (x right, y down, z forward), world z up.
The travel over one window is drawn from `travel` (the paper caps it at 0.5 m); hand shake is a
few-millimetre, sub-degree sum of sinusoids on top.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.data.geometry import axis_angle_to_matrix, intrinsics_from_fov, look_at

# Path kinds.
FORWARD, LATERAL, ORBIT, PAN, STILL = range(5)
PATH_NAMES = ("forward", "lateral", "orbit", "pan", "still")
# A forward path ends at least this far (m) from the scene centre. Never binding at `travel` <= 1.2 m: the
# nearest start is `distance[0]` = 2.2 m out.
FORWARD_CLEARANCE = 1.0


@dataclass(frozen=True)
class CameraPathConfig:
    """How camera rigs are drawn. Metres, degrees, seconds."""

    travel: tuple[float, float] = (0.05, 0.5)  # path length over one window
    distance: tuple[float, float] = (2.2, 3.6)  # from the scene centre at the start
    height: tuple[float, float] = (0.8, 1.8)
    fov_deg: tuple[float, float] = (45.0, 75.0)  # horizontal field of view
    path_weights: tuple[float, float, float, float, float] = (0.25, 0.2, 0.3, 0.15, 0.1)  # see PATH_NAMES
    speed_variation: float = 0.6  # in [0, 1): speed = mean * (1 + b cos(2 pi u)), |b| <= this
    pan_deg: tuple[float, float] = (5.0, 25.0)  # total yaw of a pan over a window
    target_offset: float = 0.4  # each camera looks at a point this close to the scene centre
    jitter_position: tuple[float, float] = (0.0, 0.006)  # hand shake amplitude (m)
    jitter_rotation_deg: tuple[float, float] = (0.0, 0.4)
    jitter_frequency: tuple[float, float] = (1.0, 4.0)  # Hz
    view_azimuth_deg: tuple[float, float] = (20.0, 70.0)  # other cameras' angle from the previous one
    motion_blur_probability: float = 0.25
    blur_subframes: int = 3  # odd: the middle one gives depth, ids and flow
    shutter_fraction: tuple[float, float] = (0.3, 0.8)  # exposure as a fraction of the frame interval

    def __post_init__(self) -> None:
        if not 0 <= self.travel[0] <= self.travel[1]:
            raise ValueError(f"CameraPathConfig.travel must be 0 <= low <= high (m), got {self.travel}")
        if not 0 <= self.speed_variation < 1:
            raise ValueError(f"CameraPathConfig.speed_variation must be in [0, 1), got {self.speed_variation}")
        if not 1 < self.fov_deg[0] <= self.fov_deg[1] < 179:
            raise ValueError(f"CameraPathConfig.fov_deg must be within (1, 179) degrees, got {self.fov_deg}")
        if self.blur_subframes < 1 or self.blur_subframes % 2 == 0:
            raise ValueError(f"CameraPathConfig.blur_subframes must be odd and >= 1, got {self.blur_subframes}")
        if not 0.0 <= self.motion_blur_probability <= 1.0:
            raise ValueError(f"CameraPathConfig.motion_blur_probability must be in [0, 1], "
                             f"got {self.motion_blur_probability}")


@dataclass
class CameraRig:
    """V synchronised cameras, each with its own continuous path over a window of `duration` seconds."""

    K: Tensor                # [V, 3, 3]
    kinds: Tensor            # [V] long path kind
    start: Tensor            # [V, 3] position at t = 0
    target: Tensor           # [V, 3] look-at point
    direction: Tensor        # [V, 3] unit direction of straight motion
    travel: Tensor           # [V] path length over the window (m)
    speed_bias: Tensor       # [V] b in the speed profile
    pan: Tensor              # [V] total yaw over the window (rad), PAN only
    jitter_position: Tensor  # [V, 3, 3] (sinusoid, axis) amplitudes
    jitter_rotation: Tensor  # [V, 3, 3] radians
    jitter_frequency: Tensor  # [V, 3] Hz
    jitter_phase: Tensor     # [V, 3, 2, 3] (sinusoid, position|rotation, axis)
    duration: float
    shutter: float           # exposure as a fraction of the frame interval, 0 = no motion blur
    blur_subframes: int

    @property
    def num_views(self) -> int:
        return int(self.K.shape[0])

    def poses(self, times: Tensor) -> Tensor:
        """times [T] seconds (any value, also outside the window) -> world_T_cam [V, T, 4, 4]."""
        t = times.to(torch.float32)[None, :]  # [1, T]
        u = t / self.duration
        b = self.speed_bias[:, None]
        progress = u + b * torch.sin(2 * math.pi * u) / (2 * math.pi)  # [V, T], 0 at u=0, 1 at u=1, monotone
        distance = self.travel[:, None] * progress  # [V, T] metres along the path

        linear = self.start[:, None, :] + distance[..., None] * self.direction[:, None, :]
        radial = self.start - self.target  # [V, 3]
        radius = radial[:, :2].norm(dim=-1).clamp_min(1e-3)  # [V]
        angle = distance / radius[:, None]  # [V, T] arc length / radius
        cos, sin = torch.cos(angle), torch.sin(angle)
        orbit = torch.stack([
            self.target[:, None, 0] + cos * radial[:, None, 0] - sin * radial[:, None, 1],
            self.target[:, None, 1] + sin * radial[:, None, 0] + cos * radial[:, None, 1],
            self.start[:, None, 2].expand_as(cos),
        ], dim=-1)
        kinds = self.kinds[:, None, None]
        position = torch.where(kinds == ORBIT, orbit, torch.where(kinds == STILL, self.start[:, None, :], linear))

        # Forward motion keeps its heading (a robot driving); pans yaw about the vertical; the others
        # keep the scene centred, as a person filming it would.
        forward0 = self.target - self.start  # [V, 3]
        yaw = self.pan[:, None] * progress  # [V, T]
        heading = torch.stack([
            torch.cos(yaw) * forward0[:, None, 0] - torch.sin(yaw) * forward0[:, None, 1],
            torch.sin(yaw) * forward0[:, None, 0] + torch.cos(yaw) * forward0[:, None, 1],
            forward0[:, None, 2].expand_as(yaw),
        ], dim=-1)
        fixed_heading = (kinds == FORWARD) | (kinds == PAN) | (kinds == STILL)
        look_target = torch.where(fixed_heading, position + heading, self.target[:, None, :].expand_as(position))
        world_T_cam = look_at(position, look_target)

        phase = 2 * math.pi * self.jitter_frequency[:, :, None] * t[:, None, :]  # [V, 3, T]
        waves = torch.sin(phase[..., None, None] + self.jitter_phase[:, :, None])  # [V, 3, T, 2, 3]
        shake_position = (self.jitter_position[:, :, None] * waves[..., 0, :]).sum(dim=1)  # [V, T, 3]
        shake_rotation = (self.jitter_rotation[:, :, None] * waves[..., 1, :]).sum(dim=1)  # camera-frame rotvec
        world_T_cam[..., :3, 3] += shake_position
        world_T_cam[..., :3, :3] = world_T_cam[..., :3, :3] @ axis_angle_to_matrix(shake_rotation)
        return world_T_cam


def sample_rig(
    rng: np.random.Generator,
    config: CameraPathConfig,
    *,
    num_views: int,
    height: int,
    width: int,
    duration: float,
    scene_centre: Tensor,
    scene_extent: Tensor,
) -> CameraRig:
    """Draw `num_views` cameras around `scene_centre`, inside the free space `scene_extent` (half sizes)."""
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    centre = scene_centre.double().numpy()
    max_distance = max(float(min(scene_extent[0], scene_extent[1])) - 0.7, config.distance[0])
    path_p = np.asarray(config.path_weights, dtype=float) / sum(config.path_weights)
    azimuth = rng.uniform(0, 2 * math.pi)
    side = rng.choice([-1.0, 1.0])
    rows = []
    for view in range(num_views):
        if view > 0:  # fan out alternately to both sides of the first camera
            step = math.radians(rng.uniform(*config.view_azimuth_deg))
            azimuth += side * step * (view if view % 2 else -view)
        distance = min(rng.uniform(*config.distance), max_distance)
        start = np.array([centre[0] + distance * math.cos(azimuth), centre[1] + distance * math.sin(azimuth),
                          rng.uniform(*config.height)])
        target = centre + np.array([*rng.uniform(-1, 1, size=2) * config.target_offset,
                                    rng.uniform(-0.5, 0.5) * config.target_offset])
        kind = int(rng.choice(len(PATH_NAMES), p=path_p))
        toward = target - start
        toward[2] = 0.0
        toward /= max(np.linalg.norm(toward), 1e-9)
        right = np.array([toward[1], -toward[0], 0.0])
        if kind == FORWARD:  # mostly towards the scene, a little sideways and up/down
            direction = toward + rng.uniform(-0.4, 0.4) * right + np.array([0.0, 0.0, rng.uniform(-0.15, 0.15)])
        elif kind == LATERAL:
            direction = rng.choice([-1.0, 1.0]) * right + rng.uniform(-0.3, 0.3) * toward
        else:
            direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        travel = rng.uniform(*config.travel)
        if kind == FORWARD:  # a long walk towards the scene stops short of its centre, not inside the objects
            travel = min(travel, max(distance - FORWARD_CLEARANCE, 0.0))
        if kind == PAN:
            travel *= 0.3  # a pan mostly turns, with a little drift of the hand
        if kind == ORBIT:
            travel *= rng.choice([-1.0, 1.0])  # direction of the arc
        rows.append(dict(
            kind=kind, start=start, target=target, direction=direction, travel=travel,
            speed_bias=rng.uniform(-config.speed_variation, config.speed_variation),
            pan=math.radians(rng.uniform(*config.pan_deg)) * rng.choice([-1.0, 1.0]) if kind == PAN else 0.0,
            jitter_position=rng.uniform(*config.jitter_position) * rng.uniform(0.3, 1.0, size=(3, 3)) / 3,
            jitter_rotation=math.radians(rng.uniform(*config.jitter_rotation_deg))
            * rng.uniform(0.3, 1.0, size=(3, 3)) / 3,
            jitter_frequency=rng.uniform(*config.jitter_frequency, size=3),
            jitter_phase=rng.uniform(0, 2 * math.pi, size=(3, 2, 3)),
            K=intrinsics_from_fov(float(rng.uniform(*config.fov_deg)), height, width).numpy(),
        ))
    blur = rng.uniform() < config.motion_blur_probability

    def stack(key: str, dtype=torch.float32) -> Tensor:
        return torch.as_tensor(np.stack([np.asarray(r[key]) for r in rows]), dtype=dtype)

    return CameraRig(
        K=stack("K"), kinds=stack("kind", torch.long), start=stack("start"), target=stack("target"),
        direction=stack("direction"), travel=stack("travel"), speed_bias=stack("speed_bias"), pan=stack("pan"),
        jitter_position=stack("jitter_position"), jitter_rotation=stack("jitter_rotation"),
        jitter_frequency=stack("jitter_frequency"), jitter_phase=stack("jitter_phase"), duration=float(duration),
        shutter=float(rng.uniform(*config.shutter_fraction)) if blur else 0.0,
        blur_subframes=config.blur_subframes if blur else 1,
    )
