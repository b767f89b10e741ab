"""Offline rosbag replay through the node's windowed pipeline (no DDS), with evaluation.

Reads the bag's image, camera_info and pose topics in log-time order into the same
StreamingReconstructor the node runs, reconstructs every window as soon as it is complete (offline
nothing needs to be dropped for lack of time), and writes into --out:

* `output_bag/`: an mcap bag with the node's output topics (`gaussians`, `trajectories`,
  `tracks_markers`, `rendered`, `/diagnostics`), stamped with the instant each message describes;
* `rendered_vs_input.png`, `tracks_overlay.png`, `tracks_3d.png`;
* with `--save-windows`, `windows/window_<n>.safetensors`: each window's deformable Gaussians (metric
  world frame, pruned), the input of `dgslrm export` (tens of MB per window, hence opt-in);
* `metrics.json`: windows, drops by reason, timing, photometric PSNR of the input view and, where the
  bag holds ground truth (`dgslrm synth` bags):
  - novel-view PSNR/SSIM: each window's Gaussians deformed to its newest frame (or, with
    `--nvs-frames all`, to every frame) rendered from each held-out view `gt/views/<k>` at that
    instant, against that view's image, both at the model's resolution (same crop/resize as inputs);
  - 3D tracking error against `gt/trajectories` by the query-point protocol (evaluation/tracking.py:
    end-point error in metres, mean = ATE-3D as PointOdyssey reports it, within 0.1 m and 0.2 m).

With `--holdout N` the pipeline gets every N-th frame only; each skipped frame inside a window is
rendered from that window's Gaussians at its pose and instant and scored (PSNR, SSIM, LPIPS) against
the real image, beside `static`, `copy` and `blend` (see evaluation/holdout.py): `holdout` in
metrics.json, a table printed, `holdout/window_<n>.png`. Needs no ground truth: real bags too.

A truncated or corrupt bag is processed up to the break, everything is written, and the command
exits with status 1 and the reader's message.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.strict_json import strict_json
from dgslrm_ros.stream.config import PIPELINE_PARAMETERS

if TYPE_CHECKING:  # torch: imported when a replay runs, not for --help
    from dgslrm_ros.evaluation.scoring import ScoreLog
    from dgslrm_ros.evaluation.tracking import QueryPointScores

# The node's pipeline parameters as options, one --flag-name each (offline no window waits, so
# max_pending_windows is not one); values are checked by PipelineConfig.validate, refused by name.
_PARAMETER_FLAGS = tuple(spec for spec in PIPELINE_PARAMETERS if spec.name != "max_pending_windows")
OUTPUT_BAG = "output_bag"
WINDOWS_DIR = "windows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="input bag directory (or .mcap / .db3 file)")
    parser.add_argument("--out", default=None, help="output folder (default: out/replay/<bag name>)")
    parser.add_argument("--image-topic", default="image",
                        help="sensor_msgs/Image or CompressedImage (jpeg, png) topic; when the bag lacks it, "
                             "<topic>/compressed is read (default: image)")
    parser.add_argument("--camera-info-topic", default="camera_info", help="CameraInfo topic (default: camera_info)")
    parser.add_argument("--pose-topic", default="camera_pose", help="PoseStamped topic (default: camera_pose)")
    for spec in _PARAMETER_FLAGS:
        parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, type=spec.type, default=None,
                            help=f"node parameter {spec.name}: {spec.description} (default: {spec.default!r})")
    parser.add_argument("--nvs-frames", choices=["newest", "all"], default="newest",
                        help="window frames rendered for novel-view metrics (default: newest)")
    parser.add_argument("--save-windows", action="store_true",
                        help=f"also write each window's Gaussians to OUT/{WINDOWS_DIR}/window_<n>.safetensors "
                             "(the input of `dgslrm export`)")
    parser.add_argument("--holdout", type=int, default=0, metavar="N",
                        help="feed every N-th frame only (N >= 2) and score renders at the skipped frames against "
                             "the real images, beside static / copy / blend (default 0: off)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dgslrm_ros.stream.config import PipelineConfig

    overrides = {s.name: getattr(args, s.name) for s in _PARAMETER_FLAGS if getattr(args, s.name) is not None}
    config = PipelineConfig(**overrides)
    config.validate()
    if args.holdout == 1 or args.holdout < 0:
        print(f"dgslrm replay: --holdout expects N >= 2 (feed every N-th frame) or 0 (off), got {args.holdout}",
              file=sys.stderr)
        return 2
    bag = Path(args.bag)
    out = Path(args.out) if args.out else Path("out") / "replay" / bag.name
    summary = replay_bag(bag, out, config, image_topic=args.image_topic, camera_info_topic=args.camera_info_topic,
                         pose_topic=args.pose_topic, nvs_frames=args.nvs_frames, progress=not args.no_progress,
                         save_windows=args.save_windows, holdout=args.holdout)
    metrics = summary.metrics
    print(f"replayed {bag}: {metrics['windows']} windows, weights: {metrics['weights']}, "
          f"device {metrics['device']}")
    if metrics["windows"] == 0:
        if summary.error:  # an unreadable bag, not the topic names, is why
            print(f"dgslrm replay: the bag broke off before one window was complete: {summary.error}", file=sys.stderr)
            return 1
        drops = {k: v for k, v in metrics["dropped"].items() if v}
        print(f"dgslrm replay: no window was reconstructed ({metrics['frames_admitted']} frames admitted, "
              f"dropped: {drops or 'none'}; a window needs {metrics['config']['window_frames']} frames); "
              f"check the topic names (--image-topic, --camera-info-topic, --pose-topic)", file=sys.stderr)
        return 1
    print(f"  input-view PSNR {metrics['input_psnr']:.2f} dB, {metrics['seconds_per_window']:.2f} s per window")
    if metrics["novel_view"]:
        nv = metrics["novel_view"]
        print(f"  novel views: PSNR {nv['psnr']:.2f} dB, SSIM {nv['ssim']:.3f} over {nv['count']} renders")
    if metrics["tracking"]:
        tr = metrics["tracking"]
        print(f"  3D tracks: EPE {tr['epe']:.3f} m, within 0.1 m {tr['within_0.1m']:.2f} ({tr['tracks']} queries)")
    if metrics.get("holdout"):
        print(f"  held-out frames (1 frame in {args.holdout} fed to the pipeline):\n" + summary.holdout_table)
    print(f"  wrote {summary.out}: {OUTPUT_BAG}/, {', '.join(p.name for p in summary.pngs)}, metrics.json")
    if summary.error:
        print(f"dgslrm replay: the bag broke off: {summary.error}", file=sys.stderr)
        return 1
    return 0


class ReplayError(DgslrmError, RuntimeError):
    """Replay cannot start (output exists, no image topic...)."""


@dataclass
class ReplaySummary:
    out: Path
    metrics: dict[str, Any]
    pngs: list[Path]
    error: str | None = None
    holdout_table: str = ""


@dataclass
class _Ground:
    """Ground truth read so far (synthetic bags)."""

    images: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # view -> stamp_ns -> rgb
    poses: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # view -> stamp_ns -> [4, 4]
    intrinsics: dict[int, Any] = field(default_factory=dict)  # view -> CameraIntrinsics
    # The input camera's: the contract's held-out views share it, so a bag without
    # gt/views/<k>/camera_info (another tool's) is scored with it.
    input_intrinsics: Any = None
    trajectories: Any = None  # latest TrajectoriesRecord (it holds the whole history up to its stamp)

    def forget_before(self, stamp_ns: int) -> None:
        """Bound memory: no later window starts before `stamp_ns`."""
        for per_view in (*self.images.values(), *self.poses.values()):
            for key in [k for k in per_view if k < stamp_ns]:
                del per_view[key]


@dataclass
class _Scores:
    novel: ScoreLog = field(init=False)  # every novel-view render's PSNR / SSIM
    tracks: QueryPointScores = field(init=False)
    input_psnr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    gallery: list[dict[str, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from dgslrm_ros.evaluation.scoring import ScoreLog
        from dgslrm_ros.evaluation.tracking import QueryPointScores

        self.novel, self.tracks = ScoreLog(), QueryPointScores()


def replay_bag(bag: Path, out: Path, config, image_topic: str = "image", camera_info_topic: str = "camera_info",
               pose_topic: str = "camera_pose", nvs_frames: str = "newest", progress: bool = True,
               model: Any = None, save_windows: bool = False, holdout: int = 0) -> ReplaySummary:
    """Run the pipeline over `bag`, write the outputs into `out`; see the module docstring."""
    from tqdm import tqdm

    from dgslrm_ros.bags.reader import BagReadError, BagReader, CameraInfoRecord, ImageRecord, PoseRecord, \
        TrajectoriesRecord
    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.evaluation.previews import save_gallery, save_track_figures
    from dgslrm_ros.stream.health import StreamHealth
    from dgslrm_ros.stream.pipeline import StreamingReconstructor
    from dgslrm_ros.stream.reconstruction import ReconstructionError

    out = Path(out)
    bag_out = out / OUTPUT_BAG
    if bag_out.exists():
        raise ReplayError(f"{bag_out} exists already; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    logs: list[tuple[str, str]] = []

    def log(level: str, message: str) -> None:
        logs.append((level, message))
        if level in ("warn", "error"):
            tqdm.write(f"[{level}] {message}", file=sys.stderr)

    pipeline = StreamingReconstructor(config, log, model=model) if model is not None \
        else StreamingReconstructor(config, log)
    config = pipeline.config  # the window and input size the checkpoint gave
    reader = BagReader(bag, image_topic=image_topic, camera_info_topic=camera_info_topic, pose_topic=pose_topic,
                       strict=False)
    ground = _Ground()
    scores = _Scores()
    held = None
    if holdout:
        from dgslrm_ros.stream.holdout import HoldoutEvaluation
        held = HoldoutEvaluation(holdout, config.sync_tolerance, getattr(config, "method", "network"),
                                 config.renderer, str(pipeline.device))
    stamp_ns_of: dict[float, int] = {}
    pending: list[Any] = []  # results waiting for the ground truth of their instants
    failures: list[str] = []
    error: str | None = None
    windows = 0
    last: list[Any] = [None]  # the newest result, for the track figures
    health, clock = StreamHealth(("image",)), 0.0  # the node's severity rule, on the bag's log time

    with BagWriter(bag_out) as writer:
        def process_windows() -> None:
            nonlocal windows
            while (window := pipeline.pop_window()) is not None:
                try:
                    result = pipeline.reconstruct(window)
                except ReconstructionError as failure:
                    failures.append(str(failure))
                    log("error", str(failure))
                    continue
                windows += 1
                stamp_ns = stamp_ns_of.get(result.stamp, int(round(result.stamp * 1e9)))
                health.published(clock, clock - result.stamp)
                values = pipeline.diagnostics()
                rejected = sum(n for key, n in reader.skipped.items() if key.split(": ")[0] == reader.image_topic)
                level = health.judge(clock, values, frames=int(values["frames_received"]) + rejected,
                                     rejected_images=rejected, windows_failed=len(failures), windows_done=windows,
                                     last_error=failures[-1] if failures else "")
                _write_result(writer, result, stamp_ns, values, level)
                if save_windows:
                    result.deformable.save(out / WINDOWS_DIR / f"window_{windows - 1:04d}.safetensors")
                scores.input_psnr.append(result.psnr)
                scores.seconds.append(result.seconds)
                pending.append((stamp_ns, result, windows - 1))
                last[0] = result
                bar.set_postfix(windows=windows, psnr=f"{result.psnr:.1f}")

        def evaluate_ready(now_ns: int | None) -> None:
            """Score results whose instants are all read (the bag is in time order)."""
            while pending and (now_ns is None or pending[0][0] < now_ns):
                stamp_ns, result, index = pending.pop(0)
                if held is not None:
                    held.score(result, index)
                _evaluate(result, stamp_ns_of, ground, scores, nvs_frames, config.renderer, str(pipeline.device))
                ground.forget_before(stamp_ns_of.get(float(result.stamps[0]), 0) if len(result.stamps) else 0)

        with tqdm(desc=f"replay {bag.name}", unit="msg", disable=not progress, file=sys.stderr) as bar:
            try:
                for record in reader:
                    bar.update(1)
                    evaluate_ready(record.stamp_ns)
                    if isinstance(record, ImageRecord):
                        if record.view == 0:
                            stamp, clock = record.stamp_ns / 1e9, record.log_time_ns / 1e9
                            stamp_ns_of[stamp] = record.stamp_ns
                            health.arrived("image", clock)
                            if held is None or held.feed.image(stamp, record.rgb):
                                pipeline.add_image(stamp, record.rgb)
                                process_windows()
                        else:
                            ground.images.setdefault(record.view, {})[record.stamp_ns] = record.rgb
                    elif isinstance(record, PoseRecord):
                        if record.view == 0:
                            pipeline.add_pose(record.stamp_ns / 1e9, record.world_T_cam, record.frame_id)
                            if held is not None:
                                held.feed.pose(record.stamp_ns / 1e9, record.world_T_cam)
                        else:
                            ground.poses.setdefault(record.view, {})[record.stamp_ns] = record.world_T_cam
                    elif isinstance(record, CameraInfoRecord):
                        if record.view == 0:
                            i = record.intrinsics
                            pipeline.add_camera_info(i.K, i.D, i.distortion_model, i.width, i.height)
                            ground.input_intrinsics = i
                            if held is not None:
                                held.feed.camera_info(i.K, i.D, i.distortion_model, i.width, i.height)
                        else:
                            ground.intrinsics[record.view] = record.intrinsics
                    elif isinstance(record, TrajectoriesRecord):
                        ground.trajectories = record
            except BagReadError as failure:
                if failure.records_read == 0 and "no image topic" in str(failure):
                    raise ReplayError(str(failure)) from failure
                error = str(failure)
                log("error", f"bag read stopped: {error}")
            pipeline.flush()
            process_windows()
            evaluate_ready(None)

    diagnostics = pipeline.diagnostics()
    metrics = _metrics(bag, config, pipeline, diagnostics, scores, windows, failures, error, reader.skipped, logs)
    pngs = [path for path in [save_gallery(out / "rendered_vs_input.png", scores.gallery)] if path is not None]
    if held is not None:
        metrics["holdout"] = held.summary()
        pngs += held.write_pngs(out)
    if last[0] is not None:
        from dgslrm_ros.convert.image import frames_to_rgb8

        result = last[0]
        pngs += save_track_figures(out, result.tracks.positions, result.stamps,
                                   frames_to_rgb8(result.input_frame.numpy()), result.K, result.world_T_cam,
                                   _gt_tracks_of(result, ground))
    with open(out / "metrics.json", "w") as f:
        json.dump(strict_json(metrics), f, indent=2)
    return ReplaySummary(out=out, metrics=metrics, pngs=pngs, error=error,
                         holdout_table=held.table() if held is not None else "")


# ---------------------------------------------------------------------------------------------- writing
def _write_result(writer, result, stamp_ns: int, diagnostics: dict, level: tuple[int, str]) -> None:
    """One window's outputs, as the node publishes them: every one in the world frame (the contract);
    `level` (OK|WARN|ERROR, message) judged by stream/health.py's rule."""
    from dgslrm_ros.bags.messages import DiagnosticEntry
    from dgslrm_ros.convert.window import diagnostic_strings, window_messages

    packed = window_messages(result)
    writer.write_pointcloud("gaussians", stamp_ns, packed.gaussians, result.frame_id)
    writer.write_pointcloud("trajectories", stamp_ns, packed.trajectories, result.frame_id)
    writer.write_markers("tracks_markers", stamp_ns, packed.strips, result.frame_id)
    writer.write_image("rendered", stamp_ns, packed.rendered, result.frame_id)
    writer.write_diagnostics("/diagnostics", stamp_ns, [DiagnosticEntry(
        name="dgslrm: pipeline", level=level[0], message=level[1], hardware_id=str(diagnostics.get("device", "")),
        values=diagnostic_strings(diagnostics))])


