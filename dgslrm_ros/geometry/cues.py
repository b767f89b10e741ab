"""All classical cues of one window, and the channels they give the network.

    frames, K, poses -> plane-sweep depth per keyframe (plane_sweep)
                     -> chained 2D tracks per keyframe pixel (flow_tracks)
                     -> static fit of each track, motion evidence, gate (lifting)
                     -> one depth per moving region (moving_depth, from a gate grown with the
                        resolution), lifted 3D motion at it (lifting)

Everything is in the frame of the poses it is given (the model's normalised frame in practice).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from dgslrm_ros.geometry.flow_tracks import FlowConfig, Tracks2D, chain_tracks, pairwise_flow
from dgslrm_ros.geometry.lifting import LiftConfig, lift_tracks, motion_gate, static_fit
from dgslrm_ros.geometry.moving_depth import MovingDepthConfig, moving_depth
from dgslrm_ros.geometry.plane_sweep import SweepConfig, SweepResult, plane_sweep

# Per keyframe pixel, in this order: log depth, sweep confidence, sweep cost at the winner, spread of the
# cost curve, log static-fit depth, static-fit residual, static-fit parallax, gate, lifted displacement to
# the first and last frame.
CUE_CHANNELS = 14
MAX_PARALLAX_PX = 1000.0  # hypotheses right in front of the camera swing without bound (and overflow fp16)


@dataclass(frozen=True)
class CueConfig:
    sweep: SweepConfig = field(default_factory=SweepConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    lift: LiftConfig = field(default_factory=LiftConfig)
    moving: MovingDepthConfig = field(default_factory=MovingDepthConfig)


@dataclass(frozen=True)
class GeometryCues:
    """Classical geometry of one window's keyframes (all [Kf, C, H, W] unless noted)."""

    depth: Tensor  # [Kf, 1, H, W] z-depth of the plane sweep, except in moving regions: there the region's
    # median sweep depth (moving_depth; the sweep assumes a static scene). Filling its unconfident pixels
    # from confident neighbours was tried and hurt: median AbsRel per window 0.064 -> 0.13 on 16 held-out
    # windows (the confidence is a good ranking, a poor gate), so the network gets the raw depth and the
    # confidence beside it
    sweep_confidence: Tensor  # [Kf, 1, H, W] in [0, 1]
    sweep_cost: Tensor  # [Kf, 1, H, W] aggregated SAD at the winning plane
    sweep_spread: Tensor  # [Kf, 1, H, W] spread of the cost curve (plane steps)
    fit_depth: Tensor  # [Kf, 1, H, W] static fit of the tracks near `depth`
    fit_residual: Tensor  # [Kf, 1, H, W] px
    fit_parallax: Tensor  # [Kf, 1, H, W] px
    gate: Tensor  # [Kf, 1, H, W] in [0, 1], 1 = moves on its own
    lifted: Tensor  # [Kf, T, 3, H, W] gated-free lifted displacement from the keyframe instant

    def offsets(self) -> Tensor:
        """[..., Kf, T, 3, H, W] the classical deformation: lifted motion where the gate opens."""
        return self.gate.unsqueeze(-4) * self.lifted

    def channels(self) -> Tensor:
        """[..., Kf, CUE_CHANNELS, H, W] network inputs, each scaled to roughly unit range (any leading dims)."""
        log = lambda d: torch.log(d.float().clamp(1e-3, 1e3))
        first, last = self.lifted[..., 0, :, :, :], self.lifted[..., -1, :, :, :]
        parts = [log(self.depth), self.sweep_confidence, self.sweep_cost * 10.0, self.sweep_spread / 10.0,
                 log(self.fit_depth), self.fit_residual / 4.0, torch.log1p(self.fit_parallax.float().clamp(0.0, MAX_PARALLAX_PX)), self.gate, first, last]
        return torch.cat([p.float() for p in parts], dim=-3)

    def batched(self) -> GeometryCues:
        """These cues as a batch of one, as views (`stack([self])` copies every field: 3 ms a 64 px window)."""
        return GeometryCues(**{f.name: getattr(self, f.name)[None] for f in fields(GeometryCues)})

    @staticmethod
    def stack(items: list[GeometryCues]) -> GeometryCues:
        """Cues of several windows -> one GeometryCues with a leading batch dim."""
        return GeometryCues(**{f.name: torch.stack([getattr(c, f.name) for c in items]) for f in fields(GeometryCues)})

    def as_tensors(self, prefix: str = "cue_") -> dict[str, Tensor]:
        """Flat dict for safetensors caches (fp16 where precision allows: not the depth and the motion)."""
        return {prefix + f.name: getattr(self, f.name) if f.name in ("depth", "lifted") else getattr(self, f.name).half()
                for f in fields(self)}

    @staticmethod
    def from_tensors(values: dict[str, Tensor], prefix: str = "cue_") -> GeometryCues:
        names = [f.name for f in fields(GeometryCues)]
        missing = [prefix + n for n in names if prefix + n not in values]
        if missing:
            raise KeyError(f"GeometryCues.from_tensors: missing {missing}; the cache predates these cues, rebuild it")
        return GeometryCues(**{n: values[prefix + n].float() for n in names})


