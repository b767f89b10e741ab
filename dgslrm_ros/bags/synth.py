"""Synthetic dynamic scenes -> ROS 2 bags with ground truth (`dgslrm synth`).

Per stamp n the bag holds the input camera (`image` rgb8, `camera_info`, `camera_pose`), every
held-out view k >= 1 (`gt/views/<k>/image`, `gt/views/<k>/pose`, `gt/views/<k>/camera_info`: the
generator draws per-camera intrinsics, so each view carries its own) and `gt/trajectories`: all
samples of the grid tracks from the first stamp up to n (width n + 1, t <= 0 relative to stamp n).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dgslrm_ros.bags import topics
from dgslrm_ros.bags.writer import BagWriter
from dgslrm_ros.convert.camera_info import library_to_opencv_K
from dgslrm_ros.convert.image import frames_to_rgb8
from dgslrm_ros.convert.pointcloud import pack_trajectories

# 2023-11-14T22:13:20Z: a fixed, non-zero start so bags are reproducible and no stamp is 0
# (ROS tools read time 0 as "unset" / "latest").
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


class SequenceLike(Protocol):
    """`dgslrm_ros.data.sequence.SyntheticSequence` (torch tensors or numpy arrays)."""

    scene_id: int
    timestamps: Any  # [T]
    frames: Any  # [V, T, 3, H, W] float in [0, 1]
    K: Any  # [V, 3, 3]
    world_T_cam: Any  # [V, T, 4, 4]
    track_points: Any  # [M, T, 3]
    track_visible: Any  # [M, T]


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def sequence_stamps_ns(timestamps: Any, start_ns: int = DEFAULT_START_NS) -> np.ndarray:
    """timestamps [T] s -> int64 stamps [T] ns, rounded to the microsecond.

    The generator's float32 times carry ~1e-7 s of noise (0.1 s is 0.10000000149); rounding to 1 us
    keeps the stamps the exact multiples of the frame period a camera driver would publish.
    """
    seconds = _numpy(timestamps).astype(np.float64)
    if seconds.ndim != 1 or not np.all(np.diff(seconds) > 0):
        raise ValueError(f"timestamps must be a strictly increasing [T] array, got {seconds}")
    return start_ns + np.rint(seconds * 1e6).astype(np.int64) * 1000


def write_sequence_bag(sequence: SequenceLike, path: str | Path, *, start_ns: int = DEFAULT_START_NS,
                       storage: str = "mcap", compress: bool = False) -> Path:
    """Write one sequence as a bag directory at `path` (which must not exist); returns the path."""
    frames = _numpy(sequence.frames)
    K = library_to_opencv_K(_numpy(sequence.K))  # what CameraInfo carries
    poses = _numpy(sequence.world_T_cam).astype(np.float64)
    tracks = _numpy(sequence.track_points).astype(np.float32)
    visible = _numpy(sequence.track_visible).astype(np.float32)
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames: expected [V, T, 3, H, W], got {frames.shape}")
    V, T, _, H, W = frames.shape
    if K.shape != (V, 3, 3) or poses.shape != (V, T, 4, 4):
        raise ValueError(f"K / world_T_cam: expected [{V}, 3, 3] / [{V}, {T}, 4, 4], got {K.shape} / {poses.shape}")
    if tracks.ndim != 3 or tracks.shape[1:] != (T, 3) or visible.shape != tracks.shape[:2]:
        raise ValueError(f"track_points / track_visible: expected [M, {T}, 3] / [M, {T}], got "
                         f"{tracks.shape} / {visible.shape}")
    stamps = sequence_stamps_ns(sequence.timestamps, start_ns)
    if stamps.shape != (T,):
        raise ValueError(f"timestamps: expected [{T}], got {stamps.shape}")
    rgb = frames_to_rgb8(frames)  # [V, T, H, W, 3]
    track_ids = np.arange(tracks.shape[0], dtype=np.uint32)
    path = Path(path)
    with BagWriter(path, storage=storage, compress=compress) as bag:
        for n, stamp in enumerate(int(s) for s in stamps):
            bag.write_camera_info(topics.CAMERA_INFO, stamp, K[0], W, H, topics.CAMERA_FRAME)
            bag.write_pose(topics.CAMERA_POSE, stamp, poses[0, n], topics.WORLD_FRAME)
            bag.write_image(topics.IMAGE, stamp, rgb[0, n], topics.CAMERA_FRAME)
            for k in range(1, V):
                frame_id = f"gt_view_{k}_optical"
                bag.write_camera_info(topics.gt_view_camera_info(k), stamp, K[k], W, H, frame_id)
                bag.write_pose(topics.gt_view_pose(k), stamp, poses[k, n], topics.WORLD_FRAME)
                bag.write_image(topics.gt_view_image(k), stamp, rgb[k, n], frame_id)
            t = ((stamps[: n + 1] - stamp) / 1e9).astype(np.float32)
            cloud = pack_trajectories(tracks[:, : n + 1], t, track_ids, visible[:, : n + 1])
            bag.write_pointcloud(topics.GT_TRAJECTORIES, stamp, cloud, topics.WORLD_FRAME)
    return path


def synth_scenes(out_dir: str | Path, scenes: int = 4, seed: int = 0, frames: int = 24, size: int = 64,
                 fps: float = 10.0, views: int = 4, track_grid: int = 8, storage: str = "mcap",
                 progress: bool = True) -> list[Path]:
    """Generate `scenes` sequences (seeds seed, seed + 1, ...) and write each as `out_dir/scene_<seed>`."""
    from tqdm import tqdm

    from dgslrm_ros.data.sequence import generate_sequence

    if scenes < 1 or views < 1:
        raise ValueError(f"need at least one scene and one view, got scenes={scenes} views={views}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for scene_seed in tqdm(range(seed, seed + scenes), desc="synth scenes", unit="scene", disable=not progress):
        sequence = generate_sequence(scene_seed, num_frames=frames, height=size, width=size, fps=fps,
                                     num_views=views, track_grid=track_grid)
        paths.append(write_sequence_bag(sequence, out / f"scene_{scene_seed:06d}", storage=storage))
    return paths