# ---------------------------------------------------------------------------------------------- scoring
def _evaluate(result, stamp_ns_of: dict, ground: _Ground, scores: _Scores, nvs_frames: str, renderer: str,
              device: str = "cpu") -> None:
    """Novel-view and tracking scores of one window (evaluation.scoring, evaluation.tracking), where GT exists."""
    import torch

    from dgslrm_ros.convert.image import frames_to_rgb8, rgb8_to_frames
    from dgslrm_ros.core.cameras import intrinsics_from_opencv, resize_crop_frames
    from dgslrm_ros.evaluation.scoring import score_views

    height, width = result.rendered.shape[-2:]
    entry = {"input": frames_to_rgb8(result.input_frame.numpy()), "rendered": frames_to_rgb8(result.rendered.numpy())}
    frames = range(len(result.stamps)) if nvs_frames == "all" else [len(result.stamps) - 1]
    gaussians = result.deformable.to(device)  # the published copy lives on the CPU; gsplat needs CUDA
    for n in frames:
        n_ns = stamp_ns_of.get(float(result.stamps[n]))
        views = [k for k in sorted(ground.images) if n_ns in ground.images[k] and n_ns in ground.poses.get(k, {})
                 and ground.intrinsics.get(k, ground.input_intrinsics) is not None]
        if n_ns is None or not views or len(gaussians) == 0:
            continue
        targets, Ks = zip(*(resize_crop_frames(
            torch.from_numpy(rgb8_to_frames(ground.images[k][n_ns])),
            intrinsics_from_opencv(torch.from_numpy(ground.intrinsics.get(k, ground.input_intrinsics).K).float()),
            (height, width)) for k in views))  # the GT view at the model's resolution, cropped like the inputs
        poses = torch.stack([torch.from_numpy(ground.poses[k][n_ns]).float() for k in views])
        out, values = score_views(gaussians, poses, torch.stack(Ks), torch.stack(targets), renderer, frame=n)
        scores.novel.add(values)
        if n == len(result.stamps) - 1:
            entry["gt_view"] = frames_to_rgb8(targets[0].clamp(0, 1).numpy())
            entry["gt_render"] = frames_to_rgb8(out[0].numpy())
    record = ground.trajectories
    if record is not None and result.unpruned is not None and record.trajectories.t.size:
        cloud = record.trajectories
        scores.tracks.add_window(cloud.tracks, cloud.t[0].astype(np.float64) + record.stamp_ns / 1e9, cloud.visible,
                                 result.stamps, result.unpruned, result.K[0], result.world_T_cam[0], height, width)
    if not scores.gallery or len(scores.gallery) < 4:
        scores.gallery.append(entry)
    else:
        scores.gallery[-1] = entry  # keep the first three and the latest


