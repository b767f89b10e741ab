"""Hundreds of windows through the streaming pipeline (tiny model, in-process): every container the
pipeline keeps stays bounded, and the Python heap stops growing after warm-up (issue 16).

The stream mixes what a robot sends over hours: poses four times faster than the images, a worker that
sometimes falls behind (windows overflow), bag loops (stamps jumping back) and forward gaps (new
sequences, tracks restarted), so every buffer is filled to its bound and emptied again.
"""
from __future__ import annotations

import gc
import os
import tracemalloc

from dgslrm_ros.convert.window import window_messages
from dgslrm_ros.stream.pipeline import DROP_REASONS, MAX_WAITING_IMAGES
from dgslrm_ros.stream.pose_buffer import PoseBuffer

WINDOWS = 240  # windows reconstructed in all (16 px model input keeps each one cheap)
WARMUP_WINDOWS = 40  # the Python-heap reference is taken after these
# Python-heap growth allowed over the 200 windows after warm-up (tracemalloc: Python objects and numpy
# buffers; torch storages are not traced). A leak of one small track set per window (32 tracks x 8
# frames x 3 float32 = 3 KiB) would be 600 KiB: this bound catches it.
HEAP_GROWTH_BOUND_BYTES = 128 * 1024
LOOP_EVERY = 70  # admitted-frame strides between bag loops (stamps jump back 30 s)
GAP_EVERY = 45  # windows between forward gaps (2 s: a new sequence)
OVERFLOW_EVERY = 25  # every this many windows the worker skips popping once (falls behind)
POSES_PER_IMAGE = 4
POSE_CAPACITY = 512


