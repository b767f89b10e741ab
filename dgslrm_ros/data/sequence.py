"""A whole synthetic multi-camera video with ground truth: the unit the bag writer and the demo use.

Seeds: a seed fixes scene, camera rig and every image. `TRAIN_SEED_START` and `EVAL_SEED_START`
(in dataset.py) split the seed space so evaluation never sees a training scene.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dgslrm_ros.data.camera_paths import CameraRig, sample_rig
from dgslrm_ros.data.raycast import RenderedViews, render_views, visible_from
from dgslrm_ros.data.scenes import Scene, SceneConfig, sample_scene


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the generator on one torch thread, restoring the caller's setting afterwards.

    Its work is thousands of small memory-bound elementwise ops: a second intra-op thread gains
    little, and on a shared machine every op waits for a descheduled thread (measured 6-12x slower
    in-process with 2 threads under load). Scale out with loader workers instead.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class SyntheticSequence:
    scene_id: int
    timestamps: Tensor     # [T] seconds, from 0 at fps
    frames: Tensor         # [V, T, 3, H, W] float in [0,1]; camera 0 is the input camera, 1.. held-out views
    depth: Tensor          # [V, T, 1, H, W] z-depth
    K: Tensor              # [V, 3, 3] (constant per camera)
    world_T_cam: Tensor    # [V, T, 4, 4]
    track_points: Tensor   # [M, T, 3] world positions of a grid of surface points seen by camera 0 at frame 0
    track_visible: Tensor  # [M, T] bool, unoccluded in camera 0 at frame n
    # [S, T, H, W, 3] world positions at every frame of the surface point each camera-0 pixel sees at frame
    # pixel_track_frames[s] (`generate_sequence(pixel_track_frames=...)`; None when none was asked for)
    pixel_tracks: Tensor | None = None
    pixel_track_frames: tuple[int, ...] = ()

    def pixel_tracks_seeded_at(self, frame: int) -> Tensor | None:
        """[T, H, W, 3] the pixel tracks seeded on `frame`; None when that frame was not asked for."""
        if self.pixel_tracks is None or frame not in self.pixel_track_frames:
            return None
        return self.pixel_tracks[self.pixel_track_frames.index(frame)]


@dataclass
class SceneSetup:
    """A drawn scene with its camera rig, before anything is rendered."""

    scene: Scene
    rig: CameraRig
    height: int
    width: int
    fps: float
    pixel_samples: int = 1  # rays per pixel side, for the colour (raycast.render_views)


def make_setup(seed: int, *, num_frames: int, height: int, width: int, fps: float, num_views: int,
               config: SceneConfig | None = None, pixel_samples: int = 1) -> SceneSetup:
    """Draw scene and cameras for `seed`; the rig's paths are scaled to a window of num_frames at fps."""
    if num_frames < 1 or height < 1 or width < 1 or fps <= 0:
        raise ValueError(f"need num_frames, height, width >= 1 and fps > 0; got {num_frames}, {height}, {width}, {fps}")
    config = config or SceneConfig()
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, config)
    rig = sample_rig(rng, config.camera, num_views=num_views, height=height, width=width,
                     duration=num_frames / fps, scene_centre=scene.centre, scene_extent=scene.extent)
    return SceneSetup(scene=scene, rig=rig, height=height, width=width, fps=fps, pixel_samples=pixel_samples)


def exposure_times(setup: SceneSetup, times: Tensor) -> Tensor:
    """times [N] -> [N, J] sub-frame instants centred on each time (J = 1 without motion blur)."""
    J = setup.rig.blur_subframes
    if J == 1:
        return times[:, None]
    spread = torch.linspace(-0.5, 0.5, J) * setup.rig.shutter / setup.fps
    return times[:, None] + spread[None, :]


