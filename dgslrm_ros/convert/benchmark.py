"""`dgslrm bench --ros`: message packing/unpacking times against a memcpy of the same bytes.

The ratio tells how far each conversion is from the floor any conversion pays (touching every byte
once). Conversions are CPU work whatever the device; `device` only labels the rows, `impl` says
whether convert/fastcopy.py's C helper or its numpy fallback ran (DGSLRM_NO_FASTCOPY=1 forces numpy).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from dgslrm_ros.convert.fastcopy import ACCELERATED
from dgslrm_ros.convert.image import image_fields_to_rgb, rgb_to_image_fields
from dgslrm_ros.convert.pointcloud import (
    array_to_gaussians,
    array_to_trajectories,
    pack_gaussians,
    pack_trajectories,
    pointcloud_fields_to_array,
)
from dgslrm_ros.core.timing import median_ms


def _cases(quick: bool) -> list[tuple[str, str, int, Callable[[], object]]]:
    """(message, direction, bytes, function) for every measured conversion."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    cases: list[tuple[str, str, int, Callable[[], object]]] = []
    for encoding in ("rgb8", "bgr8", "bgra8"):
        fields = rgb_to_image_fields(rgb, encoding)
        data = fields.data.tobytes()  # decode from bytes, as rclpy hands them over
        cases.append((f"Image 640x480 {encoding}", "unpack", len(data),
                      lambda f=fields, d=data: image_fields_to_rgb(f.height, f.width, f.encoding, f.step, d)))
    cases.append(("Image 640x480 rgb8", "pack", rgb.nbytes, lambda: rgb_to_image_fields(rgb, "rgb8")))
    cases.append(("Image 640x480 bgr8", "pack", rgb.nbytes, lambda: rgb_to_image_fields(rgb, "bgr8")))

    for n in ((20_000,) if quick else (100_000, 1_000_000)):  # 1M: what a large scene publishes
        q = rng.normal(size=(n, 4)).astype(np.float32)
        g = dict(
            means=rng.normal(size=(n, 3)).astype(np.float32), colors=rng.random((n, 3)).astype(np.float32),
            opacities=rng.random(n).astype(np.float32), scales=rng.random((n, 3)).astype(np.float32),
            quats=q / np.linalg.norm(q, axis=1, keepdims=True), velocities=rng.normal(size=(n, 3)).astype(np.float32),
        )
        cloud = pack_gaussians(**g)
        gdata = cloud.data.tobytes()
        label = f"PointCloud2 gaussians {n // 1000}k"
        cases.append((label, "pack", len(gdata), lambda g=g: pack_gaussians(**g)))
        cases.append((label, "unpack", len(gdata), lambda c=cloud, d=gdata: array_to_gaussians(
            pointcloud_fields_to_array(c.fields, c.point_step, d, c.height, c.width))))

    # 1000 tracks: what the node publishes (0.6 MB: fixed per-call work shows); 10000: the per-byte rate
    for m in ((200,) if quick else (1000, 10_000)):
        t = 24
        tracks = rng.normal(size=(m, t, 3)).astype(np.float32)
        times = -np.arange(t)[::-1].astype(np.float32) / 10
        ids = np.arange(m, dtype=np.uint32)  # as the node's track registry gives them
        vis = np.ones((m, t), np.float32)
        traj = pack_trajectories(tracks, times, ids, vis)
        tdata = traj.data.tobytes()
        label = f"PointCloud2 trajectories {m}x{t}"
        cases.append((label, "pack", len(tdata), lambda a=(tracks, times, ids, vis): pack_trajectories(*a)))
        cases.append((label, "unpack", len(tdata), lambda c=traj, d=tdata: array_to_trajectories(
            pointcloud_fields_to_array(c.fields, c.point_step, d, c.height, c.width))))
    return cases


def run_ros_benchmark(device: str = "cpu", quick: bool = False) -> list[dict]:
    """Rows: message, direction, bytes, conversion ms, memcpy ms of the same bytes into a reused buffer and
    into a new one, and the ratios."""
    repeats = 5 if quick else 20
    impl = "C" if ACCELERATED else "numpy"  # convert/fastcopy.py: whether its C helper was built
    rows = []
    for message, direction, nbytes, fn in _cases(quick):
        source = np.random.default_rng(1).integers(0, 256, nbytes, dtype=np.uint8)
        target = np.empty_like(source)
        convert_ms = median_ms(fn, "cpu", repeats=repeats)
        copy_ms = median_ms(lambda: np.copyto(target, source), "cpu", repeats=repeats)
        # A conversion writes a new buffer; past glibc's mmap threshold its pages are fresh and the kernel
        # zeroes each on first touch (at 60 MB about as long as the copy itself), which a copy into a reused
        # buffer does not pay. Both floors are printed; `ratio` stays against the reused one.
        fresh_ms = median_ms(source.copy, "cpu", repeats=repeats)
        rows.append({
            "message": message, "direction": direction, "device": device, "impl": impl, "MB": nbytes / 1e6,
            "ms": convert_ms, "memcpy_ms": copy_ms, "ratio": convert_ms / max(copy_ms, 1e-6),
            "memcpy_new_ms": fresh_ms, "ratio_new": convert_ms / max(fresh_ms, 1e-6),
        })
    return rows
