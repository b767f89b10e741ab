"""Files -> `ViewerWindow`s: what `dgslrm view SOURCE` accepts, recognised by shape, not by name.

* a window file (`*.safetensors`, `DeformableGaussians.save`, e.g. `replay --save-windows`): one
  window with its exact per-frame offsets;
* a folder of window files (`OUT/windows/`);
* a 3DGS PLY (`export`, the node's `~/save_ply`, other tools): one static set;
* a bag (folder with metadata.yaml, or an .mcap/.db3 file) holding the node's `gaussians` topic: one
  window per cloud, with the `trajectories` of the same stamp, the input cameras and images where
  the bag has them (the demo's bag records inputs and outputs) and `/diagnostics` figures;
* a `replay` output folder (`output_bag/` + `metrics.json`, optionally `windows/`): the output bag,
  exact offsets from `windows/` where saved, and the input cameras from the input bag named in
  metrics.json when it is still there;
* a `demo` output folder (`bag/` + `metrics.json`).
Every failure is a ViewerError naming the path, what was expected and what came.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from dgslrm_ros.viewer.scene import CameraView, Tracks, ViewerError, ViewerWindow, window_from_cloud, \
    window_from_deformable, window_from_static

# receive time - stamp is a latency only when the stamps are wall-clock (synthetic bags start at fixed times)
MAX_PLAUSIBLE_LATENCY_S = 600.0
EXPECTED = ("a window file (.safetensors from `dgslrm replay --save-windows`), a folder of them, a 3DGS .ply, "
            "a bag holding the `gaussians` topic (folder with metadata.yaml, or .mcap/.db3), or a `dgslrm replay` "
            "/ `dgslrm demo` output folder")


def load_source(path: str | Path) -> list[ViewerWindow]:
    """Every window `path` holds, oldest first (see the module docstring for what is accepted)."""
    path = Path(path)
    if not path.exists():
        raise ViewerError(f"{path}: no such file or folder; expected {EXPECTED}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            return [load_window_file(path)]
        if suffix == ".ply":
            return [load_ply(path)]
        if suffix in (".mcap", ".db3"):
            return load_bag(path)
        raise ViewerError(f"{path}: unknown file type {suffix!r}; expected {EXPECTED}")
    if (path / "metadata.yaml").is_file() or any(path.glob("*.mcap")) or any(path.glob("*.db3")):
        return load_bag(path)
    if (path / "output_bag").is_dir():
        return load_replay_folder(path)
    if (path / "bag").is_dir():
        return load_bag(path / "bag", metrics=_read_metrics(path))
    window_files = sorted(path.glob("*.safetensors"))
    if window_files:
        return [load_window_file(p) for p in window_files]
    found = sorted(p.name for p in path.iterdir())[:10]
    raise ViewerError(f"{path}: a folder with none of output_bag/, bag/, metadata.yaml, *.mcap, *.safetensors "
                      f"(it holds {found or 'nothing'}); expected {EXPECTED}")


def load_window_file(path: Path, label: str | None = None) -> ViewerWindow:
    from dgslrm_ros.core.gaussians import DeformableGaussians, GaussiansFileError

    try:
        gaussians = DeformableGaussians.load(path)
    except GaussiansFileError as error:
        raise ViewerError(str(error)) from error
    return window_from_deformable(gaussians, label or path.name, figures={"source": str(path)})


def load_ply(path: Path) -> ViewerWindow:
    from dgslrm_ros.core.ply import PlyFormatError, read_ply

    try:
        gaussians = read_ply(path)
    except (PlyFormatError, OSError, ValueError) as error:
        raise ViewerError(f"{path}: not a readable 3DGS PLY ({error}); expected the layout `dgslrm export` "
                          "writes (x y z ... f_dc_0..2 opacity scale_0..2 rot_0..3)") from error
    return window_from_static(gaussians, path.name, figures={"source": str(path)})


def load_replay_folder(path: Path) -> list[ViewerWindow]:
    """`dgslrm replay` output: output bag + exact offsets from windows/ + input cameras of the input bag."""
    metrics = _read_metrics(path)
    windows = load_bag(path / "output_bag", metrics=metrics)
    input_bag = Path(metrics["bag"]) if isinstance(metrics.get("bag"), str) else None
    if input_bag is not None and input_bag.exists():
        cameras = _cameras_of_bag(input_bag, [w.timestamps for w in windows])
        windows = [replace(w, cameras=c) if c else w for w, c in zip(windows, cameras)]
    files = sorted((path / "windows").glob("window_*.safetensors"))
    if files and len(files) != len(windows):
        files = []  # a partial windows/ cannot be paired with the bag's clouds by order
    out = []
    for window, file in zip(windows, files or [None] * len(windows)):
        exact = load_window_file(file) if file is not None else None
        # replay numbers window files in the bag's order; their times are relative to the first frame
        same = exact is not None and exact.num_frames == window.num_frames and np.allclose(
            exact.timestamps - exact.timestamps[0], window.timestamps - window.timestamps[0], atol=1e-3)
        if same:
            window = replace(exact, label=window.label, timestamps=window.timestamps, tracks=window.tracks,
                             cameras=window.cameras, figures={**window.figures, "offsets from": file.name})
        out.append(window)
    return out


def _read_metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ViewerError(f"{path}: not readable JSON ({error}); expected the metrics.json replay/demo write") from error


# --------------------------------------------------------------------------------------- bags
def load_bag(path: Path, metrics: dict[str, Any] | None = None) -> list[ViewerWindow]:
    """One window per `gaussians` cloud of the bag (see the module docstring)."""
    from dgslrm_ros.bags import topics
    from dgslrm_ros.bags.reader import BagReadError, diagnostic_values, read_messages
    from dgslrm_ros.convert.errors import ConversionError
    from dgslrm_ros.convert.pointcloud import unpack_gaussians, unpack_trajectories
    from dgslrm_ros.convert.stamps import header_stamp_ns

    clouds: list[tuple[int, int, Any]] = []  # (stamp ns, log time ns, GaussianCloud)
    trajectories: dict[int, Any] = {}
    diagnostics: list[tuple[int, dict[str, str]]] = []
    try:
        for topic, log_time, msg in read_messages(path, [topics.GAUSSIANS, topics.TRAJECTORIES, topics.DIAGNOSTICS]):
            stamp = header_stamp_ns(msg)
            if topic == topics.GAUSSIANS:
                clouds.append((stamp, log_time, unpack_gaussians(msg)))
            elif topic == topics.TRAJECTORIES:
                trajectories[stamp] = unpack_trajectories(msg)
            else:
                diagnostics.append((log_time, diagnostic_values(msg)))
    except BagReadError as error:
        where = "" if str(error).startswith(str(path)) else f"{path}: "
        raise ViewerError(f"{where}{error}; expected a bag with the node's `gaussians` topic. A bag of camera "
                          f"inputs only is reconstructed first: `dgslrm replay BAG --out DIR --save-windows`, "
                          f"then `dgslrm view DIR`") from error
    except ConversionError as error:
        raise ViewerError(f"{path}: a message does not have the contract's layout: {error}") from error
    if not clouds:
        raise ViewerError(f"{path}: the bag has no `gaussians` messages; expected a bag recorded from dgslrm_node "
                          "(`dgslrm demo`'s bag/) or written by `dgslrm replay` (output_bag/)")
    windows = []
    for k, (stamp_ns, log_time, cloud) in enumerate(sorted(clouds, key=lambda c: c[0])):
        stamp = stamp_ns / 1e9
        tracks = tracks_from_cloud(trajectories[stamp_ns], stamp) if stamp_ns in trajectories else None
        figures = window_figures(latency_s=(log_time - stamp_ns) / 1e9,
                                 diagnostics=_diagnostics_after(diagnostics, log_time), metrics=metrics)
        windows.append(window_from_cloud(cloud.means, cloud.quats, cloud.scales, cloud.opacities, cloud.colors,
                                         cloud.velocities, stamp, label=f"window {k} (t = {stamp:.3f} s)",
                                         tracks=tracks, figures=figures))
    cameras = _cameras_of_bag(path, [w.timestamps for w in windows])
    return [replace(w, cameras=c) if c else w for w, c in zip(windows, cameras)]


def tracks_from_cloud(cloud: Any, stamp: float) -> Tracks | None:
    """A TrajectoryCloud stamped `stamp` -> Tracks on absolute times (None without samples)."""
    if cloud.tracks.shape[0] == 0 or cloud.tracks.shape[1] == 0:
        return None
    return Tracks(points=cloud.tracks, timestamps=stamp + cloud.t[0].astype(np.float64),
                  track_ids=cloud.track_ids, visible=cloud.visible)


def window_figures(latency_s: float | None = None, diagnostics: dict[str, str] | None = None,
                   metrics: dict[str, Any] | None = None) -> dict[str, str]:
    """Side-panel figures from what a source recorded: receive latency, /diagnostics, metrics.json."""
    out: dict[str, str] = {}
    diagnostics = diagnostics or {}
    metrics = metrics or {}
    if latency_s is not None and 0.0 < latency_s < MAX_PLAUSIBLE_LATENCY_S:
        out["latency (received - stamp)"] = f"{latency_s:.2f} s"
    for key, label, unit in (("last_reconstruction_s", "reconstruction time", "s"),
                             ("last_psnr_db", "PSNR rendered vs input", "dB")):
        value = _finite(diagnostics.get(key))
        if value is not None:
            out[label] = f"{value:.2f} {unit}"
    for key, label, unit in (("latency_s_mean", "latency, mean of the run", "s"),
                             ("seconds_per_window", "reconstruction, mean of the run", "s"),
                             ("psnr_rendered_vs_input_db", "PSNR vs input, mean of the run", "dB"),
                             ("input_psnr", "PSNR vs input, mean of the run", "dB")):
        value = _finite(metrics.get(key))
        if value is not None:
            out[label] = f"{value:.2f} {unit}"
    novel = metrics.get("novel_view") if isinstance(metrics.get("novel_view"), dict) else {}
    for value in (_finite(metrics.get("psnr_novel_view_db")), _finite(novel.get("psnr"))):
        if value is not None:
            out["novel-view PSNR, mean of the run"] = f"{value:.2f} dB"
    if diagnostics.get("weights"):
        out["weights"] = _short_paths(diagnostics["weights"])
    return out


def _short_paths(text: str) -> str:
    """'checkpoint /long/path/to/checkpoints/small' -> 'checkpoint .../checkpoints/small' (panel width)."""
    words = []
    for word in str(text).split(" "):
        parts = Path(word).parts
        words.append(str(Path("...", *parts[-2:])) if word.startswith("/") and len(parts) > 3 else word)
    return " ".join(words)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _diagnostics_after(diagnostics: list[tuple[int, dict[str, str]]], log_time: int) -> dict[str, str]:
    """The first /diagnostics published at or after a window's cloud (it reports that window)."""
    later = [values for t, values in diagnostics if t >= log_time and values]
    return later[0] if later else {}