def render_camera(setup: SceneSetup, view: Tensor, times: Tensor) -> tuple[RenderedViews, Tensor]:
    """Render camera `view[i]` at `times[i]` (view [N] long, times [N]) -> (views, world_T_cam [N, 4, 4])."""
    sub_times = exposure_times(setup, times)  # [N, J]
    N, J = sub_times.shape
    all_poses = setup.rig.poses(sub_times.flatten())  # [V, N*J, 4, 4]: every camera at every instant
    index = torch.arange(N * J)
    poses = all_poses[view.repeat_interleave(J), index].reshape(N, J, 4, 4)
    rendered = render_views(setup.scene, setup.rig.K[view], poses, sub_times, setup.height, setup.width,
                            setup.pixel_samples)
    return rendered, poses[:, J // 2]


def surface_flow(setup: SceneSetup, rendered: RenderedViews, times: Tensor) -> Tensor:
    """World positions at `times` [T] of the surface points seen in each rendered pixel.

    rendered with C images -> [C, T, H, W, 3]. Pixels that see nothing (cannot happen inside a room
    or under the sky) are NaN.
    """
    C, H, W = rendered.object_id.shape
    ids = rendered.object_id.reshape(-1)
    hit = ids >= 0
    points = setup.scene.material_points(ids.clamp_min(0), rendered.canonical.reshape(-1, 3), times)  # [CHW, T, 3]
    points = torch.where(hit[:, None, None], points, torch.full_like(points, float("nan")))
    return points.reshape(C, H, W, len(times), 3).permute(0, 3, 1, 2, 4).contiguous()


def visibility_over_time(setup: SceneSetup, points: Tensor, view: int, times: Tensor,
                         owner: Tensor | None = None) -> Tensor:
    """points [..., T, 3] (positions at each of `times` [T]) -> [..., T] bool visible in camera `view`.

    owner [...] optional object id of each point (speeds up the occlusion test).
    """
    T = len(times)
    lead = points.shape[:-2]
    per_frame = points.reshape(-1, T, 3).transpose(0, 1)  # [T, P, 3]
    finite = torch.isfinite(per_frame).all(-1)
    poses = setup.rig.poses(times)[view]  # [T, 4, 4]
    K = setup.rig.K[view].expand(T, 3, 3)
    owner_per_frame = None if owner is None else owner.reshape(1, -1).expand(T, -1)
    visible = visible_from(setup.scene, torch.nan_to_num(per_frame), K, poses, times, setup.height, setup.width,
                           owner=owner_per_frame)
    return (visible & finite).transpose(0, 1).reshape(*lead, T)


def generate_sequence(seed: int, num_frames: int = 24, height: int = 64, width: int = 64, fps: float = 10.0,
                      num_views: int = 4, track_grid: int = 8, config: SceneConfig | None = None,
                      pixel_track_frames: Sequence[int] = ()) -> SyntheticSequence:
    """Render all cameras at all frames, plus ground-truth tracks of a pixel grid of camera 0 at frame 0 and,
    for each of `pixel_track_frames`, of every camera-0 pixel at that frame (what a tracker seeded there
    is scored against; no visibility, which would cost an occlusion test per point and frame)."""
    if track_grid < 1:
        raise ValueError(f"track_grid must be >= 1 pixel, got {track_grid}")
    frames = tuple(int(f) for f in pixel_track_frames)
    if any(not 0 <= f < num_frames for f in frames):
        raise ValueError(f"pixel_track_frames must lie in [0, {num_frames}), got {list(frames)}")
    with single_threaded():
        return _generate_sequence(seed, num_frames, height, width, fps, num_views, track_grid, config, frames)


def _generate_sequence(seed: int, num_frames: int, height: int, width: int, fps: float, num_views: int,
                       track_grid: int, config: SceneConfig | None,
                       pixel_track_frames: tuple[int, ...] = ()) -> SyntheticSequence:
    setup = make_setup(seed, num_frames=num_frames, height=height, width=width, fps=fps, num_views=num_views,
                       config=config)
    timestamps = torch.arange(num_frames, dtype=torch.float32) / fps
    view = torch.arange(num_views).repeat_interleave(num_frames)  # [V*T]
    rendered, poses = render_camera(setup, view, timestamps.repeat(num_views))

    # Track seeds: pixel grid of camera 0, frame 0 (first image of the render order).
    rows = torch.arange(track_grid // 2, height, track_grid)
    cols = torch.arange(track_grid // 2, width, track_grid)
    grid = RenderedViews(rgb=rendered.rgb[:1], depth=rendered.depth[:1],
                         object_id=rendered.object_id[:1][:, rows][:, :, cols],
                         canonical=rendered.canonical[:1][:, rows][:, :, cols])
    tracks = surface_flow(setup, grid, timestamps)[0]  # [T, h, w, 3]
    track_points = tracks.permute(1, 2, 0, 3).reshape(-1, num_frames, 3)  # [M, T, 3]
    track_visible = visibility_over_time(setup, track_points, 0, timestamps, owner=grid.object_id.reshape(-1))
    pixel_tracks = None
    if pixel_track_frames:
        seeds = list(pixel_track_frames)  # camera 0's images are the first num_frames of the render order
        seen = RenderedViews(rgb=rendered.rgb[seeds], depth=rendered.depth[seeds], object_id=rendered.object_id[seeds],
                             canonical=rendered.canonical[seeds])
        pixel_tracks = surface_flow(setup, seen, timestamps)  # [S, T, H, W, 3]

    H, W = height, width
    return SyntheticSequence(
        scene_id=seed,
        timestamps=timestamps,
        frames=rendered.rgb.reshape(num_views, num_frames, 3, H, W),
        depth=rendered.depth.reshape(num_views, num_frames, 1, H, W),
        K=setup.rig.K.clone(),
        world_T_cam=poses.reshape(num_views, num_frames, 4, 4),
        track_points=track_points,
        track_visible=track_visible,
        pixel_tracks=pixel_tracks,
        pixel_track_frames=pixel_track_frames,
    )
