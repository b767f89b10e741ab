"""The checkpoint the package ships (dgslrm_ros/checkpoints/small): loadable, small, the node's default,
and better than an untrained model of the same size on a held-out window it never saw."""
from __future__ import annotations

import json

import torch

from dgslrm_ros.data.dataset import EVAL_SEED_START, WindowDatasetConfig, make_window_sample
from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.geometry.cues import CueConfig, GeometryCues, compute_cues
from dgslrm_ros.geometry.plane_sweep import SweepConfig
from dgslrm_ros.model.checkpoint import SHIPPED_CHECKPOINT, load_model, read_checkpoint_info
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.stream.config import PipelineConfig
from dgslrm_ros.stream.reconstruction import load_pipeline_model

MAX_BYTES = 16 * 1024 * 1024


def test_shipped_checkpoint_is_fp16_small_and_under_16_mb():
    weights = SHIPPED_CHECKPOINT / "model.safetensors"
    assert weights.is_file() and (SHIPPED_CHECKPOINT / "config.json").is_file()
    assert weights.stat().st_size <= MAX_BYTES
    info = read_checkpoint_info(SHIPPED_CHECKPOINT)
    assert info["weights_dtype"] == "float16"
    small = ModelConfig.preset("small")
    stored = json.loads((SHIPPED_CHECKPOINT / "config.json").read_text())["model_config"]
    for name in ("width", "layers", "heads", "patch_size", "window_frames", "keyframe_stride"):
        assert stored[name] == getattr(small, name), name
    assert json.loads((SHIPPED_CHECKPOINT / "config.json").read_text())["extra"]["step"] > 0


def test_pipeline_loads_the_shipped_checkpoint_by_default():
    logs: list[tuple[str, str]] = []
    config = PipelineConfig(method="network")
    model, weights = load_pipeline_model(config, torch.device("cpu"), lambda level, m: logs.append((level, m)))
    assert weights.startswith("checkpoint") and "untrained" not in weights
    assert not any(level == "error" for level, _ in logs)
    # the default parameters run it: its window and input size are theirs, nothing refused
    resolved = config.for_model(model.config)
    assert (resolved.window_frames, resolved.keyframe_stride, resolved.image_width, resolved.image_height) == \
        (model.config.window_frames, model.config.keyframe_stride, model.config.image_size, model.config.image_size)
    # The default method is classical (README, Results): the shipped checkpoint fixes its window layout.
    model, weights = load_pipeline_model(PipelineConfig(), torch.device("cpu"), lambda level, m: logs.append((level, m)))
    assert isinstance(model, ClassicalReconstructor) and weights.startswith("classical")
    assert not any(level == "error" for level, _ in logs)


@torch.no_grad()
def _depth_error(model: torch.nn.Module, sample: WindowSample, cue_config: CueConfig | None = None) -> float:
    """Mean L1 of the predicted keyframe z-depth against ground truth, normalised units, non-sky pixels
    (the quantity the depth loss trains); the model's own cues, or the cues of `cue_config`."""
    batch, _ = sample.add_batch_dim().normalized(1.0)
    inputs = batch.model_inputs()
    if cue_config is not None:
        keyframes = model.keyframe_index(batch.frames.device)
        inputs["cues"] = GeometryCues.stack([compute_cues(batch.frames[0], batch.K[0], batch.world_T_cam[0], keyframes,
                                                          cue_config)])
    prediction = model(**inputs)
    keyframes = batch.keyframe_index[0]
    truth = batch.depth[:, keyframes]  # [1, Kf, 1, H, W]
    valid = truth < model.config.far
    return float((prediction.depth - truth).abs()[valid].mean())


def test_shipped_weights_refine_the_classical_depth_on_held_out_windows():
    # Untrained, the geometry-primed network is exactly the classical method (test_dgslrm.py); the shipped
    # weights must have learned something on top of it: lower held-out keyframe depth error on the cues
    # the node computes (with the sweep's far-end prior, SweepConfig.far_end_prior). gpu-mix5:
    # 1.71 with the depth check at its narrower margins (ModelConfig.depth_check; 1.53 at the first ones, 1.49
    # without) against classical's 3.15 on these four windows (3.09 when first measured; small-geo-mix3 1.55,
    # small-geo-mix2 1.58,
    # small-geo-mix 1.67, small-geo-fep-px2 1.86;
    # the weights before those, trained on the cues before the prior, were level with classical: 3.10).
    trained = load_model(SHIPPED_CHECKPOINT)
    assert trained.refiner is not None  # the per-pixel refiner is part of the shipped architecture
    classical = ClassicalReconstructor(trained.config).eval()
    config = WindowDatasetConfig(height=trained.config.image_size, width=trained.config.image_size)
    before_prior = CueConfig(sweep=SweepConfig(far_end_prior=False))
    errors = {"trained": 0.0, "classical": 0.0, "classical before the prior": 0.0}
    for seed in range(EVAL_SEED_START + 7, EVAL_SEED_START + 11):
        sample = make_window_sample(seed, config)
        errors["trained"] += _depth_error(trained, sample)
        errors["classical"] += _depth_error(classical, sample)
        errors["classical before the prior"] += _depth_error(classical, sample, before_prior)
    assert errors["trained"] < 0.8 * errors["classical"], errors
    assert errors["classical"] < 0.8 * errors["classical before the prior"], errors  # the prior's own gain


def test_shipped_network_draws_its_gaussians_with_the_classical_appearance():
    # Trained geometry-only, the shipped weights' appearance residuals are zero; with appearance_residuals
    # off the scale is the pixel footprint at the network's depth, not at the sweep's (docs/results/hybrid:
    # between frames 19.15 -> 20.11 dB, real clip 20.43 -> 23.20 dB).
    trained = load_model(SHIPPED_CHECKPOINT)
    assert trained.config.appearance_residuals is False
    config = WindowDatasetConfig(height=trained.config.image_size, width=trained.config.image_size)
    batch, _ = make_window_sample(EVAL_SEED_START + 7, config).add_batch_dim().normalized(1.0)
    with torch.no_grad():
        network = trained(**batch.model_inputs())
        classical = ClassicalReconstructor(trained.config)(**batch.model_inputs())
    assert (network.depth - classical.depth).abs().max() > 1e-2
    assert torch.equal(network.colors, classical.colors) and torch.equal(network.opacities, classical.opacities)
    ratio = network.scales / classical.scales  # the footprint follows the depth (below the scale cap)
    uncapped = (classical.scales < trained.config.scale_max) & (network.scales < trained.config.scale_max)
    assert torch.allclose(ratio[uncapped], (network.depth / classical.depth).expand_as(ratio)[uncapped], rtol=1e-4)