def _cameras_of_bag(path: Path, window_stamps: list[np.ndarray]) -> list[tuple[CameraView, ...]]:
    """Input cameras (pose + intrinsics + image) at each window's frames, where the bag has them."""
    from dgslrm_ros.bags import topics
    from dgslrm_ros.bags.reader import BagReadError, read_messages
    from dgslrm_ros.convert.camera_info import camera_info_to_intrinsics, opencv_to_library_K
    from dgslrm_ros.convert.image import image_to_rgb, thumbnail
    from dgslrm_ros.convert.pose import pose_to_matrix
    from dgslrm_ros.convert.stamps import STAMP_MATCH_NS, header_stamp_ns, nearest_stamped

    wanted = np.array(sorted({int(round(s * 1e9)) for stamps in window_stamps for s in stamps}), np.int64)
    if not wanted.size:
        return [() for _ in window_stamps]

    def wanted_near(stamp_ns: int) -> bool:
        """Keep only messages at some window frame (windows overlap: one message can serve several)."""
        i = int(np.searchsorted(wanted, stamp_ns))
        return any(abs(int(wanted[j]) - stamp_ns) <= STAMP_MATCH_NS for j in (i - 1, i) if 0 <= j < len(wanted))

    poses: dict[int, np.ndarray] = {}
    images: dict[int, np.ndarray] = {}
    intrinsics = None
    try:
        for topic, _, msg in read_messages(path, [topics.IMAGE, topics.CAMERA_INFO, topics.CAMERA_POSE]):
            if topic == topics.CAMERA_INFO:
                intrinsics = intrinsics or camera_info_to_intrinsics(msg)
                continue
            stamp_ns = header_stamp_ns(msg)
            if not wanted_near(stamp_ns):
                continue
            if topic == topics.CAMERA_POSE:
                poses[stamp_ns] = pose_to_matrix(getattr(msg.pose, "pose", msg.pose))  # PoseStamped or Odometry
            else:
                images[stamp_ns] = thumbnail(image_to_rgb(msg))
    except BagReadError:
        return [() for _ in window_stamps]  # a bag of outputs only (replay): no cameras to draw
    except ValueError:
        return [() for _ in window_stamps]  # an input we cannot convert must not hide the Gaussians
    if intrinsics is None or not poses:
        return [() for _ in window_stamps]
    K = opencv_to_library_K(np.asarray(intrinsics.K))
    out = []
    for stamps in window_stamps:
        cams = []
        for s in stamps:
            pose = nearest_stamped(poses, int(round(s * 1e9)))
            if pose is not None:
                cams.append(CameraView(world_T_cam=pose, K=K, width=intrinsics.width, height=intrinsics.height,
                                       stamp=float(s), image=nearest_stamped(images, int(round(s * 1e9)))))
        out.append(tuple(cams))
    return out
