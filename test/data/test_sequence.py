"""SyntheticSequence: the multi-camera video other modules (bag writer, demo) consume."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.dataset import WindowDatasetConfig, make_window_sample
from dgslrm_ros.data.geometry import pixel_centers, project, rays_through_pixels
from dgslrm_ros.data.raycast import cast_rays, visible_from
from dgslrm_ros.data.scenes import SceneConfig, scene_preset
from dgslrm_ros.data.sequence import generate_sequence, make_setup

NO_BLUR = dataclasses.replace(scene_preset("dynamic"), camera=CameraPathConfig(motion_blur_probability=0.0))


def test_shapes_ranges_and_determinism():
    a = generate_sequence(21, num_frames=8, height=32, width=40, num_views=3, track_grid=8)
    b = generate_sequence(21, num_frames=8, height=32, width=40, num_views=3, track_grid=8)
    c = generate_sequence(22, num_frames=8, height=32, width=40, num_views=3, track_grid=8)
    assert a.frames.shape == (3, 8, 3, 32, 40) and a.depth.shape == (3, 8, 1, 32, 40)
    assert a.K.shape == (3, 3, 3) and a.world_T_cam.shape == (3, 8, 4, 4)
    assert a.track_points.shape == (4 * 5, 8, 3) and a.track_visible.shape == (20, 8)
    assert a.track_visible.dtype == torch.bool
    assert torch.allclose(a.timestamps, torch.arange(8) / 10.0)
    assert a.frames.min() >= 0 and a.frames.max() <= 1 and (a.depth > 0).all()
    for field in ("frames", "depth", "K", "world_T_cam", "track_points", "track_visible", "timestamps"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.std() > 0.05, "images should carry texture, not a flat colour"


def test_tracks_equal_keyframe_points_of_the_first_keyframe():
    seq = generate_sequence(8, num_frames=8, height=32, width=32, num_views=4, track_grid=8, config=NO_BLUR)
    config = WindowDatasetConfig(height=32, width=32, window_frames=8, random_input_view=False, scene=NO_BLUR)
    sample = make_window_sample(8, config)
    grid = torch.arange(4, 32, 8)
    kf = sample.keyframe_points[0][:, grid][:, :, grid]  # [T, 4, 4, 3]
    assert torch.allclose(seq.track_points, kf.permute(1, 2, 0, 3).reshape(16, 8, 3), atol=1e-6)
    vis = sample.keyframe_visible[0][:, grid][:, :, grid]
    assert torch.equal(seq.track_visible, vis.permute(1, 2, 0).reshape(16, 8))
    assert torch.allclose(seq.frames[0], sample.frames) and torch.allclose(seq.depth[0], sample.depth)


def test_pixel_tracks_start_on_the_seed_frame_depth_and_extend_the_frame_zero_grid():
    """Ground truth seeded on every pixel of a later frame (what `dgslrm demo` scores a window's tracks
    against): at its seed frame each track is the pixel's ray at the rendered depth; seeded on frame 0 it is
    the frame-0 grid's track_points at those pixels; points move exactly where the grid's do."""
    seq = generate_sequence(5, num_frames=6, height=32, width=32, num_views=2, track_grid=8, config=NO_BLUR,
                            pixel_track_frames=(0, 3))
    assert seq.pixel_tracks.shape == (2, 6, 32, 32, 3) and seq.pixel_track_frames == (0, 3)
    assert torch.equal(seq.pixel_tracks_seeded_at(3), seq.pixel_tracks[1]) and seq.pixel_tracks_seeded_at(1) is None
    grid = torch.arange(4, 32, 8)
    at_grid = seq.pixel_tracks[0][:, grid][:, :, grid]  # [T, 4, 4, 3]
    assert torch.allclose(at_grid.permute(1, 2, 0, 3).reshape(16, 6, 3), seq.track_points, atol=1e-6)
    o, d = rays_through_pixels(seq.K[:1], seq.world_T_cam[0, 3][None], pixel_centers(32, 32).reshape(1, -1, 2))
    seen = (o + seq.depth[0, 3].reshape(1, -1, 1) * d).reshape(32, 32, 3)
    assert torch.allclose(seq.pixel_tracks[1, 3], seen, atol=1e-4)
    travel = (seq.pixel_tracks[1] - seq.pixel_tracks[1, 3]).norm(dim=-1).amax(0)  # [H, W]
    assert (travel > 0.01).any() and (travel < 1e-6).any(), "some pixels see moving objects, others the room"
    with pytest.raises(ValueError, match="pixel_track_frames"):
        generate_sequence(5, num_frames=6, height=32, width=32, num_views=2, pixel_track_frames=(6,))


def test_held_out_views_see_the_same_points():
    """Unproject camera 0's depth, project into camera v at the same instant: where visible there,
    a ray cast through that spot of camera v meets the same point and object, and camera v's own
    depth map agrees around that pixel."""
    seq = generate_sequence(13, num_frames=4, height=32, width=32, num_views=4, config=NO_BLUR)
    setup = make_setup(13, num_frames=4, height=32, width=32, fps=10.0, num_views=4, config=NO_BLUR)
    uv0 = pixel_centers(32, 32).reshape(1, -1, 2)
    total = 0
    for n in range(4):
        time = seq.timestamps[n][None]
        o, d = rays_through_pixels(seq.K[:1], seq.world_T_cam[0, n][None], uv0)
        points = o + seq.depth[0, n].reshape(1, -1, 1) * d  # [1, P, 3]
        ids0 = cast_rays(setup.scene, o, d, time).object_id
        for v in range(1, 4):
            K, pose = seq.K[v][None], seq.world_T_cam[v, n][None]
            visible = visible_from(setup.scene, points, K, pose, time, 32, 32)[0]
            if visible.sum() < 20:
                continue
            uv, z = project(points, K, pose)
            o_v, d_v = rays_through_pixels(K, pose, uv[:, visible])
            hits = cast_rays(setup.scene, o_v, d_v, time)
            assert (hits.object_id[0] == ids0[0, visible]).float().mean() > 0.99, f"view {v} frame {n}"
            rel = (hits.depth[0] - z[0, visible]).abs() / z[0, visible]
            assert (rel < 1e-3).float().mean() > 0.99, f"view {v} frame {n}"
            # Camera v's rendered depth map, interpolated in inverse depth (exact on planes, so only
            # silhouettes disagree): the sequence's own images must agree with the geometry.
            grid = (uv[:, visible] / 16.0 - 1.0)[:, None]  # [1, 1, Pv, 2] in [-1, 1], pixel-centre aligned
            inverse = torch.nn.functional.grid_sample(1.0 / seq.depth[v, n][None], grid, align_corners=False,
                                                      padding_mode="border")[0, 0, 0]
            rel_map = (inverse * z[0, visible] - 1.0).abs()
            assert rel_map.median() < 1e-3 and (rel_map < 0.05).float().mean() > 0.7, f"view {v} frame {n}"
            total += int(visible.sum())
    assert total > 1000, "held-out cameras should overlap the input camera's view"


def _rigid_fit_residual(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max residual of the best rigid transform a -> b (Kabsch), points [P, 3]."""
    a0, b0 = a - a.mean(0), b - b.mean(0)
    u, _, vt = torch.linalg.svd(a0.double().T @ b0.double())
    sign = torch.sign(torch.linalg.det(u @ vt))
    rotation = u @ torch.diag(torch.tensor([1.0, 1.0, float(sign)], dtype=torch.float64)) @ vt
    return float((a0.double() @ rotation - b0.double()).norm(dim=-1).max())


def test_nonrigid_objects_deform_and_rigid_ones_do_not():
    setup = make_setup(2, num_frames=10, height=16, width=16, fps=10.0, num_views=1,
                       config=SceneConfig(static_probability=0.0, moving_probability=1.0, nonrigid_probability=0.5))
    scene = setup.scene
    nonrigid = scene.nonrigid.nonzero().flatten().tolist()
    rigid = [o for o in range(scene.num_background, scene.num_objects) if o not in nonrigid]
    assert nonrigid and rigid, "seed 2 should hold both kinds; pick another seed if the generator changed"
    times = torch.tensor([0.0, 0.5, 1.0])
    canonical = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * 0.2
    for obj, deforms in [(o, True) for o in nonrigid] + [(o, False) for o in rigid]:
        world = scene.material_points(torch.full((200,), obj), canonical, times)  # [200, 3, 3]
        worst = max(_rigid_fit_residual(world[:, 0], world[:, i]) for i in (1, 2))
        if deforms:
            assert worst > 0.01, f"object {obj} should deform"
        else:
            assert worst < 1e-4, f"object {obj} should move rigidly"
