"""The ray caster against closed-form answers and against its dense reference."""
from __future__ import annotations

import math

import numpy as np
import torch

from dgslrm_ros.data.geometry import look_at, pixel_centers, rays_through_pixels, intrinsics_from_fov
from dgslrm_ros.data.raycast import bounding_radii, cast_rays, render_views
from dgslrm_ros.data.scenes import BOX, CYLINDER, PLANE, ROOM, SKY, SPHERE, SceneConfig, sample_scene
from dgslrm_ros.data.sequence import make_setup


def _single_object_scene(kind: int, half_extent, centre, *, stretch=(0.0, 0.0, 0.0)):
    """A real sampled scene, edited down to a room plus one known object at rest (no motion)."""
    scene = sample_scene(np.random.default_rng(0), SceneConfig(num_objects=(1, 1), room_probability=1.0,
                                                               static_probability=1.0))
    obj = scene.num_background
    scene.kinds[obj] = kind
    scene.half_extents[obj] = torch.tensor(half_extent)
    scene.centre0[obj] = torch.tensor(centre)
    scene.rotation0[obj] = torch.eye(3)
    scene.stretch_amplitude[obj] = torch.tensor(stretch)
    scene.stretch_frequency[obj] = 0.5
    scene.stretch_phase[obj] = torch.full((3,), math.pi / 2)  # stretch = 1 + a at t = 0
    return scene, obj


def _centre_ray(position, target):
    pose = look_at(torch.tensor(position), torch.tensor(target))[None]
    K = intrinsics_from_fov(60.0, 33, 33)[None]
    origins, dirs = rays_through_pixels(K, pose, pixel_centers(33, 33).reshape(1, -1, 2))
    return origins, dirs, 16 * 33 + 16  # the middle pixel's ray goes straight along the optical axis


