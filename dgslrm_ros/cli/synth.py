"""Write synthetic dynamic scenes as ROS 2 bags (mcap) with ground truth.

Each scene becomes OUT/scene_<seed>/ holding the input topics `image` (rgb8), `camera_info`,
`camera_pose` and, on the same stamps, `gt/views/<k>/image|pose|camera_info` for the held-out views
k = 1..V-1 and `gt/trajectories` (the `trajectories` layout) for a pixel grid of surface points.
Play one with `ros2 bag play OUT/scene_000000` or score with `dgslrm replay OUT/scene_000000`.
"""
from __future__ import annotations

import argparse

from dgslrm_ros.cli.argtypes import positive_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (one bag directory per scene inside)")
    parser.add_argument("--scenes", type=positive_int, default=4, help="number of scenes (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first scene; scene i uses seed + i")
    parser.add_argument("--frames", type=positive_int, default=24, help="frames per scene (default 24)")
    parser.add_argument("--size", type=positive_int, default=64, help="image width and height in px (default 64)")
    parser.add_argument("--fps", type=positive_float, default=10.0, help="frame rate of the stamps (default 10)")
    parser.add_argument("--views", type=positive_int, default=4,
                        help="cameras per scene: 1 input + views-1 held-out ground-truth views (default 4)")
    parser.add_argument("--track-grid", type=positive_int, default=8,
                        help="pixel spacing of the ground-truth track grid in the first input frame (default 8)")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="bag storage (default mcap)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.bags.synth import synth_scenes

    paths = synth_scenes(args.out, scenes=args.scenes, seed=args.seed, frames=args.frames, size=args.size,
                         fps=args.fps, views=args.views, track_grid=args.track_grid, storage=args.storage,
                         progress=not args.no_progress)
    for path in paths:
        print(f"wrote {path}")
    print(f"{len(paths)} bag(s) in {args.out}")
    return 0
