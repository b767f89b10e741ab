"""Analytic ray casting of a `Scene`: exact depth, object id and canonical surface point per ray.

Independent of the Gaussian renderer on purpose (ground truth must not share its quirks). A ray is
mapped into an object's unit-shape ("q") space at its frame's instant (an affine map, so the ray
parameter is unchanged), intersected in closed form, and the nearest hit over objects wins. Ray
directions have camera z = 1, so the ray parameter of a hit is its z-depth.

Two paths, kept equal by the tests: a dense reference (every ray against every object, all frames
of a chunk at once) and the culled fast path used everywhere (per object, only the rays that pass
its bounding sphere, vectorised over all frames and rays).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dgslrm_ros.core.cameras import safe_divisor
from dgslrm_ros.data.geometry import pixel_centers, rays_through_pixels
from dgslrm_ros.data.scenes import (BOX, CHECKER, CYLINDER, GRADIENT, NOISE, PLANE, ROOM, SKY, SOLID, SPHERE,
                                    STRIPES, Scene)

NEAR = 0.05  # metres of z-depth; hits closer than this are ignored
_CHUNK_ELEMENTS = 1 << 21  # objects x rays handled at once (bounds temporary memory)


@dataclass
class RayHits:
    """Nearest surface along each ray."""

    depth: Tensor      # [C, P] ray parameter = z-depth; inf on a miss
    object_id: Tensor  # [C, P] long; -1 on a miss
    canonical: Tensor  # [C, P, 3] hit point in the object's rest coordinates (0 on a miss)
    normal: Tensor     # [C, P, 3] unit world normal facing the ray (0 on a miss)


@dataclass
class RenderedViews:
    """Ray-cast images of C camera instants."""

    rgb: Tensor        # [C, 3, H, W] in [0, 1]
    depth: Tensor      # [C, 1, H, W] z-depth
    object_id: Tensor  # [C, H, W] long
    canonical: Tensor  # [C, H, W, 3]


def _to_unit_space(scene: Scene, origins: Tensor, dirs: Tensor, times: Tensor):
    """Rays at instants [C] -> per-object q-space rays and the object states.

    origins [C, 1 or P, 3], dirs [C, P, 3] -> o_q [O, C, 1 or P, 3], d_q [O, C, P, 3]. Camera rays share
    their origin, so o_q is computed once per frame and broadcast. The 3x3 products are written out
    as three multiply-adds: batched matmul over millions of tiny matrices is several times slower.
    """
    states = scene.states(times)
    scale = states.stretch * scene.half_extents[:, None, :]  # [O, C, 3]
    to_q = states.rotations / scale[:, :, None, :]  # [O, C, 3, 3]: q_k = sum_j (x - c)_j R_jk / scale_k

    def apply(vectors: Tensor) -> Tensor:  # [O or 1, C, P, 3] -> [O, C, P, 3]
        return (vectors[..., 0:1] * to_q[:, :, None, 0] + vectors[..., 1:2] * to_q[:, :, None, 1]
                + vectors[..., 2:3] * to_q[:, :, None, 2])

    o_q = apply(origins[None] - states.centres[:, :, None, :])
    d_q = apply(dirs[None])
    return o_q, d_q, states, scale


# Intersectors take rays component by component (structure of arrays: each of ox, oy, oz, dx, dy, dz
# is a contiguous tensor), which keeps every step a plain elementwise pass.
Vec = tuple[Tensor, Tensor, Tensor]


def _sphere(o: Vec, d: Vec, inside: bool) -> Tensor:
    (ox, oy, oz), (dx, dy, dz) = o, d
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - 1.0
    disc = b * b - a * c
    root = torch.sqrt(disc.clamp_min(0.0))
    t = ((root - b) if inside else (-b - root)) / a
    return torch.where((disc >= 0) & (t > NEAR), t, math.inf)


def _box(o: Vec, d: Vec, inside: bool) -> Tensor:
    t_enter = t_exit = None
    for o_axis, d_axis in zip(o, d):
        inv = 1.0 / safe_divisor(d_axis)  # a zero direction component: the slab test still works
        t1, t2 = (-1.0 - o_axis) * inv, (1.0 - o_axis) * inv
        near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
        t_enter = near if t_enter is None else torch.maximum(t_enter, near)
        t_exit = far if t_exit is None else torch.minimum(t_exit, far)
    t = t_exit if inside else t_enter
    return torch.where((t_exit >= t_enter) & (t > NEAR), t, math.inf)


def _cylinder(o: Vec, d: Vec) -> Tensor:
    """Unit cylinder x^2 + y^2 <= 1, |z| <= 1, closed by two caps."""
    (ox, oy, oz), (dx, dy, dz) = o, d
    a = (dx * dx + dy * dy).clamp_min(1e-20)
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - 1.0
    disc = b * b - a * c
    t_side = (-b - torch.sqrt(disc.clamp_min(0.0))) / a
    side_ok = (disc >= 0) & ((oz + t_side * dz).abs() <= 1.0) & (t_side > NEAR)
    t = torch.where(side_ok, t_side, math.inf)
    inv_dz = 1.0 / safe_divisor(dz)
    for cap in (-1.0, 1.0):
        t_cap = (cap - oz) * inv_dz
        x, y = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = (x * x + y * y <= 1.0) & (t_cap > NEAR)
        t = torch.minimum(t, torch.where(cap_ok, t_cap, math.inf))
    return t


def _plane(o: Vec, d: Vec) -> Tensor:
    """Two-sided unit square |x|, |y| <= 1 at z = 0."""
    (ox, oy, oz), (dx, dy, dz) = o, d
    t = -oz / safe_divisor(dz)
    ok = ((ox + t * dx).abs() <= 1.0) & ((oy + t * dy).abs() <= 1.0) & (t > NEAR)
    return torch.where(ok, t, math.inf)


def _intersect_all(kinds: Tensor, o_q: Tensor, d_q: Tensor) -> Tensor:
    """kinds [O], rays [O, C, P or 1, 3] -> ray parameter [O, C, P] (inf = miss)."""
    t = torch.full(d_q.shape[:-1], math.inf, dtype=d_q.dtype)
    for kind, fn in _INTERSECTORS.items():
        index = (kinds == kind).nonzero().flatten()
        if index.numel():
            t[index] = fn(o_q[index].unbind(-1), d_q[index].unbind(-1)).expand(t[index].shape)
    return t


def _unit_normals(kind: Tensor, q: Tensor) -> Tensor:
    """Outward normals of the unit shapes at q-space hit points; kind [N], q [N, 3] -> [N, 3]."""
    axis = q.abs().argmax(-1)
    box_normal = torch.nn.functional.one_hot(axis, 3).to(q.dtype) * torch.sign(q)
    radial = torch.cat([q[:, :2], torch.zeros_like(q[:, :1])], dim=-1)
    cap = torch.cat([torch.zeros_like(q[:, :2]), torch.sign(q[:, 2:])], dim=-1)
    on_cap = q[:, 2].abs() >= q[:, :2].norm(dim=-1)
    cylinder_normal = torch.where(on_cap[:, None], cap, radial)
    plane_normal = torch.zeros_like(q)
    plane_normal[:, 2] = 1.0
    k = kind[:, None]
    return torch.where((k == SPHERE) | (k == SKY), q,
                       torch.where((k == BOX) | (k == ROOM), box_normal,
                                   torch.where(k == CYLINDER, cylinder_normal, plane_normal)))


def _surface(scene: Scene, states, scale: Tensor, origins: Tensor, dirs: Tensor, depth: Tensor,
             object_id: Tensor):
    """Canonical point and ray-facing world normal of the winning object per ray.

    origins [C, 1 or P, 3], dirs [C, P, 3], depth / object_id [C, P] -> canonical, normal [C, P, 3].
    """
    C, P = depth.shape
    hit = object_id >= 0
    frame = torch.arange(C)[:, None].expand(C, P)
    safe_id = object_id.clamp_min(0)
    safe_depth = torch.where(hit, depth, torch.zeros_like(depth))
    rotation = states.rotations[safe_id, frame]  # [C, P, 3, 3]
    ray_scale = scale[safe_id, frame]  # [C, P, 3]
    point = origins + safe_depth[..., None] * dirs - states.centres[safe_id, frame]  # world offset from centre
    q = (point[..., :, None] * rotation).sum(-2) / ray_scale  # R^T (x - c) / scale
    canonical = q * scene.half_extents[safe_id]
    normal_q = _unit_normals(scene.kinds[safe_id].flatten(), q.reshape(-1, 3)).reshape(C, P, 3)
    # Normals transform with the inverse transpose of (R diag(scale)): R (n / scale).
    normal = (rotation * (normal_q / ray_scale)[..., None, :]).sum(-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    facing = torch.where((normal * dirs).sum(-1, keepdim=True) > 0, -normal, normal)  # toward the camera
    zero = torch.zeros_like(canonical)
    return torch.where(hit[..., None], canonical, zero), torch.where(hit[..., None], facing, zero)


def _cast_chunk_dense(scene: Scene, origins: Tensor, dirs: Tensor, times: Tensor, surface: bool,
                      active: Tensor | None = None, owner: Tensor | None = None):
    """Reference: every ray against every object. Simple and obviously complete; the tests compare
    the culled path below against it."""
    o_q, d_q, states, scale = _to_unit_space(scene, origins, dirs, times)
    t_all = _intersect_all(scene.kinds, o_q, d_q)  # [O, C, P]
    depth, object_id = t_all.min(dim=0)  # [C, P]
    object_id = torch.where(torch.isfinite(depth), object_id, torch.full_like(object_id, -1))
    if not surface:
        return depth, object_id, None, None
    return (depth, object_id, *_surface(scene, states, scale, origins, dirs, depth, object_id))


_SELF_HIDING = (ROOM, SKY, PLANE)  # cannot hide their own points: seen from inside / flat
_INTERSECTORS = {
    SPHERE: lambda o, d: _sphere(o, d, False), SKY: lambda o, d: _sphere(o, d, True),
    BOX: lambda o, d: _box(o, d, False), ROOM: lambda o, d: _box(o, d, True),
    CYLINDER: _cylinder, PLANE: _plane,
}


def bounding_radii(scene: Scene) -> Tensor:
    """[O] radius of a sphere around each object's centre that holds it at every instant (inf: background)."""
    half = scene.half_extents.clone()
    half[scene.kinds == PLANE, 2] = 0.0  # the unit square is flat
    radius = (half * (1 + scene.stretch_amplitude.abs())).norm(dim=-1)
    background = torch.arange(scene.num_objects) < scene.num_background
    return torch.where(background, torch.full_like(radius, math.inf), radius)


