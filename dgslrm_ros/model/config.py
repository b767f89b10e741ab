"""The model's hyper-parameters: one frozen dataclass, saved beside every checkpoint.

Three named presets: `tiny` (CPU tests in seconds), `small` (the shipped model: trainable on one GPU in
hours, <= 8M parameters so its fp16 checkpoint stays under 16 MB), `paper` (DGS-LRM as published:
256^2, 24 frames, l = 4, patch 8 -> 6,144 tokens, 24 x 1024 layers, ~300M parameters).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.geometry.cues import CUE_CHANNELS

# Per keyframe pixel: depth 1, rgb 3, rotation 4, scale 3, opacity 1 (then 3 offsets per window frame).
STATIC_CHANNELS = 12
INPUT_CHANNELS = 10  # rgb 3 + Plücker 6 + normalised timestamp 1


class ModelConfigError(DgslrmError, ValueError):
    """A ModelConfig field is out of range or inconsistent with another field."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and output activations of DGSLRM. The defaults are the `small` preset."""

    # --- input window
    image_size: int = 128  # nominal square training resolution; forward takes any H, W divisible by patch_size
    window_frames: int = 24  # T: frames per window (the head predicts one offset per frame, so T is fixed)
    keyframe_stride: int = 4  # l: frames per space-time token; keyframes are frames 0, l, 2l, ...
    patch_size: int = 8  # s: pixels per token side
    num_reference_frames: int = 0  # R reference frames the data pipeline feeds (forward accepts any multiple of l)
    cue_channels: int = 0  # classical geometry cues per keyframe pixel (geometry.cues.CUE_CHANNELS); > 0 makes the
    # model geometry-primed: cues enter the tokens and the heads predict residuals on the `classical` fields
    # --- transformer
    width: int = 256
    layers: int = 8  # transformer blocks ("depth" in ViT papers; renamed: depth here means z-depth)
    heads: int = 4
    mlp_ratio: float = 3.0
    head_hidden: int = 0  # hidden width of the two-layer output MLP; 0 = same as `width`
    activation_checkpointing: bool = False  # recompute blocks in backward (training only); saves memory
    # --- output activations (normalised scene units; GS-LRM's choices where DGS-LRM is silent)
    near: float = 0.1  # predicted z-depth lies in [near, far]
    far: float = 10.0
    scale_bias: float = 2.3  # scale = min(exp(x - scale_bias), scale_max)
    scale_max: float = 0.3
    opacity_bias: float = 2.0  # opacity = sigmoid(x - opacity_bias)
    color_residual: bool = True  # rgb = sigmoid(logit(input pixel) + x) instead of sigmoid(x)
    appearance_residuals: bool = True  # geometry-primed: the colour, rotation, scale and opacity residuals are used.
    # False: only depth and motion are learned; the appearance is the classical one at the predicted depth
    # (its footprint-sized scale there), see model/heads.activate
    pixel_refiner: int = 0  # geometry-primed: hidden channels of the per-pixel convolutional refiner of the depth and
    # gate residuals (model/refiner.py); 0 = none, the residuals are the per-token head's alone
    depth_check: bool = True  # geometry-primed, at inference (eval mode) only: the depth residual is dropped where it
    # makes the window's frames disagree much more than the sweep's depth (geometry/depth_check.py); training sees
    # the residual everywhere
    motion_check: bool = True  # geometry-primed, at inference only: the network's motion is dropped (the classical
    # gated lift kept) where it makes the window's frames disagree more than that (geometry/motion_check.py)

    def __post_init__(self) -> None:
        for name in ("image_size", "window_frames", "keyframe_stride", "patch_size", "width", "layers", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelConfigError(f"ModelConfig.{name}: expected a positive integer, got {value!r}")
        if self.cue_channels not in (0, CUE_CHANNELS):
            raise ModelConfigError(f"ModelConfig.cue_channels: expected 0 (no cues) or {CUE_CHANNELS} (the cues this "
                                   f"code computes), got {self.cue_channels}")
        if not self.appearance_residuals and not self.geometry_primed:
            raise ModelConfigError("ModelConfig.appearance_residuals=False takes the appearance from the classical "
                                   "fields, which only a geometry-primed model has; set cue_channels="
                                   f"{CUE_CHANNELS} or appearance_residuals=True")
        if not isinstance(self.pixel_refiner, int) or isinstance(self.pixel_refiner, bool) or self.pixel_refiner < 0:
            raise ModelConfigError(f"ModelConfig.pixel_refiner: expected an integer >= 0, got {self.pixel_refiner!r}")
        if not isinstance(self.depth_check, bool):
            raise ModelConfigError(f"ModelConfig.depth_check: expected true or false, got {self.depth_check!r}")
        if not isinstance(self.motion_check, bool):
            raise ModelConfigError(f"ModelConfig.motion_check: expected true or false, got {self.motion_check!r}")
        if self.pixel_refiner and not self.geometry_primed:
            raise ModelConfigError("ModelConfig.pixel_refiner refines the depth and gate residuals on the classical "
                                   f"cues, which only a geometry-primed model has; set cue_channels={CUE_CHANNELS} "
                                   "or pixel_refiner=0")
        if self.num_reference_frames < 0 or self.head_hidden < 0:
            raise ModelConfigError(
                f"ModelConfig: num_reference_frames and head_hidden must be >= 0, got "
                f"{self.num_reference_frames} and {self.head_hidden}"
            )
        if self.image_size % self.patch_size:
            raise ModelConfigError(
                f"ModelConfig.image_size={self.image_size} is not divisible by patch_size={self.patch_size}; "
                f"choose an image size that is a multiple of the patch size"
            )
        if self.window_frames % self.keyframe_stride:
            raise ModelConfigError(
                f"ModelConfig.window_frames={self.window_frames} is not divisible by "
                f"keyframe_stride={self.keyframe_stride}; every token covers keyframe_stride frames, so use a "
                f"multiple of it"
            )
        if self.num_reference_frames % self.keyframe_stride:
            raise ModelConfigError(
                f"ModelConfig.num_reference_frames={self.num_reference_frames} is not a multiple of "
                f"keyframe_stride={self.keyframe_stride}; reference frames are tokenised in groups of that size"
            )
        if self.width % self.heads:
            raise ModelConfigError(
                f"ModelConfig.width={self.width} is not divisible by heads={self.heads}; pick heads dividing width"
            )
        if not self.mlp_ratio > 0:
            raise ModelConfigError(f"ModelConfig.mlp_ratio: expected > 0, got {self.mlp_ratio}")
        if not 0 < self.near < self.far:
            raise ModelConfigError(f"ModelConfig: expected 0 < near < far, got near={self.near}, far={self.far}")
        if not self.scale_max > 0:
            raise ModelConfigError(f"ModelConfig.scale_max: expected > 0, got {self.scale_max}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def num_keyframes(self) -> int:
        return self.window_frames // self.keyframe_stride

    @property
    def geometry_primed(self) -> bool:
        return self.cue_channels > 0

    @property
    def head_channels(self) -> int:
        """Values per keyframe pixel: 12 static + 3 per window frame (+ 1 gate residual when geometry-primed)."""
        return STATIC_CHANNELS + 3 * self.window_frames + (1 if self.geometry_primed else 0)

    @property
    def hidden(self) -> int:
        return self.head_hidden or self.width

    def num_tokens(self, height: int | None = None, width: int | None = None, reference_frames: int | None = None) -> int:
        """Tokens the transformer sees for one window (+ its reference frames) at the given size."""
        height = self.image_size if height is None else height
        width = self.image_size if width is None else width
        refs = self.num_reference_frames if reference_frames is None else reference_frames
        groups = (self.window_frames + refs) // self.keyframe_stride
        return groups * (height // self.patch_size) * (width // self.patch_size)

    # ------------------------------------------------------------------ presets and (de)serialisation
    @staticmethod
    def preset(name: str, **overrides) -> ModelConfig:
        """A named preset, optionally with some fields replaced (`preset("small", window_frames=16)`)."""
        if name not in PRESETS:
            raise ModelConfigError(f"unknown model preset {name!r}; expected one of {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides) if overrides else PRESETS[name]

    def preset_name(self) -> str:
        """The preset whose architecture this is (resolution may differ), or "custom"."""
        ignored = {"image_size", "appearance_residuals", "depth_check", "motion_check"}  # none changes the weights
        mine = {k: v for k, v in self.to_dict().items() if k not in ignored}
        for name, preset in PRESETS.items():
            if mine == {k: v for k, v in preset.to_dict().items() if k not in ignored}:
                return name
        return "custom"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(values: dict) -> ModelConfig:
        """Inverse of to_dict; unknown keys are an error (a checkpoint from another code version)."""
        if not isinstance(values, dict):
            raise ModelConfigError(f"ModelConfig.from_dict: expected a dict, got {type(values).__name__}")
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelConfigError(
                f"ModelConfig: unknown fields {unknown}; this code knows {sorted(known)} (written by another version?)"
            )
        return ModelConfig(**values)


PRESETS: dict[str, ModelConfig] = {
    # CPU unit tests: 2 space-time groups x 4 x 4 patches = 32 tokens.
    "tiny": ModelConfig(
        image_size=32, window_frames=8, keyframe_stride=4, patch_size=8,
        width=64, layers=2, heads=2, mlp_ratio=4.0, cue_channels=CUE_CHANNELS,
    ),
    # The shipped model: 6 x 16 x 16 = 1,536 tokens at 128^2. Width 256 x 8 layers with an MLP ratio of
    # 3 (ours) keeps it at ~7.6M parameters (fp16 checkpoint < 16 MB) while keeping the paper's token layout;
    # the per-pixel refiner (15k of them) took held-out mean AbsRel 0.264 -> 0.233 (docs/training.md).
    "small": ModelConfig(
        image_size=128, window_frames=24, keyframe_stride=4, patch_size=8,
        width=256, layers=8, heads=4, mlp_ratio=3.0, cue_channels=CUE_CHANNELS, pixel_refiner=32,
    ),
    # The paper's: 6 x 32 x 32 = 6,144 window tokens (+ 1,024 for 4 reference frames), ~310M parameters.
    "paper": ModelConfig(
        image_size=256, window_frames=24, keyframe_stride=4, patch_size=8, num_reference_frames=4,
        width=1024, layers=24, heads=16, mlp_ratio=4.0, activation_checkpointing=True, cue_channels=CUE_CHANNELS,
    ),
}
