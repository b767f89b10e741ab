"""Pose a real video, an image folder or a camera-only bag with COLMAP and write a posed bag.

    dgslrm pose clip.mp4 --out clip_posed --frames 72 --max-size 480
    dgslrm replay clip_posed --holdout 2 --out replay_clip

Frames are decoded (OpenCV), picked (--start, --frames, --fps), posed by COLMAP through pycolmap on
the CPU (SIFT; exhaustive matching below 40 frames, sequential above; incremental mapping with one
shared camera; the largest model kept), undistorted to a pinhole camera, and written as the node's
input topics `image`, `camera_info` (OpenCV convention, no distortion) and `camera_pose` (frame
`world` = the first registered camera). Stamps: the video's own times, the bag's, or --fps for a
folder. COLMAP has no metric scale: --scale gives metres per COLMAP unit, otherwise the median
depth of the first frame's sparse points is set to --median-depth (default 2 m); the scale is
printed and stored in the bag's metadata.yaml (custom_data). The bag directory also holds
pose_report.json (frames registered, reprojection error, points, timings) and pose_path.png.

Optional extra, not needed by the node: pip install pycolmap opencv-python-headless
(or pip install 'dgslrm_ros[pose]').
"""
from __future__ import annotations

import argparse
import sys

from dgslrm_ros.cli.argtypes import positive_float, positive_int


def _missing_extras() -> list[str]:
    import importlib.util

    return [name for module, name in (("pycolmap", "pycolmap"), ("cv2", "opencv-python-headless"))
            if importlib.util.find_spec(module) is None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    missing = _missing_extras()
    if missing:
        parser.description = (parser.description or "") + (
            f"\nNOT INSTALLED here: {', '.join(missing)}. Install with: pip install {' '.join(missing)}\n")
    parser.add_argument("source", help="a video file, a folder of images, or a bag (directory or .mcap/.db3)")
    parser.add_argument("--out", required=True, help="the posed bag directory to write (must not exist)")
    parser.add_argument("--start", type=float, default=0.0, help="skip this many seconds of the source (default 0)")
    parser.add_argument("--frames", type=positive_int, default=None, help="pose at most this many frames (default all)")
    parser.add_argument("--fps", type=positive_float, default=None,
                        help="take at most this many frames per second (default: every frame); for an image "
                             "folder, its frame rate (default 10)")
    parser.add_argument("--max-size", type=int, default=640,
                        help="resize so the long side is at most this many px (default 640; 0 keeps the size)")
    parser.add_argument("--image-topic", default="image", help="image topic when the source is a bag (default image)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=positive_float, default=None, help="metres per COLMAP unit")
    scale.add_argument("--median-depth", type=positive_float, default=2.0,
                       help="metres to put the first frame's median sparse-point depth at (default 2)")
    parser.add_argument("--matching", choices=["auto", "sequential", "exhaustive"], default="auto",
                        help="feature matching (default auto: exhaustive below 40 frames, else sequential)")
    parser.add_argument("--max-features", type=positive_int, default=4096, help="SIFT features per frame (default 4096)")
    parser.add_argument("--camera-model", default="SIMPLE_RADIAL",
                        help="COLMAP camera model shared by all frames (default SIMPLE_RADIAL; e.g. OPENCV)")
    parser.add_argument("--threads", type=int, default=-1,
                        help="COLMAP threads (default -1: all cores; 1 makes a run repeat exactly)")
    parser.add_argument("--attempts", type=positive_int, default=4,
                        help="mapping seeds tried in turn until one registers every frame; the largest model is "
                             "kept (default 4)")
    parser.add_argument("--keep-colmap", default=None, metavar="DIR",
                        help="keep COLMAP's images, database and models in DIR (default: a temporary folder)")
    parser.add_argument("--verbose", action="store_true", help="show COLMAP's own log")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import json

    from dgslrm_ros.posing.colmap import ColmapOptions
    from dgslrm_ros.posing.errors import PoseError
    from dgslrm_ros.posing.frames import FramePick
    from dgslrm_ros.posing.posed_bag import PATH_PNG, REPORT_FILE, format_report, pose_source

    pick = FramePick(start=args.start, frames=args.frames, fps=args.fps, max_size=args.max_size)
    colmap = ColmapOptions(max_features=args.max_features, matching=args.matching,
                           camera_model=args.camera_model, threads=args.threads, attempts=args.attempts,
                           verbose=args.verbose)
    try:
        report = pose_source(args.source, args.out, pick, colmap, scale=args.scale, median_depth=args.median_depth,
                             image_topic=args.image_topic, progress=not args.no_progress,
                             keep_workdir=args.keep_colmap)
    except PoseError as error:
        print(f"dgslrm pose: {error}\nnothing was written to {args.out}", file=sys.stderr)
        return 1
    print(format_report(report))
    print(json.dumps({k: report[k] for k in ("frames_registered", "frames_in", "reprojection_error_px", "points",
                                             "scale_m_per_unit")}))
    print(f"wrote {args.out} (report {args.out}/{REPORT_FILE}, camera path {args.out}/{PATH_PNG})")
    return 0