def _cast_chunk_culled(scene: Scene, origins: Tensor, dirs: Tensor, times: Tensor, surface: bool,
                       active: Tensor | None = None, owner: Tensor | None = None):
    """Fast path: each object is intersected only with the rays that pass its bounding sphere.

    Foreground objects cover a small part of each image, so this skips most ray/object pairs; the
    background (room, ground, sky) still meets every ray. For occlusion tests, `active` [C, P] limits
    the work to rays that matter and `owner` [C, P] (the object each ray's target point lies on) skips
    objects that cannot hide their own points (the room from inside, the sky, planes).
    """
    states = scene.states(times)
    scale = states.stretch * scene.half_extents[:, None, :]  # [O, C, 3]
    to_q = states.rotations / scale[:, :, None, :]  # [O, C, 3, 3]: q_k = sum_j (x - c)_j R_jk / scale_k
    C, P, _ = dirs.shape
    shared_origin = origins.shape[1] == 1
    dx, dy, dz = (component.reshape(-1).contiguous() for component in dirs.unbind(-1))  # [N] each
    dir_sq = (dx * dx + dy * dy + dz * dz).reshape(C, P)
    radii = bounding_radii(scene)
    best_t = torch.full((C * P,), math.inf)
    best_id = torch.full((C * P,), -1, dtype=torch.long)
    owner_flat = None if owner is None else owner.reshape(-1)
    active_flat = None if active is None else active.reshape(-1)
    for obj in range(scene.num_objects):
        offset = states.centres[obj][:, None, :] - origins  # [C, 1 or P, 3]: origin -> object centre
        candidate = active_flat
        if owner_flat is not None and int(scene.kinds[obj]) in _SELF_HIDING:
            others = owner_flat != obj
            candidate = others if candidate is None else candidate & others
        if not math.isinf(float(radii[obj])):  # the ray's closest approach to the centre must be within the radius
            wx, wy, wz = offset.unbind(-1)  # [C, 1 or P]
            along = wx * dx.view(C, P) + wy * dy.view(C, P) + wz * dz.view(C, P)  # [C, P]
            off_sq = wx * wx + wy * wy + wz * wz
            r_sq = float(radii[obj]) ** 2
            near = (along * along >= (off_sq - r_sq) * dir_sq) & ((along > 0) | (off_sq <= r_sq))
            near = near.reshape(-1)
            candidate = near if candidate is None else candidate & near
        index = None
        if candidate is not None:
            index = candidate.nonzero().squeeze(1)
            if index.numel() == 0:
                continue
        # Rays are frame-major and `index` is sorted, so per-frame values repeat in runs: repeating
        # them by count is cheaper than a gather per ray.
        per_frame = torch.full((C,), P) if index is None else candidate.view(C, P).sum(1)
        ray_d = (dx, dy, dz) if index is None else (dx[index], dy[index], dz[index])
        rows = to_q[obj].reshape(C, 9)  # [C, 9]: entry 3 j + k is d(q_k)/d(x_j)
        m = rows.repeat_interleave(per_frame, dim=0).unbind(1)  # 9 x [N]
        # Written out: a batched matmul over millions of 3x3 matrices is several times slower.
        d_q = tuple(ray_d[0] * m[k] + ray_d[1] * m[3 + k] + ray_d[2] * m[6 + k] for k in range(3))
        if shared_origin:
            o_frame = ((-offset[:, 0, :])[:, None, :] @ to_q[obj])[:, 0, :]  # [C, 3]
            o_q = o_frame.repeat_interleave(per_frame, dim=0).unbind(1)
        else:
            flat = (-offset).reshape(-1, 3)
            flat = flat if index is None else flat[index]
            o_q = tuple(flat[:, 0] * m[k] + flat[:, 1] * m[3 + k] + flat[:, 2] * m[6 + k] for k in range(3))
        t = _INTERSECTORS[int(scene.kinds[obj])](o_q, d_q)  # [N]
        if index is None:
            closer = t < best_t
            best_t = torch.where(closer, t, best_t)
            best_id = torch.where(closer, obj, best_id)
        else:
            current = best_t[index]
            closer = t < current
            best_t[index] = torch.where(closer, t, current)
            best_id[index] = torch.where(closer, obj, best_id[index])
    depth, object_id = best_t.reshape(C, P), best_id.reshape(C, P)
    if not surface:
        return depth, object_id, None, None
    return (depth, object_id, *_surface(scene, states, scale, origins, dirs, depth, object_id))


