"""The `classical` method behind the model's interface: the cues alone, no learned weights.

Same call and same output as DGSLRM (GaussianPrediction), so the pipeline, `dgslrm eval` and
`dgslrm replay` switch methods by swapping the module. Its fields are geometry.classical's, exactly
what an untrained geometry-primed network predicts.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dgslrm_ros.geometry.classical import DRAWING, classical_fields
from dgslrm_ros.geometry.cues import GeometryCues
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.model.dgslrm import window_cues
from dgslrm_ros.model.heads import GaussianPrediction


class ClassicalReconstructor(nn.Module):
    """Deformable Gaussians from plane-sweep depth and lifted optical-flow tracks."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)  # follows .to(device)

    def keyframe_index(self, device: torch.device | str | None = None) -> Tensor:
        return torch.arange(0, self.config.window_frames, self.config.keyframe_stride, device=device)

    def forward(self, frames: Tensor, K: Tensor, world_T_cam: Tensor, timestamps: Tensor,
                cues: GeometryCues | None = None, **_references) -> GaussianPrediction:
        """frames [B, T, 3, H, W], K [B, T, 3, 3], world_T_cam [B, T, 4, 4] (normalised), timestamps [B, T]."""
        if frames.dim() != 5 or frames.shape[1] != self.config.window_frames:
            raise ValueError(f"ClassicalReconstructor: expected frames [B, T={self.config.window_frames}, 3, H, W], "
                             f"got {tuple(frames.shape)}")
        keyframe_index = self.keyframe_index(frames.device)
        cues = cues if cues is not None else window_cues(frames, K, world_T_cam, keyframe_index)
        c = self.config
        fields = classical_fields(cues, frames[:, keyframe_index], K[:, keyframe_index], c.near, c.far, c.scale_max)
        return GaussianPrediction(**fields, keyframe_index=keyframe_index, keyframe_K=K[:, keyframe_index].float(),
                                  keyframe_world_T_cam=world_T_cam[:, keyframe_index].float(), timestamps=timestamps,
                                  **DRAWING)
