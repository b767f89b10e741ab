"""Synthetic dynamic scene -> live dgslrm_node over ROS 2 (DDS) -> bag, PLY, PNG, metrics.json.

No robot needed. Three processes talk over real DDS on this machine (loopback, a private domain):
a publisher streams the scene's input camera as `image`, `camera_info` and `camera_pose` at its frame
rate, `dgslrm_node` reconstructs each window, and a recorder writes everything on the wire (inputs
and outputs) to an mcap bag. Afterwards the bag is read back (no rclpy) to write one PLY per window
(standard 3DGS layout), the node's renders beside the input frames, novel views rendered from the
received Gaussians at a held-out camera beside its ground truth, a track plot, and metrics.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dgslrm_ros.cli.children import Child, child_env
from dgslrm_ros.core.threads import default_worker_threads
from dgslrm_ros.stream.config import PIPELINE_PARAMETERS

if TYPE_CHECKING:
    import numpy as np

    from dgslrm_ros.data.sequence import SyntheticSequence
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.stream.config import PipelineConfig

FPS = 10.0
_METHOD = next(spec for spec in PIPELINE_PARAMETERS if spec.name == "method")
PLOT_GT_LINES_PER_SIDE = 8  # tracks.png: ground-truth tracks drawn per image side
DEFAULT_SEED = 1_000_000  # first evaluation seed (data.dataset.EVAL_SEED_START): a scene the weights never saw
STARTUP_TIMEOUT_S = 120.0
IDLE_TIMEOUT_S = 90.0  # after the last frame, stop waiting for windows once none came for this long (a lost
# frame can cost a window; a 128 px window of the small model takes tens of seconds on two CPU cores)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    parser.add_argument("--frames", type=int, default=48, help="frames of the synthetic scene at 10 fps (default 48)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels, a multiple of 8 (default 64)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"scene seed (default {DEFAULT_SEED}: an evaluation seed, never used in training)")
    parser.add_argument("--scene-preset", default="dynamic",
                        help="synthetic scene family, data.scenes presets (default dynamic: every object moves)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    parser.add_argument("--checkpoint", default="", help="model checkpoint (default: the shipped one)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cuda", "cpu"), help="node device (default cpu)")
    parser.add_argument("--method", default=_METHOD.default, choices=_METHOD.choices,
                        help=f"node parameter method: {_METHOD.description} (default: {_METHOD.default})")


def _model_config(config: PipelineConfig) -> tuple[ModelConfig, str]:
    """The ModelConfig the node will load for `config` and a weights description, read without the weights."""
    from dgslrm_ros.model.checkpoint import SHIPPED_CHECKPOINT, read_checkpoint_info
    from dgslrm_ros.stream.reconstruction import fallback_model_config

    path = Path(config.checkpoint) if config.checkpoint else SHIPPED_CHECKPOINT
    if not config.checkpoint and not (path / "config.json").exists():
        return fallback_model_config(config), f"untrained (no shipped checkpoint at {path}; a randomly initialised model runs)"
    # a CheckpointError when --checkpoint is not one
    return read_checkpoint_info(path)["model_config"], f"checkpoint {path}"


def run(args: argparse.Namespace) -> int:
    import yaml

    from dgslrm_ros.convert.image import frames_to_rgb8
    from dgslrm_ros.core.cameras import intrinsics_to_opencv
    from dgslrm_ros.data.scenes import scene_preset
    from dgslrm_ros.data.sequence import generate_sequence
    from dgslrm_ros.ros.demo_publisher import save_scene
    from dgslrm_ros.ros.params import validate
    from dgslrm_ros.stream.config import PipelineConfig

    if args.size % 8 or args.size < 16:
        print(f"dgslrm demo: --size must be a multiple of 8 and >= 16, got {args.size}", file=sys.stderr)
        return 2
    try:
        scene_config = scene_preset(args.scene_preset)
    except KeyError as error:
        print(f"dgslrm demo: --scene-preset: {error.args[0]}", file=sys.stderr)
        return 2
    track_grid = max(args.size // 8, 4)
    # window length and strides left to the checkpoint, as the node leaves them: resolved here the same way
    config = PipelineConfig(checkpoint=args.checkpoint, device=args.device, method=args.method, frame_rate=FPS,
                            image_width=args.size, image_height=args.size, track_grid=track_grid,
                            max_pending_windows=8)
    model_config, weights = _model_config(config)
    resolved = config.for_model(model_config)
    window, stride = resolved.window_frames, resolved.window_stride
    if args.frames < window:
        print(f"dgslrm demo: --frames {args.frames} is shorter than one window ({window} frames)", file=sys.stderr)
        return 2
    out: Path = args.out
    if (out / "bag").exists():
        print(f"dgslrm demo: {out / 'bag'} exists; choose another --out or remove it", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.timeout

    print(f"[demo] generating a {args.frames}-frame {args.size}px {args.scene_preset!r} scene (seed {args.seed}) ...",
          flush=True)
    window_starts = [k * stride for k in range(1 + (args.frames - window) // stride)]
    seq = generate_sequence(seed=args.seed, num_frames=args.frames, height=args.size, width=args.size, fps=FPS,
                            num_views=2, track_grid=track_grid, config=scene_config,
                            pixel_track_frames=window_starts)  # each window's tracks are scored on its first frame
    frames = frames_to_rgb8(seq.frames.numpy())  # [V, T, H, W, 3]
    # CameraInfo carries OpenCV intrinsics (pixel centres at integers); the generator's are ours (+0.5).
    camera_info_K = intrinsics_to_opencv(seq.K[0]).numpy()
    scene = save_scene(out / "scene.npz", frames[0], camera_info_K, seq.world_T_cam[0].numpy(),
                       seq.timestamps.numpy())

    values = validate(dataclasses.asdict(config))
    params_file = out / "dgslrm_params.yaml"
    params_file.write_text(yaml.safe_dump({"dgslrm": {"ros__parameters": values}}, sort_keys=False))
    expected_windows = len(window_starts)

    env = child_env()
    default_worker_threads(env)  # as dgslrm_node does on its own: a core left for the recorder and DDS
    python = sys.executable
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    children: list[Child] = []
    status: dict[str, Any] = {}
    try:
        print(f"[demo] starting dgslrm_node (ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, loopback) and the recorder ...",
              flush=True)
        node = Child.start("dgslrm_node", [python, "-m", "dgslrm_ros.ros.main", "--ros-args", "--params-file",
                                           str(params_file)], env, logs / "node.log")
        recorder = Child.start("recorder", [python, "-m", "dgslrm_ros.ros.recorder", str(out / "bag"), "--inputs"],
                               env, logs / "recorder.log")
        children += [node, recorder]
        _wait(lambda: any("ready:" in line for line in node.lines), min(deadline, time.monotonic() + STARTUP_TIMEOUT_S),
              "the node to load its model", node)
        _wait(lambda: recorder.count("READY") > 0, deadline, "the recorder", recorder)
        print(f"[demo] streaming {args.frames} frames at {FPS:g} fps; expecting {expected_windows} windows of "
              f"{window} frames ...", flush=True)
        publisher = Child.start("publisher", [python, "-m", "dgslrm_ros.ros.demo_publisher", str(scene),
                                              "--subscribers", "2"], env, logs / "publisher.log")
        children.append(publisher)
        last_seen, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = recorder.count("RECEIVED gaussians")
            if got != last_seen:
                last_seen, last_change = got, time.monotonic()
            if got >= expected_windows or node.popen.poll() is not None:
                break
            # all frames sent and nothing new for a while: the rest was dropped (counted in diagnostics)
            if publisher.popen.poll() is not None and time.monotonic() - last_change > IDLE_TIMEOUT_S:
                break
            time.sleep(0.2)
        time.sleep(1.5)  # one more diagnostics message after the last window
        status["node_alive_at_end"] = node.popen.poll() is None
    except TimeoutError as error:
        print(f"[demo] {error}", file=sys.stderr)
        status["error"] = str(error)
    finally:
        for child in reversed(children):
            status[f"{child.name}_exit"] = child.stop()
    if not (out / "bag").exists():
        print("[demo] no bag was written; see the logs in " + str(logs), file=sys.stderr)
        return 1
    metrics = evaluate(out, seq, frames, weights, expected_windows, status)
    _print_summary(out, metrics)
    return 0 if metrics["windows_received"] > 0 else 1


def _wait(predicate: Any, deadline: float, what: str, child: Child) -> None:
    while time.monotonic() < deadline:
        if predicate():
            return
        if child.popen.poll() is not None:
            tail = "\n".join(child.lines[-15:])
            raise TimeoutError(f"{child.name} exited (status {child.popen.returncode}) while waiting for {what}:\n{tail}")
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}; see {child.log}")


# ---------------------------------------------------------------------------------------------- evaluation

def evaluate(out: Path, seq: Any, frames: Any, weights: str, expected_windows: int,
             status: dict[str, Any]) -> dict[str, Any]:
    """Read the bag back (rosbags, no rclpy) and write PLY, PNG and metrics.json."""
    import torch

    from dgslrm_ros.bags.reader import diagnostic_values, read_messages
    from dgslrm_ros.bags.topics import qualified
    from dgslrm_ros.convert.image import frames_to_rgb8, image_to_rgb
    from dgslrm_ros.convert.pointcloud import unpack_gaussians, unpack_trajectories
    from dgslrm_ros.convert.stamps import header_stamp_ns
    from dgslrm_ros.core.gaussians import Gaussians
    from dgslrm_ros.core.ply import write_ply
    from dgslrm_ros.core.strict_json import strict_json
    from dgslrm_ros.evaluation.previews import save_pair, save_track_views
    from dgslrm_ros.evaluation.scoring import score_images, score_views
    from dgslrm_ros.evaluation.tracking import PUBLISHED_TRACK_PROTOCOL
    from dgslrm_ros.metrics import mean_finite

    received: dict[str, list[tuple[int, Any]]] = {}  # "/topic" -> (log time, message)
    for topic, log_time, msg in read_messages(out / "bag"):
        received.setdefault(qualified(topic), []).append((log_time, msg))
    topics = {topic: len(msgs) for topic, msgs in sorted(received.items())}

    # frame index of every input stamp (the publisher stamps frame i at origin + i / fps)
    input_stamps = sorted({header_stamp_ns(m) for _, m in received.get("/camera_info", [])})
    index_of = {stamp: i for i, stamp in enumerate(input_stamps)}
    windows: list[dict[str, Any]] = []
    images = {header_stamp_ns(m): m for _, m in received.get("/rendered", [])}
    trajectories = {header_stamp_ns(m): m for _, m in received.get("/trajectories", [])}
    for k, (log_time, cloud_msg) in enumerate(received.get("/gaussians", [])):
        stamp = header_stamp_ns(cloud_msg)
        frame = index_of.get(stamp)
        entry: dict[str, Any] = {"window": k, "stamp_ns": stamp, "frame": frame,
                                 "latency_s": (log_time - stamp) / 1e9, "gaussians": int(cloud_msg.width)}
        cloud = unpack_gaussians(cloud_msg)
        gaussians = Gaussians(means=torch.from_numpy(cloud.means), quats=torch.from_numpy(cloud.quats),
                              scales=torch.from_numpy(cloud.scales), opacities=torch.from_numpy(cloud.opacities),
                              colors=torch.from_numpy(cloud.colors))
        entry["ply"] = str(write_ply(out / f"gaussians_{k:02d}.ply", gaussians).relative_to(out))
        if frame is not None:
            # the node's render from the input camera vs the input frame
            if stamp in images:
                rendered = image_to_rgb(images[stamp])
                entry["psnr_rendered_vs_input_db"] = score_images(rendered, frames[0, frame])["psnr"][0]
                entry["rendered_png"] = save_pair(out / f"rendered_{k:02d}.png", frames[0, frame], rendered,
                                                   ("input", "dgslrm rendered"))
            # novel view: the received Gaussians rendered at the held-out camera of the same instant
            novel, scores = score_views(gaussians, seq.world_T_cam[1, frame][None], seq.K[1][None], frames[1, frame],
                                        "torch")
            novel_rgb = frames_to_rgb8(novel[0].numpy())
            entry["psnr_novel_view_db"] = scores["psnr"][0]
            entry["novel_view_png"] = save_pair(out / f"novel_view_{k:02d}.png", frames[1, frame], novel_rgb,
                                                 ("held-out view (ground truth)", "novel view of received Gaussians"))
            if stamp in trajectories:
                tracks = unpack_trajectories(trajectories[stamp]).tracks
                entry.update(_track_errors(seq, tracks, frame))
        windows.append(entry)
    if windows and windows[-1].get("frame") is not None and windows[-1]["stamp_ns"] in trajectories:
        last = windows[-1]
        tracks = unpack_trajectories(trajectories[last["stamp_ns"]]).tracks
        save_track_views(out / "tracks.png", tracks, _plotted_ground_truth(seq, last["frame"] - tracks.shape[1] + 1),
                         last["frame"])

    diagnostics = diagnostic_values(received["/diagnostics"][-1][1]) if "/diagnostics" in received else {}
    metrics: dict[str, Any] = {
        "weights": diagnostics.get("weights", weights),
        "weights_untrained": "untrained" in diagnostics.get("weights", weights),
        "windows_expected": expected_windows,
        "windows_received": len(windows),
        "topics_recorded": topics,
        "latency_s_mean": mean_finite([w["latency_s"] for w in windows]),
        "latency_s_max": max((w["latency_s"] for w in windows), default=float("nan")),
        "psnr_rendered_vs_input_db": mean_finite([w.get("psnr_rendered_vs_input_db") for w in windows]),
        "psnr_novel_view_db": mean_finite([w.get("psnr_novel_view_db") for w in windows]),
        "track_epe_m": mean_finite([w.get("track_epe_m") for w in windows]),
        "track_epe_still_m": mean_finite([w.get("track_epe_still_m") for w in windows]),
        "moving_tracks": sum(w.get("moving_tracks", 0) for w in windows),
        "moving_flow_epe_m": mean_finite([w.get("moving_flow_epe_m") for w in windows]),
        "moving_flow_epe_still_m": mean_finite([w.get("moving_flow_epe_still_m") for w in windows]),
        "track_error_definition": PUBLISHED_TRACK_PROTOCOL,
        "node_diagnostics": diagnostics,
        "processes": status,
        "windows": windows,
    }
    (out / "metrics.json").write_text(json.dumps(strict_json(metrics), indent=2) + "\n")  # NaN -> null
    return metrics


def _track_errors(seq: SyntheticSequence, tracks: np.ndarray, newest: int) -> dict[str, Any]:
    """published_track_errors of the window [newest - T + 1, newest] against the ground truth seeded on its
    first frame; {} when the sequence holds none for that frame (a window the node cut elsewhere)."""
    from dgslrm_ros.evaluation.tracking import published_track_errors

    first = newest - tracks.shape[1] + 1
    seeded = seq.pixel_tracks_seeded_at(first)
    if seeded is None:
        return {}
    gt = seeded[first:newest + 1]  # [T, H, W, 3]
    return published_track_errors(tracks, gt.permute(1, 2, 0, 3).numpy(), seq.K[0].numpy(),
                                  seq.world_T_cam[0, first].numpy())


def _plotted_ground_truth(seq: SyntheticSequence, first: int) -> np.ndarray:
    """[M, frames, 3] GT tracks for the track plot: a grid of PLOT_GT_LINES_PER_SIDE^2 of the pixels seeded at
    the window's first frame, else the sequence's frame-0 grid."""
    tracks = seq.pixel_tracks_seeded_at(first)  # [frames, H, W, 3]
    if tracks is None:
        return seq.track_points.numpy()
    step = max(1, tracks.shape[2] // PLOT_GT_LINES_PER_SIDE)
    grid = tracks[:, step // 2::step, step // 2::step]
    return grid.reshape(grid.shape[0], -1, 3).transpose(0, 1).numpy()


def _print_summary(out: Path, metrics: dict[str, Any]) -> None:
    def fmt(value: float, unit: str) -> str:
        return "n/a" if value != value else f"{value:.2f} {unit}"

    print(f"\n[demo] outputs in {out.resolve()}:")
    print(f"  bag (mcap, inputs + every output over DDS): {out / 'bag'}  {metrics['topics_recorded']}")
    print(f"  PLY (3DGS layout), one per window:          {out}/gaussians_*.ply")
    print(f"  renders vs input / novel views (PNG):       {out}/rendered_*.png, {out}/novel_view_*.png")
    print(f"  track plot:                                 {out / 'tracks.png'}")
    print(f"  metrics:                                    {out / 'metrics.json'}   logs: {out / 'logs'}")
    print(f"  view it in a browser (splats, motion, tracks): dgslrm view {out}   (needs: pip install 'viser==1.1.1')")
    print(f"[demo] windows received {metrics['windows_received']}/{metrics['windows_expected']}, latency "
          f"{fmt(metrics['latency_s_mean'], 's')} mean, PSNR rendered vs input "
          f"{fmt(metrics['psnr_rendered_vs_input_db'], 'dB')}, novel view {fmt(metrics['psnr_novel_view_db'], 'dB')}, "
          f"track error {fmt(metrics['track_epe_m'], 'm')} (standing still: {fmt(metrics['track_epe_still_m'], 'm')})")
    print(f"[demo] motion of the {metrics['moving_tracks']} tracks on moving objects: error "
          f"{fmt(metrics['moving_flow_epe_m'], 'm')} against {fmt(metrics['moving_flow_epe_still_m'], 'm')} "
          f"for tracks that stand still (lower is better)")
    if metrics["weights_untrained"]:
        print("[demo] NOTE: the weights are UNTRAINED (no shipped checkpoint yet): the pipeline runs end to end, "
              "but the reconstruction quality above is that of a random model. Train with `dgslrm train` and pass "
              "--checkpoint.")
    else:
        print(f"[demo] weights: {metrics['weights']}")
