"""What `dgslrm eval` computes and how test-time refinement optimises, as frozen dataclasses without
torch, so `dgslrm eval --help` stays instant. A field declared with `parameter(default, description)`
is also an option of `dgslrm eval` (`--field-name`, see cli/argtypes.add_config_options)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from dgslrm_ros.core.parameters import parameter
from dgslrm_ros.geometry.track_trust import DEFAULT_MIN_TRACK_CONFIDENCE

# Iterations of the keyframe colour solve (render/color_solve.py) after the feed-forward Gaussians: the node's
# `color_solve_iters` and `dgslrm eval`'s default. 3 lift the real clips' held-out frames by 0.4-3.3 dB (the
# yardstick) for 0.26 s of a 64 px window at two CPU threads, and the live node on the 2-core machine keeps up
# with its default stream so (5-minute soak, no drop); on point-sampled synthetic windows they cost 0.1-0.3 dB.
# docs/results/color_solve.md. Here because both configs read it without torch.
DEFAULT_COLOR_SOLVE_ITERS = 3


@dataclass(frozen=True)
class RefineConfig:
    """Adam learning rates per attribute and the photometric loss mix."""

    position_lr: float = 2e-3  # x scene extent, for means and offsets
    color_lr: float = 2e-2  # on logits
    opacity_lr: float = 5e-2  # on logits
    scale_lr: float = 1e-2  # on log scales
    quat_lr: float = 5e-3
    ssim_weight: float = 0.2  # photometric loss = MSE + w (1 - SSIM)
    views_per_step: int = 0  # window frames rendered per step (random subset); 0 = all
    background: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name not in ("seed", "views_per_step", "background", "ssim_weight") and not value > 0:
                raise ValueError(f"RefineConfig.{name}: expected > 0, got {value}")
        if self.views_per_step < 0:
            raise ValueError(f"RefineConfig.views_per_step: expected >= 0 (0 = all), got {self.views_per_step}")


@dataclass(frozen=True)
class EvalConfig:
    """What `dgslrm eval` computes and how much it spends on the baselines."""

    num_scenes: int = parameter(8, "held-out windows to score", minimum=1)
    optimize_iters: int = parameter(200, "Adam steps of the optimised baseline; 0 = skip")
    refine_iters: int = parameter(0, "> 0 also scores feed-forward + test-time refinement (network+refine)")
    color_solve_iters: int = parameter(DEFAULT_COLOR_SOLVE_ITERS, "iterations of the keyframe colour solve on the "
                                       "network's and classical Gaussians (the node's color_solve_iters); 0 = off",
                                       minimum=0, maximum=100)
    classical: bool = parameter(True, "score the cues-only classical method beside a geometry-primed network")
    oracles: bool = parameter(True, "score `oracle depth`, `oracle depth+motion` and `oracle depth, static` (ground truth in the network's)")
    baselines: bool = parameter(True, "score the static and optimised baselines (off: the network only)")
    scene_scale: float = 1.0  # SceneNormalization prior, metres per unit (as in training)
    reference_depth_m: float = 2.0  # track thresholds are metric at this median scene depth
    thresholds_cm: tuple[float, ...] = (5.0, 10.0, 20.0)
    previews: int = parameter(2, "windows with a preview PNG", minimum=0)
    heldout_instants: int = parameter(2, "mid-frame instants per window (x 2 cameras); 0 = none", minimum=0)
    background: float = 0.0
    refine: RefineConfig = RefineConfig()
    progress: bool = parameter(True, "a progress bar per window on stderr")
    min_track_confidence: float = parameter(
        DEFAULT_MIN_TRACK_CONFIDENCE, "the published_* scores cover the keyframe pixels the node seeds tracks at "
        "with this min_track_confidence (its parameter); -1 = every pixel", minimum=0.0, maximum=1.0, sentinel=-1)