def compute_cues(frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor,
                 config: CueConfig = CueConfig(), tracks: Tracks2D | None = None,
                 flows: tuple[Tensor, Tensor] | None = None, sweep: SweepResult | None = None,
                 stage_seconds: dict[str, float] | None = None) -> GeometryCues:
    """Every cue of one window: frames [T, 3, H, W] in [0, 1], K [T, 3, 3], world_T_cam [T, 4, 4],
    keyframe_index [Kf]; `tracks` or the consecutive-pair `flows` (flow_tracks.pairwise_flow), and the
    keyframes' `sweep` (the node's stream/sweep_cache.py), when already computed. No gradients; float32
    on the frames' device, also under autocast (bf16 moves the winning plane of a sweep). `stage_seconds`,
    when given, receives each stage's wall time (sweep, flow, chain, fit, moving, lift; `dgslrm bench
    --geometry`), so the benchmark times this sequence rather than a copy of it."""
    lap = _StageClock(stage_seconds)
    with torch.no_grad(), torch.autocast(frames.device.type, enabled=False):
        frames, K, world_T_cam = frames.float(), K.float(), world_T_cam.float()
        keyframe_index = keyframe_index.long().to(frames.device)
        if sweep is None:
            sweep = plane_sweep(frames, K, world_T_cam, keyframe_index, config.sweep)
            lap("sweep")
        if tracks is None:
            flows = flows if flows is not None else pairwise_flow(frames, config.flow)
            lap("flow")
            tracks = chain_tracks(frames, keyframe_index, config.flow, flows)
            lap("chain")
        fit = static_fit(tracks, K, world_T_cam, keyframe_index, sweep.depth, config.lift)
        gate = motion_gate(fit.residual, config.lift)
        lap("fit")
        region_gate = motion_gate(fit.residual, config.lift, config.moving.region_threshold_exponent)
        depth = moving_depth(sweep.depth, sweep.confidence, region_gate, fit.residual, config.moving)
        lap("moving")
        lifted = lift_tracks(tracks, depth, K, world_T_cam, keyframe_index)
        lap("lift")
        return GeometryCues(depth=depth, sweep_confidence=sweep.confidence, sweep_cost=sweep.cost_min,
                            sweep_spread=sweep.spread,
                            fit_depth=fit.depth, fit_residual=fit.residual, fit_parallax=fit.parallax, gate=gate,
                            lifted=lifted)


class _StageClock:
    """lap(name): the wall time since the previous lap into `seconds[name]`; a no-op without a dict."""

    def __init__(self, seconds: dict[str, float] | None):
        self.seconds, self.tick = seconds, time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.seconds is not None:
            now = time.perf_counter()
            self.seconds[name] = now - self.tick
            self.tick = now
