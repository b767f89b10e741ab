"""Reconstruction of one admitted window, stage by stage (the worker side of stream/pipeline.py).

    prepare (undistort, crop, resize, normalise poses) -> cues -> model (+ refinement) -> metric world,
    pruned -> render from the newest camera -> tracks with stable ids

Each stage is a method returning a small typed value and is timed on its own (`WindowResult.timings`).
The result stays in the model's terms (tensors, numpy): the node and `dgslrm replay` pack it into
messages with convert/window.py, so nothing here imports `convert`.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.normalization import SceneNormalization, normalize_window
from dgslrm_ros.core.timing import synchronize
from dgslrm_ros.geometry.cues import CueConfig, GeometryCues, compute_cues
from dgslrm_ros.geometry.track_trust import trusted_seed_pixels
from dgslrm_ros.model.checkpoint import SHIPPED_CHECKPOINT
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.config import ModelConfig, ModelConfigError
from dgslrm_ros.stream.config import FROM_MODEL, ConfigError, PipelineConfig
from dgslrm_ros.stream.flow_cache import PairFlowCache
from dgslrm_ros.stream.frames import stack_frames
from dgslrm_ros.stream.sweep_cache import KeyframeSweepCache
from dgslrm_ros.stream.track_registry import TrackRegistry, TrackSet, seed_tracks
from dgslrm_ros.stream.window_buffer import Window

Logger = Callable[[str, str], None]  # (level: debug|info|warn|error, message)


class ReconstructionError(DgslrmError, RuntimeError):
    """A window could not be reconstructed; the caller logs it and goes on with the next window."""


@dataclass
class WindowResult:
    """One reconstructed window in the model's terms (metric world frame); convert/window.py packs it."""

    stamp: float  # newest frame of the window (seconds)
    frame_id: str  # world frame
    stamps: np.ndarray  # [T] float64 absolute seconds
    deformable: DeformableGaussians  # on the CPU, pruned, timestamps relative to stamps[0]
    tracks: TrackSet  # [M, T] with ids stable across windows
    rendered: torch.Tensor  # [3, h, w] in [0, 1], from the newest input camera
    input_frame: torch.Tensor  # [3, h, w] in [0, 1], the newest frame at the model input size
    psnr: float  # of `rendered` vs `input_frame`, dB
    K: np.ndarray  # [T, 3, 3] intrinsics of the model-size images
    world_T_cam: np.ndarray  # [T, 4, 4] input cameras, metric
    normalization: SceneNormalization
    # All keyframe-pixel Gaussians before pruning, ordered (keyframe, row, column), metric, on the
    # model's device: for evaluation (a GT query pixel -> its predicted trajectory); not published.
    unpruned: DeformableGaussians
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, the whole window as "total"
    sequence: int = 0
    index: int = 0

    @property
    def seconds(self) -> float:
        """Reconstruction time of the window."""
        return self.timings["total"]


@dataclass(frozen=True)
class PreparedWindow:
    """A window at the model's input size, its poses also in the model's normalised frame."""

    images: torch.Tensor  # [T, 3, h, w] in [0, 1]
    K: torch.Tensor  # [T, 3, 3] of the model-size images
    world_T_cam: torch.Tensor  # [T, 4, 4] metric
    stamps: np.ndarray  # [T] float64 absolute seconds
    norm_T_cam: torch.Tensor  # [T, 4, 4] float64, normalised frame
    normalization: SceneNormalization
    relative: torch.Tensor  # [T] float32 seconds since the first frame (epoch seconds do not fit float32)


def check_renderer(renderer: str, device: torch.device) -> None:
    """'gsplat' needs CUDA and an importable gsplat: refused by name at start-up, not failed per window."""
    if renderer != "gsplat":
        return
    from dgslrm_ros.render.rasterize_gsplat import gsplat_importable

    if device.type != "cuda":
        raise ConfigError(f"parameter 'renderer': 'gsplat' runs on CUDA only, but the device is {device}; "
                          "use auto (gsplat on CUDA when installed, else torch) or torch")
    if not gsplat_importable():
        raise ConfigError("parameter 'renderer': 'gsplat' requested but `import gsplat` fails; install "
                          "gsplat==1.5.3 or use auto or torch")