def _gt_tracks_of(result, ground: _Ground) -> np.ndarray | None:
    """GT tracks [M, n, 3] over the window's time span, for the 3D figure."""
    from dgslrm_ros.evaluation.tracking import GT_STAMP_TOLERANCE_S

    record = ground.trajectories
    if record is None or record.trajectories.t.size == 0:
        return None
    gt_t = record.trajectories.t[0].astype(np.float64) + record.stamp_ns / 1e9
    span = (gt_t >= result.stamps[0] - GT_STAMP_TOLERANCE_S) & (gt_t <= result.stamps[-1] + GT_STAMP_TOLERANCE_S)
    return record.trajectories.tracks[:, span] if span.any() else None


def _metrics(bag: Path, config, pipeline, diagnostics: dict, scores: _Scores, windows: int, failures: list[str],
             error: str | None, skipped, logs: list) -> dict[str, Any]:
    from dgslrm_ros.metrics import mean_finite

    novel = {**scores.novel.mean(), "count": scores.novel.count,
             "frames": "rendered at the GT instants from the held-out GT poses, model resolution"} \
        if scores.novel.count else None
    return {
        "bag": str(bag),
        "config": asdict(config),
        "weights": pipeline.weights,
        "device": str(pipeline.device),
        "windows": windows,
        "windows_failed": len(failures),
        "failures": failures[:20],
        "frames_admitted": diagnostics.get("frames_admitted", 0),
        "dropped": pipeline.dropped(),
        "dropped_frames_total": diagnostics.get("dropped_frames_total", 0),
        "skipped_messages": dict(skipped),
        "input_psnr": mean_finite(scores.input_psnr),
        "seconds_per_window": mean_finite(scores.seconds),
        "novel_view": novel,
        "tracking": scores.tracks.summary(),
        "error": error,
        "warnings": [m for level, m in logs if level in ("warn", "error")][:50],
        "diagnostics": diagnostics,
    }
