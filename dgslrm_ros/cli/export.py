"""Export a window's Gaussians to a standard 3DGS PLY (readable by common splat viewers).

INPUT is a DeformableGaussians safetensors file (what `DeformableGaussians.save` writes, e.g.
`dgslrm replay BAG --save-windows` writes one per window to OUT/windows/). The Gaussians are deformed to one frame of the window (the
newest by default), optionally pruned by opacity, and written in the frame the file was saved in
(the node saves the metric world frame). A top/side scatter preview PNG is written beside the PLY.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _frame_argument(text: str) -> str | int:
    if text == "newest":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame index (0, 1, ..., or -1 from the end) or 'newest', got '{text}'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="INPUT", help="DeformableGaussians .safetensors file")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT.ply", help="PLY file to write")
    parser.add_argument("--frame", type=_frame_argument, default="newest", metavar="N|newest",
                        help="window frame to deform the Gaussians to (default: newest)")
    parser.add_argument("--min-opacity", type=float, default=0.0, metavar="X",
                        help="drop Gaussians with opacity below X (default: 0, keep all)")
    parser.add_argument("--no-preview", action="store_true", help="do not write the OUT.png scatter preview")


def write_preview(path: Path, means, colors, title: str) -> Path:
    """Top (x-y) and side (x-z) scatter of the Gaussian centres in their colours."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for axis, (i, j, label) in zip(axes, [(0, 1, "top: x / y"), (0, 2, "side: x / z")]):
        axis.scatter(means[:, i], means[:, j], c=colors, s=2, linewidths=0)
        axis.set_title(label)
        axis.set_aspect("equal", adjustable="datalim")
        axis.set_facecolor("0.85")
    fig.suptitle(title)
    return save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.core.gaussians import DeformableGaussians
    from dgslrm_ros.core.ply import write_ply

    gaussians = DeformableGaussians.load(args.input)  # a missing or damaged file: a DgslrmError, exit 2
    num_frames = gaussians.num_frames
    frame = num_frames - 1 if args.frame == "newest" else args.frame
    if frame < 0:
        frame += num_frames
    if not 0 <= frame < num_frames:
        print(f"dgslrm export: --frame {args.frame} is outside the window of {num_frames} frames "
              f"(expected 0..{num_frames - 1} or 'newest')", file=sys.stderr)
        return 2
    total = len(gaussians)
    kept = gaussians.prune(args.min_opacity) if args.min_opacity > 0 else gaussians
    static = kept.at(frame)
    out = write_ply(args.out, static)
    stamp = float(gaussians.timestamps[frame])
    print(f"wrote {out}: {len(static)} of {total} Gaussians at frame {frame}/{num_frames - 1} "
          f"(t = {stamp:.3f} s, min opacity {args.min_opacity})")
    if not args.no_preview:
        preview = write_preview(out.with_suffix(".png"), static.means.numpy(), static.colors.clamp(0, 1).numpy(),
                                f"{args.input.name}: {len(static)} Gaussians, frame {frame}")
        print(f"wrote {preview}: preview scatter of the Gaussian centres")
    return 0
