"""Source -> frames -> COLMAP -> metric poses -> a bag in the node's input layout, written whole or not at all.

The bag is built in a hidden sibling directory and renamed into place only once it, its report and
its PNG are complete, so a failure at any stage leaves nothing at `--out`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dgslrm_ros.posing.colmap import ColmapOptions, run_colmap, undistortion
from dgslrm_ros.posing.errors import PoseError, RegistrationError, TooFewFramesError
from dgslrm_ros.posing.frames import FramePick, PickedFrames, read_source
from dgslrm_ros.posing.report import format_report, plot_camera_path, stretches
from dgslrm_ros.posing.scale import DEFAULT_MEDIAN_DEPTH_M, median_depth_scale, metric_poses

MIN_FRAMES = 5
MIN_REGISTERED_FRACTION = 0.5
REPORT_FILE = "pose_report.json"
PATH_PNG = "pose_path.png"
SCALE_KEY = "dgslrm.pose.scale_m_per_unit"  # rosbag2 custom_data key in metadata.yaml


def _suggest_stretch(picked: PickedFrames, registered: list[int], pick: FramePick) -> str:
    runs = stretches(registered)
    if not runs or runs[0][1] - runs[0][0] + 1 < MIN_FRAMES:
        return "no stretch of registered frames is long enough; try another part of the video or a lower --fps"
    first, last = runs[0]
    offset = (picked.stamps_ns[first] - picked.stamps_ns[0]) / 1e9 + pick.start
    return (f"the longest registered stretch is frames {first}..{last} of those picked; "
            f"try --start {offset:.2f} --frames {last - first + 1}")


def pose_source(source: str | Path, out: str | Path, pick: FramePick = FramePick(),
                colmap: ColmapOptions = ColmapOptions(), scale: float | None = None,
                median_depth: float = DEFAULT_MEDIAN_DEPTH_M, image_topic: str = "image",
                progress: bool = True, keep_workdir: str | Path | None = None) -> dict[str, Any]:
    """Pose `source` and write the bag `out` (with pose_report.json and pose_path.png inside).

    Returns the report. Raises PoseError subclasses with nothing written at `out`."""
    from dgslrm_ros.bags import topics
    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.convert.camera_info import library_to_opencv_K

    out = Path(out)
    if out.exists():
        raise PoseError(f"{out} exists already; choose another --out or remove it")
    if scale is not None and not (scale > 0 and np.isfinite(scale)):
        raise PoseError(f"--scale must be a positive number of metres per COLMAP unit, got {scale}")
    started = time.perf_counter()
    picked = read_source(source, pick, image_topic=image_topic, progress=progress)
    if len(picked) < MIN_FRAMES:
        raise TooFewFramesError(
            f"{source}: {len(picked)} frame(s) picked (start {pick.start} s, frames {pick.frames}, fps {pick.fps}); "
            f"COLMAP needs at least {MIN_FRAMES}: lower --start, raise --frames or --fps")
    decode_s = time.perf_counter() - started

    workdir = Path(keep_workdir) if keep_workdir else Path(tempfile.mkdtemp(prefix="dgslrm_pose_"))
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        sparse = run_colmap(picked.rgb, workdir, colmap, progress=progress)
        registered = sparse.registered
        missing = [i for i in range(len(picked)) if i not in sparse.cam_from_world]
        if len(registered) < MIN_REGISTERED_FRACTION * len(picked) or len(registered) < MIN_FRAMES:
            raise RegistrationError(
                f"COLMAP registered {len(registered)} of {len(picked)} frames (need at least half and {MIN_FRAMES}); "
                f"not registered: frames {missing} (numbered from 0 in the frames picked); "
                + _suggest_stretch(picked, registered, pick))
        anchor = registered[0]
        if scale is None:
            scale_used = median_depth_scale(sparse.cam_from_world[anchor], sparse.points[sparse.observed[anchor]],
                                            median_depth)
            scale_source = f"median depth of frame {anchor}'s sparse points set to {median_depth} m"
        else:
            scale_used, scale_source = float(scale), "--scale"
        poses, points = metric_poses(sparse.cam_from_world, sparse.points, scale_used, anchor)
        pinhole = undistortion(sparse)
        K_opencv = library_to_opencv_K(pinhole.K)

        start = time.perf_counter()
        partial.mkdir(parents=True)
        bag_dir = partial / out.name
        with BagWriter(bag_dir) as bag:
            bag.set_custom_data(SCALE_KEY, repr(scale_used))
            for frame in registered:
                stamp = int(picked.stamps_ns[frame])
                bag.write_camera_info(topics.CAMERA_INFO, stamp, K_opencv, pinhole.width, pinhole.height,
                                      topics.CAMERA_FRAME)
                bag.write_pose(topics.CAMERA_POSE, stamp, poses[frame], topics.WORLD_FRAME)
                bag.write_image(topics.IMAGE, stamp, pinhole.apply(picked.rgb[frame]), topics.CAMERA_FRAME)
        write_s = time.perf_counter() - start

        path = np.stack([poses[f] for f in registered])  # [T, 4, 4]
        report = {
            "source": str(source),
            "source_kind": picked.source,
            "source_size": list(picked.source_size),
            "pick": asdict(pick),
            "colmap": asdict(colmap),
            "frames_in": len(picked),
            "frames_registered": len(registered),
            "frames_unregistered": missing,
            "source_index_registered": [picked.source_index[f] for f in registered],
            "matching": sparse.matching,
            "model_sizes": sparse.model_sizes,
            "mapping_attempts": sparse.attempts,
            "points": int(len(sparse.points)),
            "reprojection_error_px": sparse.mean_reprojection_error,
            "camera": {"model": sparse.camera_model, "params": sparse.camera_params.tolist(),
                       "width": sparse.width, "height": sparse.height},
            "pinhole": {"width": pinhole.width, "height": pinhole.height, "K_opencv": K_opencv.tolist()},
            "scale_m_per_unit": scale_used,
            "scale_source": scale_source,
            "path_length_m": float(np.linalg.norm(np.diff(path[:, :3, 3], axis=0), axis=1).sum()),
            "world_frame": "the first registered camera's optical frame (x right, y down, z forward), metres",
            "seconds": {"decode": decode_s, **sparse.seconds, "write": write_s,
                        "total": time.perf_counter() - started},
            "bag": str(out),
        }
        (bag_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
        plot_camera_path(path, points, sparse.colors, bag_dir / PATH_PNG,
                         title=f"{Path(str(source)).name}: {len(registered)}/{len(picked)} frames, "
                               f"{len(points)} points, scale {scale_used:.3g} m/unit")
        bag_dir.rename(out)
        return report
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["pose_source", "format_report", "REPORT_FILE", "PATH_PNG", "SCALE_KEY", "MIN_FRAMES"]