def load_pipeline_model(config: PipelineConfig, device: torch.device, log: Logger) -> tuple[torch.nn.Module, str]:
    """(model in eval mode, weights status). Empty `checkpoint` = the shipped one; without it, a seeded
    untrained `small` model so the pipeline still runs end to end (said loudly: outputs are noise). The
    config is checked against the model by `PipelineConfig.for_model`, which the pipeline runs next."""
    from dgslrm_ros.model.checkpoint import load_model
    from dgslrm_ros.model.dgslrm import DGSLRM

    path = Path(config.checkpoint).expanduser() if config.checkpoint else SHIPPED_CHECKPOINT
    if config.checkpoint and not path.exists():
        raise ConfigError(f"parameter 'checkpoint': {path} does not exist; expected a checkpoint folder "
                          "(model.safetensors + config.json) or a model.safetensors file, or '' for the shipped one")
    if path.exists() and (path.is_file() or (path / "model.safetensors").exists()):
        model = load_model(path, device)
        if config.method == "network":
            return model.eval(), f"checkpoint {path}"
        # no weights are used: the checkpoint gives the default window layout, the config may change it
        preset = with_given_layout(model.config, config)
    else:
        preset = fallback_model_config(config)
        if config.method == "network":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = DGSLRM(preset)
            log("error", f"weights: untrained -- no checkpoint at {path}; running a randomly initialised 'small' "
                         "model, every output is meaningless until a trained checkpoint is installed")
            return model.to(device).eval(), "untrained"
    return ClassicalReconstructor(preset).to(device).eval(), "classical (no learned weights)"


def fallback_model_config(config: PipelineConfig) -> ModelConfig:
    """The `small` preset, with the window and keyframe stride the config gives (when it gives them), for
    when no checkpoint is installed."""
    return with_given_layout(ModelConfig.preset("small"), config)


def with_given_layout(model_config: ModelConfig, config: PipelineConfig) -> ModelConfig:
    """model_config with the window length and keyframe stride the config gives (the rest unchanged), for the
    methods no weights tie to a layout. On the real clip's held-out frames `classical` gains 1.6 dB at a
    keyframe every 2 frames instead of 4, for twice the cue time (docs/results/keyframe_stride.md)."""
    given = {name: getattr(config, name) for name in ("window_frames", "keyframe_stride")
             if getattr(config, name) != FROM_MODEL}
    window = given.get("window_frames", model_config.window_frames)
    stride = given.get("keyframe_stride", model_config.keyframe_stride)
    name = "window_frames" if "window_frames" in given else "keyframe_stride"  # the one the user set
    if window % stride:
        raise ConfigError(f"parameter '{name}': window_frames={window} is not a multiple of keyframe_stride={stride} "
                          "(every space-time token covers keyframe_stride frames)")
    try:
        return dataclasses.replace(model_config, **given)
    except ModelConfigError as error:
        raise ConfigError(f"parameter '{name}': {error}") from None