def _bounds(pipeline, config) -> dict[str, tuple[int, int]]:
    """name -> (size now, bound) for every container the pipeline and its registry keep."""
    registry = pipeline.reconstruction.registry
    grid_cells = len(range(config.track_grid // 2, config.image_height, config.track_grid)) * \
        len(range(config.track_grid // 2, config.image_width, config.track_grid))
    candidates = (config.window_frames // config.keyframe_stride) * grid_cells
    return {
        "window buffer frames": (len(pipeline._windows), config.window_frames),
        "pending windows": (pipeline.pending_windows(), config.max_pending_windows),
        "images waiting for a pose": (len(pipeline._waiting), MAX_WAITING_IMAGES),
        "pose buffer": (len(pipeline._poses), pipeline._poses.capacity),
        "active tracks": (registry.active, candidates),
        "previous-window track positions": (0 if registry._prev_positions is None else len(registry._prev_positions),
                                            candidates),
        "throttled-log keys": (len(pipeline._last_log), len(DROP_REASONS) + 4),
        "drop counters": (len(pipeline._drops), len(DROP_REASONS)),
        "event counters": (len(pipeline._counts), 16),
    }


def test_several_hundred_windows_keep_every_container_bounded_and_the_heap_flat(make_pipeline, kit):
    pipeline = make_pipeline(max_pending_windows=2, image_width=16, image_height=16, track_grid=4)
    pipeline._poses = PoseBuffer(capacity=POSE_CAPACITY)  # reached between bag loops (4096 would not be)
    config = pipeline.config
    stride = config.window_stride
    worst: dict[str, int] = {}
    done = step = 0
    busy_until = -1
    stamp = 1_700_000_000.0  # epoch-sized stamps, as on a robot
    heap_after_warmup = None
    heap: list[int] = []  # traced bytes every 10 windows past warm-up
    prepared_sizes: set[int] = set()
    while done < WINDOWS:
        for k in range(POSES_PER_IMAGE):  # a pose stream faster than the camera
            t = stamp + k * 0.1 / POSES_PER_IMAGE
            pipeline.add_pose(t, kit.pose_at(t - 1.7e9), "world")
        pipeline.add_image(stamp, kit.image(step % 7))
        step += 1
        stamp += 0.1
        if step % (LOOP_EVERY * stride) == 0:
            stamp -= 30.0  # bag loop
        elif step % (GAP_EVERY * stride) == 0:
            stamp += 2.0  # camera paused
        if step % (OVERFLOW_EVERY * stride) == 0:  # the worker is busy elsewhere: windows pile up
            busy_until = step + stride * (config.max_pending_windows + 1)
        if step >= busy_until:
            while (window := pipeline.pop_window()) is not None and done < WINDOWS:
                result = pipeline.reconstruct(window)
                prepared_sizes.update(len(frame._prepared) for frame in window.frames)
                assert window_messages(result).trajectories.height <= _bounds(pipeline, config)["active tracks"][1]
                del result, window
                done += 1
                if done == WARMUP_WINDOWS:
                    gc.collect()
                    tracemalloc.start()
                    heap_after_warmup = tracemalloc.get_traced_memory()[0]
                if done > WARMUP_WINDOWS and done % 10 == 0:
                    gc.collect()  # reference cycles are garbage, not growth: count what stays reachable
                    heap.append(tracemalloc.get_traced_memory()[0])
        for name, (size, bound) in _bounds(pipeline, config).items():
            assert size <= bound, f"{name}: {size} > {bound} after {done} windows"
            worst[name] = max(worst.get(name, 0), size)
    gc.collect()
    if os.environ.get("DGSLRM_HEAP_DEBUG"):
        snapshot = tracemalloc.take_snapshot()
        for stat in snapshot.statistics("lineno")[:15]:
            print(stat)
    tracemalloc.stop()
    # Buffers fill and empty (pending windows, images waiting, poses between loops), so compare peaks:
    # the largest heap over the last quarter against the largest over the first quarter after warm-up.
    quarter = len(heap) // 4
    heap_growth = max(heap[-quarter:]) - max(heap[:quarter])

    diagnostics = pipeline.diagnostics()
    # the stream really went through what the bounds are about
    assert diagnostics["dropped_window_overflow"] > 0
    assert diagnostics["dropped_pose_stamp_backwards"] > 0
    assert diagnostics["sequence_restarts"] >= 2 * (step // (LOOP_EVERY * stride))
    assert worst["window buffer frames"] == config.window_frames
    assert worst["pending windows"] == config.max_pending_windows
    assert worst["pose buffer"] == pipeline._poses.capacity  # oldest poses evicted, never more
    assert worst["active tracks"] > 0
    assert prepared_sizes == {1}  # one prepared tensor per frame, never a growing cache
    assert heap_growth < HEAP_GROWTH_BOUND_BYTES, (
        f"Python heap grew {heap_growth / 1024:.1f} KiB over {WINDOWS - WARMUP_WINDOWS} windows after warm-up")


def test_track_ids_keep_counting_but_the_registry_state_does_not(make_pipeline, kit):
    """Track ids grow without bound by design (never reused); the state behind them stays one window's."""
    pipeline = make_pipeline(max_pending_windows=4, image_width=16, image_height=16, track_grid=4)
    config = pipeline.config
    candidates = (config.window_frames // config.keyframe_stride) * (16 // 4) ** 2
    # previous window's stamp keys [T] int64, positions [M, T, 3] float64, ids [M] uint32 with M <= candidates
    bound = config.window_frames * 8 + candidates * (config.window_frames * 3 * 8 + 4)
    sizes, ids = [], []
    for i in range(120):
        t = 1_700_000_000.0 + 0.1 * i + 2.0 * (i // 40)  # a pause every 40 frames: new sequence, new ids
        pipeline.add_pose(t, kit.pose_at(0.1 * i), "world")
        pipeline.add_image(t, kit.image(i % 5))
        while (window := pipeline.pop_window()) is not None:
            result = pipeline.reconstruct(window)
            registry = pipeline.reconstruction.registry
            sizes.append(sum(a.nbytes for a in (registry._prev_keys, registry._prev_positions, registry._prev_ids)))
            ids.append(int(result.tracks.track_ids.max()) if len(result.tracks.track_ids) else -1)
    assert len(sizes) >= 25
    assert max(sizes) <= bound
    assert registry._next_id > candidates  # more ids were handed out than one window can hold...
    assert ids[-1] > ids[0]  # ...and they kept counting
