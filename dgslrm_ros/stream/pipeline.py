"""The windowed streaming reconstructor shared by `dgslrm_node` and `dgslrm replay` (no ROS here).

Two sides, one lock:

* **Callbacks** (`add_camera_info`, `add_pose`, `add_image`) only check and enqueue: an image passes
  the rate gate, waits (bounded, in stream time) for a pose at its stamp, then joins the window
  buffer; every refusal is counted by reason and logged throttled, nothing raises.
* **Worker** (`pop_window`, `reconstruct`): hands each window to stream/reconstruction.py's
  `WindowReconstructor` (prepare, cues, model, metric world, render, tracks, each a timed stage), counts
  failures and releases the window's memory.

Windows wait in a queue of `max_pending_windows`; when the model falls behind the oldest is dropped
(counted "window_overflow"): a robot wants the newest reconstruction, not a growing backlog.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

import numpy as np
import torch

from dgslrm_ros.core.device import resolve_device
from dgslrm_ros.stream.config import FROM_MODEL, PIPELINE_PARAMETERS, PipelineConfig
from dgslrm_ros.stream.frames import CameraModel, Frame, FrameError, check_image
from dgslrm_ros.stream.memory import process_rss_bytes, release_after_window
from dgslrm_ros.stream.pose_buffer import PoseBuffer, PoseLookup, check_pose
from dgslrm_ros.stream.reconstruction import (Logger, ReconstructionError, WindowReconstructor, WindowResult,
                                              check_renderer, load_pipeline_model)
from dgslrm_ros.stream.window_buffer import Window, WindowBuffer

# Every drop reason diagnostics report (always present, 0 until it happens).
DROP_REASONS: tuple[str, ...] = (
    "rate",  # image faster than frame_rate
    "no_camera_info",  # image before any valid camera_info
    "no_pose",  # no pose within sync_tolerance of the image stamp (after waiting for a late one)
    "out_of_order",  # image stamp less than IMAGE_RESET_S older than the previous one (jitter): that image alone
    "stamp_backwards",  # image stamp IMAGE_RESET_S or more older than the previous one (bag loop): buffers reset
    "duplicate_stamp",  # same stamp as the previous image
    "bad_stamp",  # NaN/inf stamp
    "bad_image",  # not uint8 [H, W, 3], or a size other than camera_info's
    "short_sequence",  # admitted frames of a sequence that ended before filling one window
    "window_overflow",  # windows (not frames) dropped because the worker fell behind
    "bad_pose",  # NaN / non-rigid pose
    "pose_frame_mismatch",  # pose in a frame other than world_frame
    "pose_stamp_backwards",  # pose stamp more than POSE_RESET_S older than the newest (poses reset)
    "bad_camera_info",  # unusable camera_info (kept the previous one)
)
# The reasons that lose an image (the others lose poses, camera_infos or whole windows).
FRAME_DROP_REASONS: tuple[str, ...] = ("rate", "no_camera_info", "no_pose", "out_of_order", "stamp_backwards",
                                       "duplicate_stamp", "bad_stamp", "bad_image", "short_sequence")
POSE_WAIT_S = 0.5  # stream seconds an image waits for a late pose
POSE_RESET_S = 1.0  # a pose this much older than the newest means the pose stream restarted
# An image this much (or more) older than the previous one means the stream restarted (bag loop,
# restarted driver): the window buffer resets. Less is transport jitter (separate DDS samples can be
# delivered out of order): only that image is dropped, the window in progress and track ids are kept.
IMAGE_RESET_S = 1.0
MAX_WAITING_IMAGES = 32  # images waiting for a pose (bounded memory under a pose outage)
RATE_SLACK = 0.1  # fraction of a frame period a frame may come before its due time (stamp jitter)
LOG_THROTTLE_S = 5.0


class StreamingReconstructor:
    """Windowed reconstruction of a posed image stream; see the module docstring for the threading."""

    def __init__(self, config: PipelineConfig, logger: Logger | None = None, *,
                 model: torch.nn.Module | None = None, weights: str | None = None) -> None:
        """`model` (optional, any module with DGSLRM's forward and `.config`) replaces checkpoint loading.

        `self.config` is `config` resolved for the model (`PipelineConfig.for_model`): the window, keyframe
        stride and input size every reader below and every caller after construction sees.
        """
        config.validate()
        self._log_fn = logger
        self._last_log: dict[str, float] = {}
        self.device = resolve_device(config.device, "parameter 'device'")
        check_renderer(config.renderer, self.device)
        if model is None:
            self.model, self.weights = load_pipeline_model(config, self.device, self._log)
        else:
            self.model, self.weights = model.to(self.device).eval(), weights or "custom model"
        self.config = config = config.for_model(self.model.config)
        self.reconstruction = WindowReconstructor(config, self.model, self.weights, self.device)
        self._lock = threading.Lock()
        self._camera: CameraModel | None = None
        self._poses = PoseBuffer()
        self._waiting: deque[tuple[float, np.ndarray, CameraModel]] = deque()
        self._windows = WindowBuffer(config.window_frames, config.window_stride, config.frame_period)
        self._pending: deque[Window] = deque()
        self._drops: Counter[str] = Counter({reason: 0 for reason in DROP_REASONS})
        self._counts: Counter[str] = Counter()
        self._last_image_stamp: float | None = None
        self._next_due: float | None = None  # earliest stamp (minus slack) of the next admitted frame
        # worker-side state (only the worker thread touches these, but diagnostics read them)
        self._last_psnr = float("nan")
        self._last_timings: dict[str, float] = {}
        self._rss_after_window: int | None = None  # bytes, right after the last window's release

    # ------------------------------------------------------------------ logging
    def _log(self, level: str, message: str, key: str | None = None) -> None:
        """Log through the caller's logger; with `key`, at most once per LOG_THROTTLE_S per key."""
        if key is not None:
            now = time.monotonic()
            if now - self._last_log.get(key, -math.inf) < LOG_THROTTLE_S:
                return
            self._last_log[key] = now
        if self._log_fn is not None:
            self._log_fn(level, message)

    def _drop(self, reason: str, message: str | None = None, count: int = 1) -> str:
        self._drops[reason] += count
        if message:
            self._log("warn", f"dropped ({reason}): {message}", key=reason)
        return reason

    # ------------------------------------------------------------------ callbacks
    def add_camera_info(self, K: np.ndarray, D: np.ndarray, distortion_model: str, width: int, height: int) -> None:
        """Intrinsics as CameraInfo carries them (K with pixel centres at integers)."""
        try:
            camera = CameraModel.from_camera_info(K, D, distortion_model, width, height)
        except (FrameError, ValueError, TypeError) as error:
            with self._lock:
                self._drop("bad_camera_info", str(error))
            return
        with self._lock:
            old = self._camera
            same = (old is not None and np.array_equal(old.K, camera.K) and np.array_equal(old.D, camera.D)
                    and (old.width, old.height, old.distortion_model) == (camera.width, camera.height,
                                                                         camera.distortion_model))
            if not same:  # keep the old object (and its undistortion grid) when nothing changed
                self._camera = camera
                if old is None:
                    self._log("info", f"camera_info: {width}x{height}, {distortion_model}"
                                      f"{' (undistorting)' if camera.distorted else ''}")

    def add_pose(self, stamp: float, world_T_cam: np.ndarray, frame_id: str) -> None:
        """world_T_cam [4, 4] of the camera optical frame at `stamp` (s), in frame `frame_id`."""
        with self._lock:
            stamp = _seconds(stamp)
            if stamp is None:
                self._drop("bad_pose", "pose stamp is not a finite number of seconds")
                return
            reason = check_pose(world_T_cam)
            if reason is not None:
                self._drop("bad_pose", reason)
                return
            if frame_id and frame_id != self.config.world_frame:
                self._drop("pose_frame_mismatch", f"pose is in frame '{frame_id}', expected world_frame "
                                                  f"'{self.config.world_frame}' (set the parameter or remap)")
                return
            newest = self._poses.newest_stamp
            if newest is not None and stamp < newest - POSE_RESET_S:
                self._drop("pose_stamp_backwards", f"pose stamp {stamp:.3f} is {newest - stamp:.3f} s before the "
                                                   "newest; the pose stream restarted, old poses discarded")
                self._poses.clear()
            self._poses.add(float(stamp), world_T_cam)
            self._resolve_waiting()

    def add_image(self, stamp: float, rgb: np.ndarray) -> str | None:
        """RGB uint8 [H, W, 3] at `stamp` (s) -> None if taken (now or once its pose arrives), else why not."""
        with self._lock:
            self._counts["frames_received"] += 1
            raw_stamp, stamp = stamp, _seconds(stamp)
            if stamp is None:
                return self._drop("bad_stamp", f"image stamp {raw_stamp!r} is not a finite number of seconds")
            camera = self._camera
            if camera is None:
                return self._drop("no_camera_info", "no valid camera_info received yet; images are dropped until "
                                                    "one arrives (check the camera_info topic and its remapping)")
            problem = check_image(rgb, camera)
            if problem is not None:
                return self._drop("bad_image", problem)
            last = self._last_image_stamp
            if last is not None and last - stamp >= IMAGE_RESET_S:
                self._reset(stamp)
                self._last_image_stamp = float(stamp)
                return self._drop("stamp_backwards", f"image stamp went back {last - stamp:.3f} s (>= "
                                                     f"{IMAGE_RESET_S:g} s: bag loop or restarted stream?); "
                                                     "window buffer reset, a new window sequence starts")
            if last is not None and stamp < last:
                return self._drop("out_of_order", f"image stamp {stamp:.3f} is {last - stamp:.3f} s older than the "
                                                  f"previous image {last:.3f} (less than {IMAGE_RESET_S:g} s: "
                                                  "out-of-order delivery); this image dropped, the window in "
                                                  "progress kept")
            if last is not None and stamp == last:
                return self._drop("duplicate_stamp")
            self._last_image_stamp = float(stamp)
            period = self.config.frame_period
            # Admission on a grid of due times: the long-run rate is frame_rate exactly, a frame a
            # little early (jitter) still counts, and after a gap the grid restarts at the new frame.
            previous_due = self._next_due
            if previous_due is not None and stamp < previous_due - RATE_SLACK * period:
                return self._drop("rate")
            on_grid = previous_due is not None and stamp - previous_due < period
            self._next_due = (previous_due + period) if on_grid else float(stamp) + period
            if len(self._waiting) >= MAX_WAITING_IMAGES:
                self._waiting.popleft()
                self._drop("no_pose", f"more than {MAX_WAITING_IMAGES} images waiting for poses; oldest dropped")
            self._waiting.append((float(stamp), rgb, camera))
            if stamp in self._resolve_waiting():
                self._next_due = previous_due  # the next image may take the slot
                return "no_pose"
            return None

    def _resolve_waiting(self, final: bool = False) -> list[float]:
        """Give waiting images their pose, oldest first (windows need time order); lock held.

        Returns the stamps of the images dropped for want of a pose.
        """
        newest = self._last_image_stamp
        tolerance = self.config.sync_tolerance
        dropped: list[float] = []
        while self._waiting:
            stamp, rgb, camera = self._waiting[0]
            expired = final or (newest is not None and newest - stamp > POSE_WAIT_S)
            result = self._poses.lookup(stamp, tolerance, final=expired)
            if result.status is PoseLookup.WAIT:
                break
            self._waiting.popleft()
            if result.status is PoseLookup.MISSING:
                self._drop("no_pose", f"no pose within sync_tolerance={tolerance} s of image stamp {stamp:.3f}")
                dropped.append(stamp)
                continue
            self._admit(Frame(stamp, rgb, result.world_T_cam, camera))
        return dropped

    def _admit(self, frame: Frame) -> None:
        self._counts["frames_admitted"] += 1
        windows, ended = self._windows.add(frame)
        if ended is not None:
            self._log("info", f"stamp jumped forward beyond {self._windows.jump_seconds:.2f} s: new window sequence")
            self._counts["sequence_restarts"] += 1
            if ended.lost_frames:
                self._drop("short_sequence", f"{ended.lost_frames} frames before the jump never filled a window",
                           count=ended.lost_frames)
        for window in windows:
            self._enqueue(window)

    def _enqueue(self, window: Window) -> None:
        self._counts["windows_emitted"] += 1
        self._pending.append(window)
        while len(self._pending) > self.config.max_pending_windows:
            self._pending.popleft()
            self._drop("window_overflow", "reconstruction is slower than the window rate; oldest window dropped")

    def _reset(self, stamp: float) -> None:
        """Stamps went backwards: close the sequence (its tail window still counts), forget the future."""
        self._close_sequence(None)
        self._counts["sequence_restarts"] += 1
        self._next_due = None
        # Poses from the old timeline's future would otherwise be matched to the new one's images.
        self._poses.drop_newer_than(stamp + POSE_RESET_S)

    def reset(self) -> None:
        """Forget everything buffered (the node's ~/reset): images waiting for poses, poses, the window in
        progress and pending windows. Calibration is kept. The next window starts a new sequence, so the
        track registry restarts (new tracks, ids never reused: the id counter keeps counting)."""
        with self._lock:
            self._waiting.clear()
            self._poses.clear()
            sequence = self._windows.sequence
            self._windows.end_sequence()  # a tail window, if any, is discarded with the rest
            if self._windows.sequence == sequence:
                self._windows.sequence += 1
            self._pending.clear()
            self._last_image_stamp = None
            self._next_due = None
            self._counts["resets"] += 1
        self.reconstruction.reset_tracks()

    def flush(self) -> None:
        """End of stream (replay): resolve waiting images and emit the tail window of the sequence."""
        with self._lock:
            self._close_sequence("frames at the end never filled a window")

    def _close_sequence(self, warning: str | None) -> None:
        """Resolve waiting images, emit the sequence's tail window, count its frames no window took
        (logged with `warning` when given)."""
        self._resolve_waiting(final=True)
        ended = self._windows.end_sequence()
        if ended.window is not None:
            self._enqueue(ended.window)
        if ended.lost_frames:
            self._drop("short_sequence", warning and f"{ended.lost_frames} {warning}", count=ended.lost_frames)

    # ------------------------------------------------------------------ worker
    def pop_window(self) -> Window | None:
        """The oldest pending window, or None."""
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def pending_windows(self) -> int:
        with self._lock:
            return len(self._pending)

    def reconstruct(self, window: Window) -> WindowResult:
        """Run the model on one window; ReconstructionError on any failure (the pipeline goes on)."""
        start = time.perf_counter()
        try:
            result = self.reconstruction.reconstruct(window, start)
        except Exception as error:  # noqa: BLE001 - one bad window must never stop the stream
            with self._lock:
                self._counts["reconstruction_failures"] += 1
            if isinstance(error, ReconstructionError):
                raise
            raise ReconstructionError(
                f"window {window.index} of sequence {window.sequence} (stamp {window.stamp:.3f}) failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        finally:
            # The window's transient tensors are freed by now; without this glibc keeps their pages and
            # its fragmented heaps grow by tens of MB a minute (measured; see stream/memory.py).
            tick = time.perf_counter()
            release_after_window()
            trim_seconds = time.perf_counter() - tick
            rss = process_rss_bytes()  # between windows: free of where in a window a sample falls
        result.timings["release_memory"] = trim_seconds
        with self._lock:
            self._rss_after_window = rss
            self._counts["windows_reconstructed"] += 1
            self._last_psnr = result.psnr
            self._last_timings = dict(result.timings)
        return result

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, float | int | str]:
        """Flat key -> value status for /diagnostics (drop counts by reason always present)."""
        with self._lock:
            out: dict[str, float | int | str] = {
                "buffer_fill": len(self._windows) / self.config.window_frames,
                "buffered_frames": len(self._windows),
                "waiting_for_pose": len(self._waiting),
                "pending_windows": len(self._pending),
                "max_pending_windows": self.config.max_pending_windows,
            }
            for key in ("frames_received", "frames_admitted", "windows_emitted", "windows_reconstructed",
                        "reconstruction_failures", "sequence_restarts", "resets"):
                out[key] = int(self._counts[key])
            for reason in sorted(self._drops):
                out[f"dropped_{reason}"] = int(self._drops[reason])
            out["dropped_frames_total"] = int(sum(self._drops[k] for k in FRAME_DROP_REASONS))
            out["last_reconstruction_s"] = self._last_timings.get("total", float("nan"))
            for stage, seconds in self._last_timings.items():
                out[f"last_{stage}_s"] = seconds
            out["last_psnr_db"] = self._last_psnr
            if self._rss_after_window is not None:
                out["memory_rss_after_window_mb"] = self._rss_after_window / (1024.0 * 1024.0)
        out["device"] = str(self.device)
        out["weights"] = self.weights
        out["renderer"] = self.config.renderer
        # the parameters left to the checkpoint (window_frames, window_stride, ...), as resolved by for_model
        out.update({s.name: getattr(self.config, s.name) for s in PIPELINE_PARAMETERS if s.sentinel == FROM_MODEL})
        out["tracks_active"] = self.reconstruction.registry.active
        out["tracks_ended"] = self.reconstruction.registry.ended_total
        return out

    def dropped(self) -> dict[str, int]:
        """Drop counts by reason (a copy)."""
        with self._lock:
            return dict(self._drops)


def _seconds(stamp: object) -> float | None:
    """A stamp as float seconds (numpy scalars welcome), None when not a finite number."""
    if isinstance(stamp, (bool, str, bytes)):
        return None
    try:
        value = float(stamp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