def test_sphere_depth_and_canonical_point_closed_form():
    scene, obj = _single_object_scene(SPHERE, [0.5, 0.5, 0.5], [0.0, 0.0, 1.0])
    origins, dirs, centre = _centre_ray([3.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    hits = cast_rays(scene, origins, dirs, torch.zeros(1))
    assert int(hits.object_id[0, centre]) == obj
    assert abs(float(hits.depth[0, centre]) - 2.5) < 1e-5  # camera 3 m from centre, radius 0.5
    assert torch.allclose(hits.canonical[0, centre], torch.tensor([0.5, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(hits.normal[0, centre], torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)


def test_stretched_box_and_cylinder_depths():
    # Box stretched by 1.5 along x at t = 0: its +x face is 0.4 * 1.5 = 0.6 m from the centre.
    scene, obj = _single_object_scene(BOX, [0.4, 0.3, 0.3], [0.0, 0.0, 1.0], stretch=(0.5, 0.0, 0.0))
    origins, dirs, centre = _centre_ray([3.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    hits = cast_rays(scene, origins, dirs, torch.zeros(1))
    assert abs(float(hits.depth[0, centre]) - 2.4) < 1e-5
    # The hit is on the rest shape's face: canonical x = rest half extent, not the stretched one.
    assert abs(float(hits.canonical[0, centre, 0]) - 0.4) < 1e-5
    # Cylinder (axis = world z) seen from the side: radius 0.25.
    scene, obj = _single_object_scene(CYLINDER, [0.25, 0.25, 0.5], [0.0, 0.0, 1.0])
    hits = cast_rays(scene, origins, dirs, torch.zeros(1))
    assert abs(float(hits.depth[0, centre]) - 2.75) < 1e-5
    # ... and from above: the cap at z = 1.5.
    origins, dirs, centre = _centre_ray([0.0, 0.01, 3.0], [0.0, 0.0, 0.0])
    hits = cast_rays(scene, origins, dirs, torch.zeros(1))
    assert int(hits.object_id[0, centre]) == obj
    assert abs(float(hits.depth[0, centre]) - 1.5) < 1e-3


def test_hits_lie_on_the_unit_surfaces_and_match_the_dense_reference():
    setup = make_setup(5, num_frames=6, height=24, width=24, fps=10.0, num_views=2,
                       config=SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=0.6,
                                          room_probability=0.5))
    times = torch.tensor([0.0, 0.25, 0.5])
    poses = setup.rig.poses(times)[0]
    K = setup.rig.K[0].expand(3, 3, 3)
    origins, dirs = rays_through_pixels(K, poses, pixel_centers(24, 24).reshape(1, -1, 2).expand(3, -1, -1))
    fast = cast_rays(setup.scene, origins, dirs, times)
    dense = cast_rays(setup.scene, origins, dirs, times, culled=False)
    assert torch.equal(fast.object_id, dense.object_id)
    assert torch.allclose(fast.depth, dense.depth, rtol=1e-5, atol=1e-5)
    assert torch.allclose(fast.canonical, dense.canonical, atol=1e-4)
    ids = fast.object_id.flatten()
    assert (ids >= 0).all(), "the background must close every ray"
    q = fast.canonical.reshape(-1, 3) / setup.scene.half_extents[ids]
    kinds = setup.scene.kinds[ids]
    sphere = (kinds == SPHERE) | (kinds == SKY)
    assert torch.allclose(q[sphere].norm(dim=-1), torch.ones(int(sphere.sum())), atol=1e-3)
    box = (kinds == BOX) | (kinds == ROOM)
    assert torch.allclose(q[box].abs().amax(-1), torch.ones(int(box.sum())), atol=1e-3)
    plane = kinds == PLANE
    assert q[plane, 2].abs().max() < 1e-3 if plane.any() else True
    # Depth is z-depth: the hit point's camera-frame z equals the ray parameter.
    points = origins + fast.depth[..., None] * dirs
    cam_z = ((points - poses[:, None, :3, 3]) * poses[:, None, :3, 2]).sum(-1)
    assert torch.allclose(cam_z, fast.depth, rtol=1e-4)


def test_bounding_radii_hold_every_hit_of_their_object():
    setup = make_setup(7, num_frames=10, height=24, width=24, fps=10.0, num_views=1,
                       config=SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=1.0))
    times = torch.linspace(0, 1, 5)
    rendered = render_views(setup.scene, setup.rig.K[0].expand(5, 3, 3), setup.rig.poses(times)[0], times, 24, 24)
    ids = rendered.object_id.flatten()
    canonical = rendered.canonical.reshape(-1, 3)
    stretch = setup.scene.states(times).stretch  # [O, 5, 3]
    frame = torch.arange(5).repeat_interleave(24 * 24)
    local = (canonical * stretch[ids, frame]).norm(dim=-1)
    radii = bounding_radii(setup.scene)[ids]
    assert (local <= radii + 1e-4).all()


def test_every_texture_varies_over_the_surface_except_solid():
    from dgslrm_ros.data.raycast import surface_albedo
    from dgslrm_ros.data.scenes import CHECKER, GRADIENT, NOISE, SOLID, STRIPES

    scene = sample_scene(np.random.default_rng(1), SceneConfig(num_objects=(5, 5)))
    points = torch.rand(400, 3, generator=torch.Generator().manual_seed(0)) * 0.8 - 0.4  # canonical, metres
    for obj, texture in enumerate([SOLID, CHECKER, STRIPES, GRADIENT, NOISE]):
        obj += scene.num_background
        scene.texture_kind[obj] = texture
        scene.color_a[obj] = torch.tensor([0.9, 0.1, 0.1])
        scene.color_b[obj] = torch.tensor([0.1, 0.1, 0.9])
        scene.texture_frequency[obj] = 4.0
        albedo = surface_albedo(scene, torch.full((400,), obj), points)
        assert ((albedo >= 0) & (albedo <= 1)).all()
        spread = float(albedo[:, 0].std())
        if texture == SOLID:
            assert torch.allclose(albedo, albedo[:1].expand_as(albedo))
        else:
            assert spread > 0.05, f"texture {texture} is flat"
        # Deterministic function of the canonical point (so it moves with the object).
        assert torch.equal(albedo, surface_albedo(scene, torch.full((400,), obj), points))
