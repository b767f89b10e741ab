"""The DGS-LRM network: config presets, tokenizer, transformer, Gaussian head, checkpoints.

No rclpy, no gsplat: this package is pure torch (plus safetensors for checkpoints).
"""
from dgslrm_ros.model.checkpoint import CheckpointError, load_model, read_checkpoint_info, save_checkpoint
from dgslrm_ros.model.config import PRESETS, ModelConfig, ModelConfigError
from dgslrm_ros.model.dgslrm import DGSLRM, ModelInputError
from dgslrm_ros.model.heads import GaussianPrediction

__all__ = [
    "DGSLRM", "GaussianPrediction", "ModelConfig", "ModelConfigError", "ModelInputError", "PRESETS",
    "CheckpointError", "load_model", "read_checkpoint_info", "save_checkpoint",
]
