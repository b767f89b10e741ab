"""Dense 3D scene flow and visibility: could a wrong transform, frame or tolerance slip through?"""
from __future__ import annotations

import torch

from dgslrm_ros.data.dataset import make_window_sample, plan_window
from dgslrm_ros.data.geometry import pixel_centers, project, rays_through_pixels
from dgslrm_ros.data.raycast import cast_rays


def _input_rays(sample, frame: int, uv):
    K = sample.K[frame][None]
    pose = sample.world_T_cam[frame][None]
    return rays_through_pixels(K, pose, uv[None])


def test_flow_points_reproject_onto_the_same_material_point(dynamic_samples, dynamic_config):
    """Project the flow point of keyframe pixel p into frame n: casting through that exact spot must
    hit the same object at the same canonical coordinate; the nearest pixel centre must mostly see
    the same object."""
    checked = 0
    for sample in dynamic_samples:
        plan = plan_window(int(sample.scene_id), dynamic_config)
        H, W = sample.frames.shape[-2:]
        T = sample.frames.shape[0]
        times = sample.timestamps
        # Rest (canonical) coordinates of every keyframe pixel, from a cast at the keyframe instant.
        for k, frame in enumerate(sample.keyframe_index.tolist()):
            uv_kf = pixel_centers(H, W).reshape(-1, 2)
            o, d = _input_rays(sample, frame, uv_kf)
            kf_hits = cast_rays(plan.setup.scene, o, d, times[frame][None])
            for n in range(T):
                visible = sample.keyframe_visible[k, n].reshape(-1)
                if not visible.any():
                    continue
                points = sample.keyframe_points[k, n].reshape(-1, 3)[visible]
                uv, z = project(points[None], sample.K[n][None], sample.world_T_cam[n][None])
                o, d = _input_rays(sample, n, uv[0])
                hits = cast_rays(plan.setup.scene, o, d, times[n][None])
                same_object = hits.object_id[0] == kf_hits.object_id[0, visible]
                assert same_object.float().mean() > 0.995, f"frame {n}: visible points land on other objects"
                gap = (hits.canonical[0] - kf_hits.canonical[0, visible]).norm(dim=-1)[same_object]
                # Exact up to float32 except where the depth tolerance lets a grazing neighbour win.
                assert (gap < 1e-4).float().mean() > 0.99, f"frame {n}: canonical points differ"
                assert gap.max() < 1e-2, f"frame {n}: canonical mismatch up to {gap.max():.4f} m"
                # Nearest pixel centre: same object for nearly all (silhouette pixels may differ).
                col = uv[0, :, 0].floor().long().clamp(0, W - 1)
                row = uv[0, :, 1].floor().long().clamp(0, H - 1)
                o, d = _input_rays(sample, n, torch.stack([col, row], -1).float() + 0.5)
                pixel_hits = cast_rays(plan.setup.scene, o, d, times[n][None])
                agree = (pixel_hits.object_id[0] == kf_hits.object_id[0, visible]).float().mean()
                assert agree > 0.9, f"frame {n}: only {agree:.2f} of nearest pixels see the tracked object"
                checked += int(visible.sum())
    assert checked > 5000


def test_flow_is_not_trivial_in_dynamic_scenes(dynamic_samples):
    """Guards the test above against passing on frozen scenes."""
    sample = dynamic_samples[0]
    kf = sample.keyframe_points  # [Kf, T, H, W, 3]
    motion = (kf[:, -1] - kf[:, 0]).norm(dim=-1)
    assert (motion > 0.02).float().mean() > 0.05


def test_static_scene_has_zero_flow(static_config):
    sample = make_window_sample(4, static_config)
    kf = sample.keyframe_points
    assert torch.allclose(kf, kf[:, :1].expand_as(kf), atol=1e-5)
    assert (sample.keyframe_visible.float().mean() > 0.5)


def test_depth_is_the_z_of_the_keyframe_point(dynamic_samples):
    for sample in dynamic_samples:
        for k, frame in enumerate(sample.keyframe_index.tolist()):
            depth = sample.depth[frame, 0]  # [H, W]
            points = sample.keyframe_points[k, frame]  # [H, W, 3] at their own instant
            pose = sample.world_T_cam[frame]
            cam = (points - pose[:3, 3]) @ pose[:3, :3]
            assert torch.allclose(cam[..., 2], depth, rtol=1e-4, atol=1e-4)
            # ... and the point projects back onto its own pixel centre.
            uv, _ = project(points.reshape(1, -1, 3), sample.K[frame][None], pose[None])
            H, W = depth.shape
            assert torch.allclose(uv[0], pixel_centers(H, W).reshape(-1, 2), atol=1e-2)


def test_keyframe_pixels_are_visible_at_their_own_instant(dynamic_samples):
    for sample in dynamic_samples:
        for k, frame in enumerate(sample.keyframe_index.tolist()):
            assert sample.keyframe_visible[k, frame].all()


def test_hidden_points_are_behind_a_surface_or_outside(dynamic_samples, dynamic_config):
    """Points marked hidden inside the image must have something in front of them."""
    hidden_inside = 0
    for sample in dynamic_samples:
        plan = plan_window(int(sample.scene_id), dynamic_config)
        H, W = sample.frames.shape[-2:]
        for n in range(sample.frames.shape[0]):
            points = sample.keyframe_points[:, n].reshape(1, -1, 3)
            hidden = ~sample.keyframe_visible[:, n].reshape(-1)
            uv, z = project(points, sample.K[n][None], sample.world_T_cam[n][None])
            inside = (uv[0, :, 0] >= 0) & (uv[0, :, 0] < W) & (uv[0, :, 1] >= 0) & (uv[0, :, 1] < H) & (z[0] > 0.1)
            check = hidden & inside
            if not check.any():
                continue
            o, d = _input_rays(sample, n, uv[0, check])
            hits = cast_rays(plan.setup.scene, o, d, sample.timestamps[n][None])
            assert (hits.depth[0] < z[0, check] - 1e-3).all()
            hidden_inside += int(check.sum())
    assert hidden_inside > 0, "dynamic windows should contain occlusions"
