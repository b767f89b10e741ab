"""End-to-end latency of the windowed pipeline per window (`dgslrm bench --node`).

Runs the real StreamingReconstructor with the default node configuration (the shipped checkpoint's
window and input size or, without it, the untrained `small` model's: timing does not depend on the
weights) on a synthetic posed stream, and reports each stage of `reconstruct` (STAGES) plus what a
ROS callback costs; packing into messages is the edges' (`dgslrm bench --ros` measures it).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from dgslrm_ros.stream.config import PipelineConfig
from dgslrm_ros.stream.pipeline import StreamingReconstructor

STAGES = ("preprocess", "cues", "model", "colors", "to_world", "render", "tracks", "total")


PLANE_DEPTH_M = 3.0  # the benchmark's scene: a textured wall this far in front of the camera's path


def _synthetic_frame(world_T_cam: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """The camera's view of a static textured wall at z = PLANE_DEPTH_M (the camera looks down +z): a
    consistent scene, so the sweep resolves depth and tracks are seeded as on a real stream."""
    rows, cols = np.mgrid[0:height, 0:width]
    depth = PLANE_DEPTH_M - world_T_cam[2, 3]
    x = world_T_cam[0, 3] + (cols - K[0, 2]) / K[0, 0] * depth  # wall coordinates (m) seen by each pixel
    y = world_T_cam[1, 3] + (rows - K[1, 2]) / K[1, 1] * depth
    r = 127 + 120 * np.sin(x / 0.05)
    g = 127 + 120 * np.sin(y / 0.04 + np.sin(x / 0.3))
    b = 127 + 120 * np.sin((x + y) / 0.08)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def _pose(t: float) -> np.ndarray:
    pose = np.eye(4)
    pose[0, 3] = 0.5 * np.sin(t)  # about 0.5 m/s sideways: parallax for the sweep on the wall
    pose[1, 3] = 0.05 * t
    return pose


def run_pipeline_benchmark(device: str = "auto", quick: bool = False, config: PipelineConfig | None = None,
                           input_size: tuple[int, int] = (480, 640)) -> list[dict]:
    """Rows of figures: per-stage seconds of each measured window (mean over windows) and callbacks."""
    config = dataclasses.replace(config or PipelineConfig(), device=device,
                                 max_pending_windows=64)
    logs: list[tuple[str, str]] = []
    pipeline = StreamingReconstructor(config, lambda level, message: logs.append((level, message)))
    config = pipeline.config  # the window and input size the checkpoint gave
    height, width = input_size
    fx = 0.8 * width
    K = np.array([[fx, 0.0, width / 2 - 0.5], [0.0, fx, height / 2 - 0.5], [0.0, 0.0, 1.0]])
    pipeline.add_camera_info(K, np.zeros(5), "plumb_bob", width, height)

    warmup, measured = (0, 1) if quick else (1, 3)
    wanted = warmup + measured
    frames_needed = config.window_frames + (wanted - 1) * config.window_stride
    period = config.frame_period
    stamps = 1000.0 + period * np.arange(frames_needed)
    images = [_synthetic_frame(_pose(t), K, height, width) for t in stamps]
    callback_s: list[float] = []
    for t, image in zip(stamps, images):
        start = time.perf_counter()
        pipeline.add_pose(float(t), _pose(float(t)), config.world_frame)
        pipeline.add_image(float(t), image)
        callback_s.append(time.perf_counter() - start)

    results = []
    while len(results) < wanted and (window := pipeline.pop_window()) is not None:
        results.append(pipeline.reconstruct(window))
    timed = results[warmup:]
    rows: list[dict] = []
    for stage in STAGES:
        values = [r.timings.get(stage, float("nan")) for r in timed]
        rows.append({"stage": stage, "ms_per_window": 1e3 * float(np.mean(values)),
                     "ms_min": 1e3 * float(np.min(values)), "windows": len(values)})
    last = timed[-1]
    # callbacks: what the ROS executor spends per window's worth of new frames (window_stride of them)
    per_window = 1e3 * float(np.sum(callback_s[-config.window_stride:]))
    rows.append({"stage": "callbacks (add_pose + add_image)", "ms_per_window": per_window,
                 "ms_min": 1e3 * float(np.min(callback_s)), "windows": len(callback_s)})
    summary = {
        "stage": "summary", "device": str(pipeline.device), "weights": pipeline.weights,
        "image": f"{config.image_width}x{config.image_height}", "window_frames": config.window_frames,
        "keyframe_stride": config.keyframe_stride,
        # keyframe sweeps taken from the window before (stream/sweep_cache.py) / all, over every window run
        "sweeps_reused": f"{pipeline.reconstruction.sweeps_reused[0]}/{pipeline.reconstruction.sweeps_reused[1]}",
        "gaussians": len(last.deformable), "tracks": len(last.tracks.track_ids),
        "windows_per_s_budget": config.frame_rate / config.window_stride,
        "realtime": bool(np.mean([r.seconds for r in timed]) <= config.window_stride * period),
    }
    rows.append(summary)
    return rows
