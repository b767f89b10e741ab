"""Random dynamic scenes of textured analytic primitives, in metric units (world z up, floor z = 0).

Every object is a unit shape (sphere, cube, cylinder, square) in its own "q" space, mapped to the world
by a rest half-extent, a time-varying per-axis stretch, a rotation and a centre:

    world(t) = centre(t) + rotation(t) @ (stretch(t) * canonical),   canonical = half_extent * q

`canonical` is a material point of the rest shape. Textures are solid (3D) functions of it and the
ray caster returns it per pixel, so the flow of a surface point is exact: apply the transform of time n
to the same canonical point. A stretch that changes over time (squash and stretch) is the non-rigid
motion; it is affine, so rays can still be intersected analytically in q space.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.core.rotations_np import quat_wxyz_to_matrix
from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.geometry import axis_angle_to_matrix

# Object kinds (unit shapes in q space). ROOM and SKY are seen from inside (background).
SPHERE, BOX, CYLINDER, PLANE, ROOM, SKY = range(6)
# Texture kinds, evaluated on canonical coordinates.
SOLID, CHECKER, STRIPES, GRADIENT, NOISE = range(5)

NUM_WOBBLES = 2  # sinusoids summed into each object's smooth path


@dataclass(frozen=True)
class SceneConfig:
    """How random scenes are drawn. Distances in metres, speeds per second, frequencies in Hz."""

    num_objects: tuple[int, int] = (3, 8)  # inclusive range of foreground objects
    object_half_extent: tuple[float, float] = (0.15, 0.5)
    layout_radius: float = 1.4  # objects start within this radius of the scene centre
    static_probability: float = 0.15  # whole scene frozen (camera still moves)
    moving_probability: float = 0.8  # per object, in a dynamic scene
    nonrigid_probability: float = 0.35  # per moving object: squash-and-stretch deformation
    bounce_probability: float = 0.3  # per moving object
    floating_probability: float = 0.3  # per object: starts in the air instead of on the floor
    max_linear_speed: float = 0.3
    wobble_amplitude: tuple[float, float] = (0.05, 0.3)
    wobble_frequency: tuple[float, float] = (0.15, 0.8)
    max_angular_speed: float = 1.5  # rad/s
    bounce_height: tuple[float, float] = (0.1, 0.4)
    bounce_frequency: tuple[float, float] = (0.5, 1.5)
    stretch_amplitude: tuple[float, float] = (0.15, 0.4)  # relative; stretch = 1 + a sin(...)
    stretch_frequency: tuple[float, float] = (0.3, 1.2)
    kind_weights: tuple[float, float, float, float] = (0.35, 0.3, 0.25, 0.1)  # sphere, box, cylinder, plane
    texture_weights: tuple[float, float, float, float, float] = (0.15, 0.25, 0.2, 0.15, 0.25)
    texture_frequency: tuple[float, float] = (1.5, 6.0)  # cycles per metre on objects
    room_probability: float = 0.75  # otherwise ground plane + far sky sphere
    room_half_extent: tuple[float, float] = (4.0, 6.0)
    room_height: tuple[float, float] = (2.6, 3.6)
    sky_radius: float = 40.0
    ambient: tuple[float, float] = (0.3, 0.5)
    camera: CameraPathConfig = field(default_factory=CameraPathConfig)

    def __post_init__(self) -> None:
        low, high = self.num_objects
        if not 0 <= low <= high:
            raise ValueError(f"SceneConfig.num_objects must be 0 <= low <= high, got {self.num_objects}")
        for name in ("static_probability", "moving_probability", "nonrigid_probability", "bounce_probability",
                     "room_probability", "floating_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SceneConfig.{name} must be a probability in [0, 1], got {value}")


SCENE_PRESETS: dict[str, SceneConfig] = {
    "default": SceneConfig(),
    # Everything frozen: flow must be zero; also a fast sanity set for training.
    "static": SceneConfig(static_probability=1.0),
    # Every object moves and deforms, no blur: the hardest flow, used by tests.
    "dynamic": SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=0.5,
                           camera=CameraPathConfig(motion_blur_probability=0.0)),
    # `dynamic` with the camera travelling 0.4-1.6 m per 24-frame window (0.17-0.67 m/s at 10 fps): a walking
    # robot or a hand-held camera. `dynamic`'s 0.05-0.5 m (the paper's cap) leaves a median track parallax of
    # about 1 px at 64 px; a real hand-held clip has about 12 px (docs/results/parallax.md).
    "wide": SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=0.5,
                        camera=CameraPathConfig(motion_blur_probability=0.0, travel=(0.4, 1.6))),
    # Every object moves, about twice as far as in `dynamic`, and objects are larger: motion of a few
    # pixels per frame even at 64 px, a curriculum for small budgets (the model has to see motion to learn it).
    "fast": SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=0.35,
                        max_linear_speed=0.9, wobble_amplitude=(0.15, 0.5), wobble_frequency=(0.3, 1.0),
                        object_half_extent=(0.25, 0.6), max_angular_speed=2.0,
                        camera=CameraPathConfig(motion_blur_probability=0.0)),
    # Few objects, no blur: cheapest scenes for smoke runs.
    "simple": SceneConfig(num_objects=(2, 3), camera=CameraPathConfig(motion_blur_probability=0.0)),
}


def scene_families(spec: str) -> tuple[str, ...]:
    """The family names of a comma-separated `scene_preset` ("dynamic,wide"), in order: training interleaves
    them, and the first one gives the held-out windows."""
    return tuple(name.strip() for name in spec.split(","))


def scene_preset(name: str) -> SceneConfig:
    if name not in SCENE_PRESETS:
        raise KeyError(f"unknown scene preset {name!r}; choose one of {sorted(SCENE_PRESETS)}")
    return SCENE_PRESETS[name]


@dataclass
class ObjectStates:
    """Object transforms at a list of instants."""

    centres: Tensor    # [O, T, 3]
    rotations: Tensor  # [O, T, 3, 3] object (q/canonical axes) -> world
    stretch: Tensor    # [O, T, 3] per-axis deformation of the rest shape (1 = rest)


@dataclass
class Scene:
    """One random scene: shapes, continuous-time motion, textures, light. Object 0.. are background."""

    kinds: Tensor             # [O] long
    half_extents: Tensor      # [O, 3] rest shape
    centre0: Tensor           # [O, 3]
    velocity: Tensor          # [O, 3]
    wobble_amplitude: Tensor  # [O, J, 3]
    wobble_frequency: Tensor  # [O, J]
    wobble_phase: Tensor      # [O, J, 3]
    bounce_height: Tensor     # [O]
    bounce_frequency: Tensor  # [O]
    bounce_phase: Tensor      # [O]
    rotation0: Tensor         # [O, 3, 3]
    spin_axis: Tensor         # [O, 3] unit, world frame
    spin_speed: Tensor        # [O] rad/s
    stretch_amplitude: Tensor  # [O, 3]
    stretch_frequency: Tensor  # [O]
    stretch_phase: Tensor     # [O, 3]
    texture_kind: Tensor      # [O] long
    color_a: Tensor           # [O, 3]
    color_b: Tensor           # [O, 3]
    texture_frequency: Tensor  # [O] cycles per metre
    texture_direction: Tensor  # [O, 3] unit
    texture_seed: Tensor      # [O] long
    light_direction: Tensor   # [3] unit, towards the light
    ambient: float
    num_background: int
    is_static: bool
    centre: Tensor            # [3] where the cameras look
    extent: Tensor            # [3] half size of the free space around the centre (room or a box in the open)

    @property
    def num_objects(self) -> int:
        return int(self.kinds.shape[0])

    @property
    def nonrigid(self) -> Tensor:
        """[O] bool: objects whose shape changes over time."""
        return (self.stretch_amplitude.abs() > 0).any(dim=-1)

    def states(self, times: Tensor) -> ObjectStates:
        """times [T] seconds -> transforms of every object at those instants."""
        t = times.to(torch.float32)[None, :]  # [1, T]
        phase = 2 * math.pi * self.wobble_frequency[:, :, None] * t[:, None, :]  # [O, J, T]
        wobble = (self.wobble_amplitude[:, :, None, :]
                  * torch.sin(phase[..., None] + self.wobble_phase[:, :, None, :])).sum(dim=1)  # [O, T, 3]
        centres = self.centre0[:, None, :] + self.velocity[:, None, :] * t[..., None] + wobble
        bounce = self.bounce_height[:, None] * torch.sin(
            math.pi * self.bounce_frequency[:, None] * t + self.bounce_phase[:, None]).abs()  # [O, T]
        centres = centres + torch.stack([torch.zeros_like(bounce), torch.zeros_like(bounce), bounce], dim=-1)
        spin = axis_angle_to_matrix(self.spin_axis[:, None, :] * (self.spin_speed[:, None] * t)[..., None])
        rotations = spin @ self.rotation0[:, None]  # [O, T, 3, 3]
        stretch = 1.0 + self.stretch_amplitude[:, None, :] * torch.sin(
            2 * math.pi * self.stretch_frequency[:, None, None] * t[..., None] + self.stretch_phase[:, None, :])
        return ObjectStates(centres=centres, rotations=rotations, stretch=stretch)

    def material_points(self, object_id: Tensor, canonical: Tensor, times: Tensor) -> Tensor:
        """World positions over time of material points.

        object_id [P] long (>= 0), canonical [P, 3] rest coordinates, times [T] -> [P, T, 3].
        """
        if object_id.numel() and int(object_id.min()) < 0:
            raise ValueError("material_points needs valid object ids (>= 0); mask out ray misses first")
        states = self.states(times)
        out = torch.empty(len(object_id), len(times), 3, dtype=canonical.dtype)
        # One object at a time: gathering a [P, T, 3, 3] rotation per point would dominate the cost.
        for obj in object_id.unique().tolist():
            index = (object_id == obj).nonzero().squeeze(1)
            local = states.stretch[obj][None] * canonical[index][:, None, :]  # [P_o, T, 3]
            rotation = states.rotations[obj]  # [T, 3, 3]
            out[index] = states.centres[obj][None] + (local[..., None, :] * rotation[None]).sum(-1)
        return out


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], size=None) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], size=size)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    quat = rng.normal(size=4)
    return quat_wxyz_to_matrix(quat / np.linalg.norm(quat))


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _palette_colour(rng: np.random.Generator, saturated: bool) -> np.ndarray:
    """Random colour: vivid for objects, muted for walls (so objects stand out)."""
    hue = rng.uniform()
    sat = rng.uniform(0.4, 0.95) if saturated else rng.uniform(0.05, 0.35)
    val = rng.uniform(0.5, 1.0) if saturated else rng.uniform(0.45, 0.9)
    i = int(hue * 6) % 6
    f = hue * 6 - int(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - sat * f), val * (1 - sat * (1 - f))
    return np.array([(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i])


def sample_scene(rng: np.random.Generator, config: SceneConfig) -> Scene:
    """Draw one scene; all randomness comes from `rng` so a seed fixes the scene."""
    rows: list[dict] = []

    def add(kind: int, half_extent, centre, *, texture: int, frequency: float, saturated: bool,
            rotation=None) -> dict:
        row = dict(
            kind=kind, half_extent=np.asarray(half_extent, dtype=float), centre0=np.asarray(centre, dtype=float),
            velocity=np.zeros(3), wobble_amplitude=np.zeros((NUM_WOBBLES, 3)), wobble_frequency=np.zeros(NUM_WOBBLES),
            wobble_phase=np.zeros((NUM_WOBBLES, 3)), bounce_height=0.0, bounce_frequency=0.0, bounce_phase=0.0,
            rotation0=np.eye(3) if rotation is None else rotation, spin_axis=np.array([0.0, 0.0, 1.0]),
            spin_speed=0.0, stretch_amplitude=np.zeros(3), stretch_frequency=0.0, stretch_phase=np.zeros(3),
            texture_kind=texture, color_a=_palette_colour(rng, saturated), color_b=_palette_colour(rng, saturated),
            texture_frequency=frequency, texture_direction=_unit(rng), texture_seed=int(rng.integers(0, 2**20)),
        )
        rows.append(row)
        return row

    centre = np.array([0.0, 0.0, _uniform(rng, (0.3, 0.7))])
    if rng.uniform() < config.room_probability:
        half_xy = _uniform(rng, config.room_half_extent, size=2)
        height = _uniform(rng, config.room_height)
        room_texture = int(rng.choice([CHECKER, STRIPES, NOISE, GRADIENT]))
        add(ROOM, [half_xy[0], half_xy[1], height / 2], [0.0, 0.0, height / 2], texture=room_texture,
            frequency=_uniform(rng, (0.6, 2.0)), saturated=False)
        extent = np.array([half_xy[0], half_xy[1], height / 2])
    else:
        add(PLANE, [config.sky_radius, config.sky_radius, 1.0], [0.0, 0.0, 0.0],
            texture=int(rng.choice([CHECKER, NOISE])), frequency=_uniform(rng, (0.5, 1.5)), saturated=False)
        sky = add(SKY, [config.sky_radius] * 3, [0.0, 0.0, 0.0], texture=GRADIENT, frequency=1.0, saturated=False)
        sky["color_a"] = np.array([0.85, 0.9, 1.0]) * _uniform(rng, (0.8, 1.0))
        sky["color_b"] = np.array([0.3, 0.5, 0.9]) * _uniform(rng, (0.7, 1.0))
        sky["texture_direction"] = np.array([0.0, 0.0, 1.0])
        extent = np.array([config.room_half_extent[1], config.room_half_extent[1], config.room_height[1] / 2])
    num_background = len(rows)

    is_static = bool(rng.uniform() < config.static_probability)
    num_objects = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
    kind_p = np.asarray(config.kind_weights, dtype=float) / sum(config.kind_weights)
    texture_p = np.asarray(config.texture_weights, dtype=float) / sum(config.texture_weights)
    for _ in range(num_objects):
        kind = int(rng.choice([SPHERE, BOX, CYLINDER, PLANE], p=kind_p))
        half = _uniform(rng, config.object_half_extent, size=3)
        if kind == SPHERE and rng.uniform() < 0.5:
            half[:] = half[0]  # a true sphere; otherwise an ellipsoid
        if kind == PLANE:
            half[2] = 1.0  # unused thickness axis of the unit square
        radius = float(np.linalg.norm(half if kind != PLANE else half[:2]))
        angle, distance = rng.uniform(0, 2 * math.pi), config.layout_radius * math.sqrt(rng.uniform())
        floating = rng.uniform() < config.floating_probability
        height = radius + (_uniform(rng, (0.2, 1.0)) if floating else 0.0)
        position = [distance * math.cos(angle), distance * math.sin(angle), height]
        row = add(kind, half, position, texture=int(rng.choice(5, p=texture_p)),
                  frequency=_uniform(rng, config.texture_frequency), saturated=True,
                  rotation=_random_rotation(rng) if kind != SPHERE or rng.uniform() < 0.5 else np.eye(3))
        if is_static or rng.uniform() >= config.moving_probability:
            continue
        # Head for another point of the layout disk, so objects cross the scene instead of leaving it
        # (or walking into a camera, which stands outside the disk).
        goal_angle, goal_distance = rng.uniform(0, 2 * math.pi), config.layout_radius * math.sqrt(rng.uniform())
        heading = np.array([goal_distance * math.cos(goal_angle) - position[0],
                            goal_distance * math.sin(goal_angle) - position[1]])
        heading /= max(float(np.linalg.norm(heading)), 1e-9)
        row["velocity"] = np.array([*(heading * rng.uniform(0, config.max_linear_speed)), 0.0])
        row["wobble_amplitude"] = _uniform(rng, config.wobble_amplitude, size=(NUM_WOBBLES, 3)) / NUM_WOBBLES
        row["wobble_amplitude"][:, 2] *= 0.5 if floating else 0.0  # floor objects slide, floating ones also bob
        row["wobble_frequency"] = _uniform(rng, config.wobble_frequency, size=NUM_WOBBLES)
        row["wobble_phase"] = rng.uniform(0, 2 * math.pi, size=(NUM_WOBBLES, 3))
        row["spin_axis"] = _unit(rng)
        row["spin_speed"] = rng.uniform(-config.max_angular_speed, config.max_angular_speed)
        if rng.uniform() < config.bounce_probability:
            row["bounce_height"] = _uniform(rng, config.bounce_height)
            row["bounce_frequency"] = _uniform(rng, config.bounce_frequency)
            row["bounce_phase"] = rng.uniform(0, math.pi)
        if kind != PLANE and rng.uniform() < config.nonrigid_probability:
            row["stretch_amplitude"] = _uniform(rng, config.stretch_amplitude, size=3) * rng.choice([-1, 1], size=3)
            row["stretch_frequency"] = _uniform(rng, config.stretch_frequency)
            row["stretch_phase"] = rng.uniform(0, 2 * math.pi, size=3)

    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), 1.0])

    def stack(key: str, dtype=torch.float32) -> Tensor:
        return torch.as_tensor(np.stack([np.asarray(r[key]) for r in rows]), dtype=dtype)

    return Scene(
        kinds=stack("kind", torch.long), half_extents=stack("half_extent"), centre0=stack("centre0"),
        velocity=stack("velocity"), wobble_amplitude=stack("wobble_amplitude"),
        wobble_frequency=stack("wobble_frequency"), wobble_phase=stack("wobble_phase"),
        bounce_height=stack("bounce_height"), bounce_frequency=stack("bounce_frequency"),
        bounce_phase=stack("bounce_phase"), rotation0=stack("rotation0"), spin_axis=stack("spin_axis"),
        spin_speed=stack("spin_speed"), stretch_amplitude=stack("stretch_amplitude"),
        stretch_frequency=stack("stretch_frequency"), stretch_phase=stack("stretch_phase"),
        texture_kind=stack("texture_kind", torch.long), color_a=stack("color_a"), color_b=stack("color_b"),
        texture_frequency=stack("texture_frequency"), texture_direction=stack("texture_direction"),
        texture_seed=stack("texture_seed", torch.long),
        light_direction=torch.as_tensor(light / np.linalg.norm(light), dtype=torch.float32),
        ambient=float(_uniform(rng, config.ambient)), num_background=num_background, is_static=is_static,
        centre=torch.as_tensor(centre, dtype=torch.float32), extent=torch.as_tensor(extent, dtype=torch.float32),
    )