def cast_rays(scene: Scene, origins: Tensor, dirs: Tensor, times: Tensor, surface: bool = True,
              culled: bool = True, active: Tensor | None = None, owner: Tensor | None = None) -> RayHits:
    """origins [C, P or 1, 3], dirs [C, P, 3] (dirs with camera z = 1), times [C] -> nearest hits.

    surface=False skips canonical points and normals (depth and ids only: visibility tests).
    culled=False runs the dense reference (every ray against every object; ignores active/owner).
    active [C, P] bool: only these rays are cast (others may report misses); owner [C, P] long: the
    object each ray aims at, which then is not tested where it cannot occlude itself.
    """
    if (origins.dim() != 3 or dirs.dim() != 3 or origins.shape[-1] != 3 or dirs.shape[-1] != 3
            or origins.shape[0] != dirs.shape[0] or origins.shape[1] not in (1, dirs.shape[1])):
        raise ValueError(f"cast_rays expects origins [C, P or 1, 3] and dirs [C, P, 3], got {tuple(origins.shape)} "
                         f"and {tuple(dirs.shape)}")
    if times.shape != origins.shape[:1]:
        raise ValueError(f"cast_rays expects one time per frame, times {tuple(times.shape)} vs C={origins.shape[0]}")
    C, P, _ = dirs.shape
    frames_per_chunk = max(1, _CHUNK_ELEMENTS // max(1, scene.num_objects * P))
    cast_chunk = _cast_chunk_culled if culled else _cast_chunk_dense
    parts = []
    for start in range(0, C, frames_per_chunk):
        sl = slice(start, start + frames_per_chunk)
        extra = {} if not culled else dict(active=None if active is None else active[sl],
                                               owner=None if owner is None else owner[sl])
        parts.append(cast_chunk(scene, origins[sl], dirs[sl], times[sl], surface, **extra))
    depth = torch.cat([p[0] for p in parts])
    object_id = torch.cat([p[1] for p in parts])
    if surface:
        canonical = torch.cat([p[2] for p in parts])
        normal = torch.cat([p[3] for p in parts])
    else:
        canonical = normal = torch.zeros(C, P, 3)
    return RayHits(depth=depth, object_id=object_id, canonical=canonical, normal=normal)


# -- appearance ---------------------------------------------------------------------------------------

def _hash01(cells: Tensor, seed: Tensor) -> Tensor:
    """Integer lattice cells [..., 3] long, seed [...] long -> pseudo-random values in [0, 1)."""
    h = cells[..., 0] * 73856093 ^ cells[..., 1] * 19349663 ^ cells[..., 2] * 83492791 ^ seed * 2654435761
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return (h & 0xFFFF).to(torch.float32) / 65536.0


def _value_noise(p: Tensor, seed: Tensor) -> Tensor:
    """Smooth 3D value noise in [0, 1]; p [N, 3], seed [N]."""
    base = torch.floor(p)
    frac = p - base
    w = frac * frac * (3 - 2 * frac)  # smoothstep: continuous gradient across cells
    cells = base.long()
    value = torch.zeros_like(p[:, 0])
    for corner in range(8):
        offset = torch.tensor([(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1])
        weight = torch.where(offset.bool(), w, 1 - w).prod(-1)
        value = value + weight * _hash01(cells + offset, seed)
    return value


def surface_albedo(scene: Scene, object_id: Tensor, canonical: Tensor) -> Tensor:
    """Solid textures on canonical coordinates (so texture moves and deforms with the object).

    object_id [N] (>= 0), canonical [N, 3] -> [N, 3] rgb in [0, 1].
    """
    kind = scene.texture_kind[object_id]
    freq = scene.texture_frequency[object_id][:, None]
    p = canonical * freq  # [N, 3] in texture cycles
    direction = scene.texture_direction[object_id]
    checker = (torch.floor(p).long().sum(-1) % 2).to(canonical.dtype)
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (p * direction).sum(-1))
    extent = scene.half_extents[object_id].norm(dim=-1).clamp_min(1e-6)
    gradient = (0.5 + 0.5 * (canonical * direction).sum(-1) / extent).clamp(0, 1)
    noise = torch.zeros_like(checker)
    noisy = (kind == NOISE).nonzero().squeeze(1)  # value noise is the costly texture: only where used
    if noisy.numel():
        seed, p_noisy = scene.texture_seed[object_id[noisy]], p[noisy]
        noise[noisy] = 0.65 * _value_noise(p_noisy, seed) + 0.35 * _value_noise(p_noisy * 2.7 + 11.0, seed + 7)
    mix = torch.where(kind == CHECKER, checker, torch.where(kind == STRIPES, stripes,
                      torch.where(kind == GRADIENT, gradient, torch.where(kind == NOISE, noise,
                                                                          torch.zeros_like(noise)))))
    mix = torch.where(kind == SOLID, torch.zeros_like(mix), mix)[:, None]
    return scene.color_a[object_id] * (1 - mix) + scene.color_b[object_id] * mix


def shade(scene: Scene, hits: RayHits) -> Tensor:
    """Lambertian shading (view independent, so all cameras agree): -> [C, P, 3]."""
    hit = hits.object_id >= 0
    safe_id = hits.object_id.clamp_min(0)
    albedo = surface_albedo(scene, safe_id.flatten(), hits.canonical.reshape(-1, 3)).reshape(hits.canonical.shape)
    lambert = (hits.normal * scene.light_direction).sum(-1, keepdim=True).clamp_min(0.0)
    # Background surfaces (room, sky) get flatter light: the sky has no sun side, walls stay readable.
    background = safe_id[..., None] < scene.num_background
    diffuse = torch.where(background, 0.5 * (1 - scene.ambient), 1 - scene.ambient)
    rgb = albedo * (scene.ambient + 0.1 * background + diffuse * lambert)
    return torch.where(hit[..., None], rgb, torch.zeros_like(rgb)).clamp(0.0, 1.0)


def render_views(scene: Scene, K: Tensor, world_T_cam: Tensor, times: Tensor, height: int, width: int,
                 pixel_samples: int = 1) -> RenderedViews:
    """Render C images, each the average of J sub-frame instants (motion blur when J > 1) and, with
    pixel_samples = n > 1, of an n x n grid of rays spread evenly over each pixel's area (a sensor pixel
    integrates its area; one ray through the centre point-samples the scene and aliases detail finer
    than a pixel).

    K [C, 3, 3], world_T_cam [C, J, 4, 4], times [C, J] -> RenderedViews; depth, ids and canonical points
    come from the pixel centre's ray at the middle sub-frame (J odd), the instant the frame is stamped with.
    """
    if pixel_samples < 1:
        raise ValueError(f"render_views: pixel_samples must be >= 1, got {pixel_samples}")
    if world_T_cam.dim() == 3:
        world_T_cam, times = world_T_cam[:, None], times[:, None]
    C, J = times.shape
    if world_T_cam.shape != (C, J, 4, 4) or K.shape != (C, 3, 3):
        raise ValueError(f"render_views expects K [C,3,3], world_T_cam [C,J,4,4], times [C,J]; got "
                         f"{tuple(K.shape)}, {tuple(world_T_cam.shape)}, {tuple(times.shape)}")
    centres = pixel_centers(height, width).reshape(1, -1, 2)
    K_all = K[:, None].expand(C, J, 3, 3).reshape(C * J, 3, 3)
    poses, instants = world_T_cam.reshape(C * J, 4, 4), times.reshape(C * J)

    def cast(uv: Tensor) -> RayHits:  # uv [1, HW, 2] pixel coordinates, the same for every camera instant
        origins, dirs = rays_through_pixels(K_all, poses, uv.expand(C * J, -1, -1))
        return cast_rays(scene, origins, dirs, instants)

    def colour(hits: RayHits) -> Tensor:  # -> [C, H, W, 3], the mean over the J sub-frame instants
        return shade(scene, hits).reshape(C, J, height, width, 3).mean(dim=1)

    hits = cast(centres)  # the geometry is always the centre ray's
    if pixel_samples == 1:
        rgb = colour(hits)
    else:  # the colour from the n x n sub-pixel rays alone
        steps = (torch.arange(pixel_samples, dtype=centres.dtype) + 0.5) / pixel_samples - 0.5  # px from the centre
        rgb = sum(colour(cast(centres + torch.stack([du, dv]))) for dv in steps for du in steps) / pixel_samples ** 2
    middle = J // 2
    pick = lambda x: x.reshape(C, J, *x.shape[1:])[:, middle]  # noqa: E731
    depth = pick(hits.depth).reshape(C, 1, height, width)
    return RenderedViews(
        rgb=rgb.permute(0, 3, 1, 2).contiguous(),
        depth=torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth)),
        object_id=pick(hits.object_id).reshape(C, height, width),
        canonical=pick(hits.canonical).reshape(C, height, width, 3),
    )


def visible_from(scene: Scene, points: Tensor, K: Tensor, world_T_cam: Tensor, times: Tensor,
                 height: int, width: int, owner: Tensor | None = None, rel_tolerance: float = 2e-3,
                 abs_tolerance: float = 2e-3) -> Tensor:
    """Is each world point unoccluded and inside the image of its frame's camera?

    points [C, P, 3] (frame c's points at instant times[c]), K [C, 3, 3], world_T_cam [C, 4, 4],
    owner [C, P] optional object id of each point (a speed-up only) -> [C, P] bool. A ray is cast
    exactly through each point; nothing may be hit before it.
    """
    from dgslrm_ros.data.geometry import project  # local: keeps the public import list short

    uv, z = project(points, K, world_T_cam)
    inside = (z > NEAR) & (uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0) & (uv[..., 1] < height)
    origins = world_T_cam[:, None, :3, 3]  # [C, 1, 3]
    dirs = (points - origins) / z.clamp_min(NEAR)[..., None]  # camera z = 1, so the point is at parameter z
    hits = cast_rays(scene, origins, dirs, times, surface=False, active=inside, owner=owner)
    return inside & (hits.depth >= z * (1 - rel_tolerance) - abs_tolerance)
