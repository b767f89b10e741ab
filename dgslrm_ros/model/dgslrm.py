"""DGS-LRM: a posed video window -> deformable 3D Gaussians, in one transformer pass.

The forward reads in Long-LRM's order:
    rays -> RGB + Plücker (+ time) pixels -> space-time tokens -> transformer -> MLP decode -> depth along the ray
`forward` predicts and nothing else: no losses, no rendering, no I/O.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.geometry.classical import DRAWING, classical_depth
from dgslrm_ros.geometry.cues import GeometryCues, compute_cues
from dgslrm_ros.geometry.depth_check import depth_agrees
from dgslrm_ros.geometry.motion_check import motion_agrees
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.heads import DEPTH, GaussianHead, GaussianPrediction, activate, refined_depth
from dgslrm_ros.model.refiner import PixelRefiner
from dgslrm_ros.model.tokenizer import SpaceTimeTokenizer, normalize_timestamps, pixel_conditioning, unpatchify
from dgslrm_ros.model.transformer import Transformer


class ModelInputError(DgslrmError, ValueError):
    """An input tensor of DGSLRM.forward has the wrong shape, dtype or device."""


class DGSLRM(nn.Module):
    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.tokenizer = SpaceTimeTokenizer(c.keyframe_stride, c.patch_size, c.width, c.num_reference_frames > 0,
                                            c.cue_channels)
        self.transformer = Transformer(c.width, c.layers, c.heads, c.mlp_ratio, c.activation_checkpointing)
        self.head = GaussianHead(c)
        self.refiner = PixelRefiner(c.pixel_refiner) if c.pixel_refiner else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nanoGPT init: N(0, 0.02) linears, residual projections shrunk by 1/sqrt(2 * layers)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for name, parameter in self.transformer.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(parameter, std=0.02 / (2 * self.config.layers) ** 0.5)
        if self.tokenizer.reference_embedding is not None:
            nn.init.zeros_(self.tokenizer.reference_embedding)
        if self.tokenizer.cue_embed is not None:
            nn.init.zeros_(self.tokenizer.cue_embed.weight)
        self.head.reset_parameters()
        if self.refiner is not None:
            self.refiner.reset_parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def keyframe_index(self, device: torch.device | str | None = None) -> Tensor:
        """[Kf] long: window frames 0, l, 2l, ... (the first frame of every token's group)."""
        return torch.arange(0, self.config.window_frames, self.config.keyframe_stride, device=device)

    def forward(
        self,
        frames: Tensor,  # [B, T, 3, H, W] in [0, 1]
        K: Tensor,  # [B, T, 3, 3] pixels
        world_T_cam: Tensor,  # [B, T, 4, 4] in the normalised scene frame
        timestamps: Tensor,  # [B, T] seconds, increasing
        ref_frames: Tensor | None = None,  # [B, R, 3, H, W], R a multiple of keyframe_stride (any R, 0 too)
        ref_K: Tensor | None = None,  # [B, R, 3, 3]
        ref_world_T_cam: Tensor | None = None,  # [B, R, 4, 4]
        ref_timestamps: Tensor | None = None,  # [B, R] seconds (far from the window)
        cues: GeometryCues | None = None,  # batched [B, Kf, ...] classical cues (geometry-primed models)
    ) -> GaussianPrediction:
        c = self.config
        batch, _, height, width = self._check_inputs(frames, K, world_T_cam, timestamps)
        keyframe_index = self.keyframe_index(frames.device)
        rows, cols = height // c.patch_size, width // c.patch_size
        if c.geometry_primed and cues is None:  # computed here unless the caller has them (training caches them)
            cues = window_cues(frames, K, world_T_cam, keyframe_index)
        if cues is not None and not c.geometry_primed:
            raise ModelInputError("cues given to a model without cue channels (ModelConfig.cue_channels = 0)")

        # rays -> RGB + Plücker + time per pixel (+ cues per keyframe pixel) -> space-time tokens
        pixels = pixel_conditioning(frames, K, world_T_cam, normalize_timestamps(timestamps, timestamps))
        cue_pixels = cues.channels() if cues is not None else None  # [B, Kf, C, H, W]
        tokens = self.tokenizer(pixels, cues=cue_pixels)  # [B, Kf * h * w, width]
        window_tokens = tokens.shape[1]
        references = (ref_frames, ref_K, ref_world_T_cam, ref_timestamps)
        if any(r is not None for r in references):
            self._check_references(batch, height, width, *references)
            ref_pixels = pixel_conditioning(
                ref_frames, ref_K, ref_world_T_cam, normalize_timestamps(ref_timestamps, timestamps)
            )
            tokens = torch.cat([tokens, self.tokenizer(ref_pixels, reference=True)], dim=1)

        # all tokens attend to all; only the window's tokens are decoded
        x = self.transformer(tokens)[:, :window_tokens]

        # per-token MLP -> per-pixel raw values of the keyframe of its cube -> activations
        raw = unpatchify(self.head(x).float(), c.num_keyframes, rows, cols, c.patch_size)  # [B, Kf, head_channels, H, W]
        keyframe_rgb = frames[:, keyframe_index]  # [B, Kf, 3, H, W]
        if self.refiner is not None:  # per-pixel depth and gate corrections from the pixel's own cues
            raw = self.refiner(raw, cue_pixels, keyframe_rgb)
        if c.geometry_primed and c.depth_check and not self.training:
            raw = self._checked_depth_residual(raw, frames, K, world_T_cam, keyframe_index, cues)
        fields = activate(raw, keyframe_rgb, c, cues, K[:, keyframe_index])
        prediction = GaussianPrediction(
            **fields,
            keyframe_index=keyframe_index,
            keyframe_K=K[:, keyframe_index].float(),
            keyframe_world_T_cam=world_T_cam[:, keyframe_index].float(),
            timestamps=timestamps,
            **(DRAWING if c.geometry_primed else {}),  # the paper's head: every keyframe at every instant
        )
        if c.geometry_primed and c.motion_check and not self.training:
            prediction = self._checked_motion(prediction, frames, K, world_T_cam, cues)
        return prediction

    def _checked_depth_residual(self, raw: Tensor, frames: Tensor, K: Tensor, world_T_cam: Tensor,
                                keyframe_index: Tensor, cues: GeometryCues) -> Tensor:
        """raw [B, Kf, head_channels, H, W] with the depth residual zeroed where the window's frames refuse
        the network's depth (geometry/depth_check.py); there the Gaussian keeps the classical depth."""
        with torch.no_grad(), torch.autocast(device_type=frames.device.type, enabled=False):
            base = classical_depth(cues, self.config.near, self.config.far)  # [B, Kf, 1, H, W]
            candidate = refined_depth(base, raw[:, :, DEPTH], self.config)
            agrees = torch.stack([
                depth_agrees(frames[b].float(), K[b].float(), world_T_cam[b].float(), keyframe_index, base[b],
                             candidate[b], cues.sweep_confidence[b]) for b in range(frames.shape[0])])
        raw = raw.clone()
        raw[:, :, DEPTH] = torch.where(agrees, raw[:, :, DEPTH], torch.zeros_like(raw[:, :, DEPTH]))
        return raw

    def _checked_motion(self, prediction: GaussianPrediction, frames: Tensor, K: Tensor, world_T_cam: Tensor,
                        cues: GeometryCues) -> GaussianPrediction:
        """The prediction with the classical motion (offsets and gate) where the window's frames refuse the
        network's (geometry/motion_check.py)."""
        with torch.no_grad(), torch.autocast(device_type=frames.device.type, enabled=False):
            means = prediction.means()  # [B, Kf, H, W, 3]
            base_offsets, base_gate = cues.offsets().float(), cues.gate.float()
            agrees = torch.stack([
                motion_agrees(frames[b].float(), K[b].float(), world_T_cam[b].float(), prediction.keyframe_index,
                              means[b], base_offsets[b], prediction.offsets[b].float())
                for b in range(frames.shape[0])])  # [B, Kf, 1, H, W]
        return replace(prediction, offsets=torch.where(agrees[:, :, None], prediction.offsets, base_offsets),
                       gate=torch.where(agrees, prediction.gate, base_gate))

    # ------------------------------------------------------------------ input checks
    def _check_inputs(self, frames: Tensor, K: Tensor, world_T_cam: Tensor, timestamps: Tensor) -> tuple[int, ...]:
        c = self.config
        _expect("frames", frames, 5, f"[B, T={c.window_frames}, 3, H, W] float in [0, 1]")
        batch, count, channels, height, width = frames.shape
        if count != c.window_frames or channels != 3:
            raise ModelInputError(
                f"frames: expected [B, T={c.window_frames}, 3, H, W], got {tuple(frames.shape)}; the model predicts "
                f"one offset per window frame, so feed exactly window_frames={c.window_frames} RGB frames"
            )
        if height % c.patch_size or width % c.patch_size:
            raise ModelInputError(
                f"frames: H={height}, W={width} must be multiples of patch_size={c.patch_size}; resize or crop first "
                f"(core.cameras.resize_crop_frames keeps K consistent)"
            )
        if not frames.dtype.is_floating_point:
            raise ModelInputError(f"frames: expected float images in [0, 1], got dtype {frames.dtype}; divide uint8 by 255")
        _expect("K", K, 4, f"[B={batch}, T={count}, 3, 3]", (batch, count, 3, 3))
        _expect("world_T_cam", world_T_cam, 4, f"[B={batch}, T={count}, 4, 4]", (batch, count, 4, 4))
        _expect("timestamps", timestamps, 2, f"[B={batch}, T={count}] seconds", (batch, count))
        device = next(self.parameters()).device
        for name, tensor in (("frames", frames), ("K", K), ("world_T_cam", world_T_cam), ("timestamps", timestamps)):
            if tensor.device != device:
                raise ModelInputError(f"{name}: expected a tensor on the model's device {device}, got {tensor.device}")
        if device.type != "meta" and count > 1 and not bool((timestamps[:, 1:] > timestamps[:, :-1]).all()):
            raise ModelInputError("timestamps: expected strictly increasing seconds per window (oldest first)")
        return batch, count, height, width

    def _check_references(self, batch: int, height: int, width: int, ref_frames, ref_K, ref_world_T_cam, ref_timestamps) -> None:
        names = ("ref_frames", "ref_K", "ref_world_T_cam", "ref_timestamps")
        given = [r is not None for r in (ref_frames, ref_K, ref_world_T_cam, ref_timestamps)]
        if not all(given):
            missing = [n for n, g in zip(names, given) if not g]
            raise ModelInputError(f"reference frames: pass all of {list(names)} or none; missing {missing}")
        if self.config.num_reference_frames == 0:
            raise ModelInputError(
                "reference frames given, but this model was configured with num_reference_frames=0 and never "
                "learned to use them; drop the ref_* arguments or use a model trained with reference frames"
            )
        _expect("ref_frames", ref_frames, 5, f"[B={batch}, R, 3, H={height}, W={width}]")
        refs = ref_frames.shape[1]
        if tuple(ref_frames.shape) != (batch, refs, 3, height, width):
            raise ModelInputError(
                f"ref_frames: expected [B={batch}, R, 3, H={height}, W={width}] (same size as frames), got "
                f"{tuple(ref_frames.shape)}"
            )
        if refs % self.config.keyframe_stride:
            raise ModelInputError(
                f"ref_frames: R={refs} reference frames, expected a multiple of keyframe_stride="
                f"{self.config.keyframe_stride} (they are tokenised in groups of that many); drop or add frames"
            )
        _expect("ref_K", ref_K, 4, f"[B={batch}, R={refs}, 3, 3]", (batch, refs, 3, 3))
        _expect("ref_world_T_cam", ref_world_T_cam, 4, f"[B={batch}, R={refs}, 4, 4]", (batch, refs, 4, 4))
        _expect("ref_timestamps", ref_timestamps, 2, f"[B={batch}, R={refs}] seconds", (batch, refs))


def window_cues(frames: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor) -> GeometryCues:
    """Classical cues of every window of a batch: frames [B, T, 3, H, W] ... -> GeometryCues [B, Kf, ...].

    Always fp32 and without autograd, also inside a caller's autocast (a bf16 training step on CUDA): the
    cue cache and the node compute them in fp32, and the network must see the same cues it runs on."""
    with torch.no_grad(), torch.autocast(device_type=frames.device.type, enabled=False):
        return GeometryCues.stack([compute_cues(frames[b].float(), K[b].float(), world_T_cam[b].float(), keyframe_index)
                                   for b in range(frames.shape[0])])


def _expect(name: str, tensor: Tensor, dims: int, hint: str, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(tensor, Tensor):
        raise ModelInputError(f"{name}: expected a torch.Tensor {hint}, got {type(tensor).__name__}")
    if tensor.dim() != dims or (shape is not None and tuple(tensor.shape) != shape):
        raise ModelInputError(f"{name}: expected shape {hint}, got {tuple(tensor.shape)}")