class WindowReconstructor:
    """The model, the renderer and the track registry a stream's windows go through, one at a time."""

    def __init__(self, config: PipelineConfig, model: torch.nn.Module, weights: str, device: torch.device) -> None:
        self.config, self.model, self.weights, self.device = config, model, weights, device
        self.registry = TrackRegistry()
        self._cue_config = CueConfig()
        self._flows = PairFlowCache(self._cue_config.flow)  # worker thread only
        self._sweeps = KeyframeSweepCache(self._cue_config.sweep)  # worker thread only
        self._registry_sequence: int | None = None
        self._tracks_lock = threading.Lock()  # reset_tracks() (another thread) vs the worker's tracks stage

    @property
    def sweeps_reused(self) -> tuple[int, int]:
        """(keyframe sweeps taken from the window before, all keyframe sweeps) since start-up."""
        return self._sweeps.reused, self._sweeps.reused + self._sweeps.computed

    def reset_tracks(self) -> None:
        """New tracks from the next window on (ids are never reused)."""
        with self._tracks_lock:
            self.registry.reset()

    def reconstruct(self, window: Window, start: float) -> WindowResult:
        """Every stage on one window; `start` (perf_counter) is when the worker took it."""
        cfg, timings = self.config, {}

        def timed(stage: str, run: Callable, *args):
            tick = time.perf_counter()
            value = run(*args)
            synchronize(self.device)
            timings[stage] = time.perf_counter() - tick
            return value

        prepared = timed("preprocess", self._prepare, window)
        # the classical cues: the CPU's big share, timed apart
        cues = timed("cues", self._cues, prepared, window.sequence)
        predicted = timed("model", self._predict, prepared, cues)
        if cfg.refine_iters > 0:  # fits the colours itself (through a sigmoid: the solve's overshoots do not fit)
            predicted = timed("refine", self._refine, predicted, prepared)
        else:
            predicted = timed("colors", self._solve_colors, predicted, prepared)
        world, kept = timed("to_world", self._to_world, predicted, prepared)
        rendered, score = timed("render", self._render_newest, kept, prepared)
        track_set = timed("tracks", self._track, world, prepared, window.sequence, cues)
        timings["total"] = time.perf_counter() - start
        return WindowResult(
            stamp=float(prepared.stamps[-1]), frame_id=cfg.world_frame, stamps=prepared.stamps,
            deformable=kept.detach().to("cpu"), tracks=track_set, rendered=rendered,
            input_frame=prepared.images[-1].clone(), psnr=score, K=prepared.K.numpy(),
            world_T_cam=prepared.world_T_cam.numpy(), normalization=prepared.normalization, unpruned=world.detach(),
            timings=timings, sequence=window.sequence, index=window.index,
        )

    def _prepare(self, window: Window) -> PreparedWindow:
        """Undistort + crop/resize (cached per frame), poses into the normalised frame."""
        cfg = self.config
        images, K, poses, stamps = stack_frames(window.frames, (cfg.image_height, cfg.image_width))
        if images.shape[0] != cfg.window_frames:
            raise ReconstructionError(f"expected a window of {cfg.window_frames} frames, got {images.shape[0]}")
        norm_T_cam, normalization = normalize_window(poses, cfg.scene_scale)  # float64
        return PreparedWindow(images, K, poses, stamps, norm_T_cam, normalization,
                              torch.from_numpy(stamps - stamps[0]).float())

    def _inputs(self, prepared: PreparedWindow) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frames [1, T, 3, h, w], K [1, T, 3, 3], norm_T_cam [1, T, 4, 4] on the model's device."""
        device = self.device
        return (prepared.images[None].to(device), prepared.K[None].to(device),
                prepared.norm_T_cam[None].float().to(device))

    def _cues(self, prepared: PreparedWindow, sequence: int) -> GeometryCues | None:
        """Plane sweep, chained flow and lifting, for the models that take them (None otherwise)."""
        model_config = self.model.config
        if not (isinstance(self.model, ClassicalReconstructor) or getattr(model_config, "geometry_primed", False)):
            return None
        frames, K, norm_T_cam = self._inputs(prepared)
        keyframes = list(range(0, model_config.window_frames, model_config.keyframe_stride))
        # model.dgslrm.window_cues, with the DIS flow of the pairs and the sweeps of the keyframes that the
        # previous window shared reused
        flows = self._flows.pairwise(frames[0].float(), prepared.stamps, sequence)
        sweep = self._sweeps.sweep(frames[0], K[0], norm_T_cam[0], keyframes, prepared.stamps,
                                   prepared.normalization.scale, sequence)
        cues = compute_cues(frames[0], K[0], norm_T_cam[0], torch.tensor(keyframes, device=self.device),
                            self._cue_config, flows=flows, sweep=sweep)
        return cues.batched()

    def _predict(self, prepared: PreparedWindow, cues: GeometryCues | None) -> DeformableGaussians:
        """The model's feed-forward Gaussians, in the normalised frame."""
        with torch.no_grad():
            prediction = self.model(*self._inputs(prepared), prepared.relative[None].to(self.device),
                                    **({"cues": cues} if cues is not None else {}))
            return prediction.gaussians(0)

    def _solve_colors(self, predicted: DeformableGaussians, prepared: PreparedWindow) -> DeformableGaussians:
        """Keyframe colours that the drawing turns back into the keyframes (color_solve_iters; 0: as predicted)."""
        from dgslrm_ros.render.color_solve import solve_keyframe_colors

        frames, K, norm_T_cam = self._inputs(prepared)
        with torch.no_grad():
            return solve_keyframe_colors(predicted, frames[0].float(), K[0], norm_T_cam[0],
                                         self.config.color_solve_iters, backend=self.config.renderer)

    def _refine(self, predicted: DeformableGaussians, prepared: PreparedWindow) -> DeformableGaussians:
        """Test-time refinement (refine_iters Adam steps on the window's frames) from the feed-forward Gaussians."""
        from dgslrm_ros.evaluation.refine import refine_gaussians

        device = self.device
        return refine_gaussians(predicted, prepared.images.to(device), prepared.K.to(device),
                                prepared.norm_T_cam.float().to(device), self.config.refine_iters).detach()

    def _to_world(self, predicted: DeformableGaussians,
                  prepared: PreparedWindow) -> tuple[DeformableGaussians, DeformableGaussians]:
        """(every Gaussian in the metric world, the ones kept by min_opacity)."""
        with torch.no_grad():
            world = prepared.normalization.gaussians_to_world(predicted)
            if not bool(torch.isfinite(world.means).all()) or not bool(torch.isfinite(world.offsets).all()):
                raise ReconstructionError("the model predicted non-finite Gaussian positions")
        return world, world.prune(self.config.min_opacity)

    def _render_newest(self, kept: DeformableGaussians, prepared: PreparedWindow) -> tuple[torch.Tensor, float]:
        """(render [3, h, w] in [0, 1] from the newest input camera, its PSNR against that frame in dB)."""
        from dgslrm_ros.metrics import psnr
        from dgslrm_ros.render import render_instant

        cfg, device = self.config, self.device
        with torch.no_grad():
            target = prepared.images[-1]  # [3, h, w]
            if len(kept):
                out = render_instant(kept, kept.num_frames - 1, prepared.world_T_cam[-1:].float().to(device),
                                     prepared.K[-1:].to(device), cfg.image_width, cfg.image_height, backend=cfg.renderer)
                image = out.rgb[0].clamp(0, 1).cpu()
            else:
                image = torch.zeros_like(target)
            score = float(psnr(image, target))
        return image, score

    def _track(self, world: DeformableGaussians, prepared: PreparedWindow, sequence: int,
               cues: GeometryCues | None = None) -> TrackSet:
        """Tracks with stable ids (a new sequence restarts the registry), seeded where the cues trust the
        depth (min_track_confidence; every seed where the model takes no cues)."""
        cfg, stamps = self.config, prepared.stamps
        keyframes = list(range(0, cfg.window_frames, cfg.keyframe_stride))
        allowed = None if cues is None else trusted_seed_pixels(cues.sweep_confidence[0], cues.gate[0],
                                                                cfg.min_track_confidence)
        candidates = seed_tracks(world, (cfg.image_height, cfg.image_width), keyframes, prepared.K,
                                 prepared.world_T_cam, cfg.track_grid, cfg.min_opacity, allowed)
        with self._tracks_lock:
            if self._registry_sequence != sequence:
                self.registry.reset()
                self._registry_sequence = sequence
            return self.registry.update(stamps, candidates.positions, candidates.visible, candidates.seed_frame,
                                        candidates.radius)
