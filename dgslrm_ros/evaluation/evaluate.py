"""`dgslrm eval`: score a checkpoint and two baselines on the fixed held-out synthetic windows.

Per window and method (all in the window's normalised frame, errors reported in metres):
- input-view PSNR/SSIM: the input camera re-rendered at every window instant (reconstruction);
- novel-view PSNR/SSIM: the held-out synchronised cameras at their instants (novel view synthesis);
- held-out-instant PSNR/SSIM: the input camera and another camera of the rig at instants between
  the window's frames (t = (n + 0.5) / fps), ray-cast from the window's scene for this metric only;
  the Gaussians are deformed there by interpolating their offsets (needs the samples' data config);
- motion: mean distance the tracks travel from their keyframe instant (0 for the static baseline);
- 3D tracks: end-point error (EPE, m) of every keyframe pixel's trajectory against the ground-truth
  scene flow (`keyframe_points`), over all window frames except the keyframe's own instant, and the
  fraction within 5 / 10 / 20 cm *scaled to scene size*: the thresholds hold for a window whose
  median ground-truth keyframe depth is `reference_depth_m` (2 m, room scale as PointOdyssey) and
  grow linearly with that median depth, so a scene twice as large has thresholds twice as large.
  Pixels whose ground truth is sky (beyond the model's far plane) are left out.
  This absolute error is mostly the keyframe depth error (shared by the static baseline, which uses
  the same Gaussians), so the motion is also scored on its own:
- scene flow: EPE (m) of each track's displacement from its keyframe instant against the GT
  displacement (`flow_epe_m`, the static baseline's value is the mean GT motion), over all pixels
  and over the *moving* pixels only (`moving_flow_epe_m`: GT travels more than the scaled 5 cm
  threshold at some window frame; `moving_track_epe_m` is the absolute track EPE there, and
  `moving_fraction` how much of the keyframe pixels that is).

Methods: `dgslrm` (feed-forward), `static` (its deformation forced to zero), `optimised` (test-time
optimisation from depth-unprojected pixels, see evaluation.baselines), and `dgslrm+refine` when
refine_iters > 0.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor

from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.evaluation.baselines import depth_initialization, gaussian_tracks, static_baseline
from dgslrm_ros.evaluation.metrics import mean_finite, psnr, ssim, track_errors, track_metrics
from dgslrm_ros.evaluation.previews import save_preview, track_grid
from dgslrm_ros.evaluation.refine import RefineConfig, optimize_gaussians, save_curve
from dgslrm_ros.render import render
from dgslrm_ros.training.batch import add_batch_dim, normalize_batch, reference_inputs, to_device
from dgslrm_ros.training.losses import render_at_instants

METRIC_KEYS = ("input_psnr", "input_ssim", "novel_psnr", "novel_ssim", "heldout_psnr", "heldout_ssim", "track_epe_m",
               "within_5cm", "within_10cm", "within_20cm", "motion_m", "flow_epe_m", "moving_flow_epe_m",
               "moving_track_epe_m", "moving_fraction", "seconds")


@dataclass(frozen=True)
class EvalConfig:
    """What `dgslrm eval` computes and how much it spends on the baselines."""

    num_scenes: int = 8
    optimize_iters: int = 200  # budget of the optimised baseline; 0 drops it
    refine_iters: int = 0  # > 0 adds `dgslrm+refine` (feed-forward + test-time refinement)
    baselines: bool = True  # static + optimised
    scene_scale: float = 1.0  # SceneNormalization prior, metres per unit (as in training)
    reference_depth_m: float = 2.0  # track thresholds are metric at this median scene depth
    thresholds_cm: tuple[float, ...] = (5.0, 10.0, 20.0)
    previews: int = 2  # windows with a preview PNG
    heldout_instants: int = 2  # mid-frame instants rendered per window (x 2 cameras); 0 = none
    background: float = 0.0
    refine: RefineConfig = RefineConfig()


def threshold_values(gt_depth: Tensor, config: EvalConfig, max_depth: float) -> dict[str, float]:
    """Metric thresholds for this window: cm x (median valid GT depth / reference depth)."""
    valid = gt_depth[torch.isfinite(gt_depth) & (gt_depth > 0) & (gt_depth <= max_depth)]
    factor = float(valid.median()) / config.reference_depth_m if valid.numel() else 1.0
    return {f"{c:g}cm": c / 100.0 * factor for c in config.thresholds_cm}


def held_out_instant_views(seed: int, data_config, count: int) -> dict[str, Tensor]:
    """Views at instants between the window's frames: the input camera and one other camera of the rig.

    -> frames [M, 3, H, W], K [M, 3, 3], world_T_cam [M, 4, 4] (metric), frame_position [M] (n + 0.5),
    M = 2 * count. Re-casts the window's own scene (data.dataset.plan_window), so they are exact GT.
    """
    from dgslrm_ros.data.dataset import plan_window
    from dgslrm_ros.data.sequence import render_camera

    plan = plan_window(seed, data_config)
    t = data_config.window_frames
    if count <= 0 or t < 2:
        raise ValueError(f"held_out_instant_views: need count >= 1 and a window of >= 2 frames, got {count}, T={t}")
    lower = torch.linspace(0, t - 2, count).round().long()  # frame n of each instant n + 0.5
    position = lower.float() + 0.5
    other = (plan.input_view + 1) % data_config.num_views
    views = torch.cat([torch.full((count,), plan.input_view), torch.full((count,), other)])
    position = torch.cat([position, position])
    rendered, poses = render_camera(plan.setup, views, position / data_config.fps)
    return {"frames": rendered.rgb, "K": plan.setup.rig.K[views], "world_T_cam": poses, "frame_position": position}


def motion_metrics(pred_points: Tensor, gt_points: Tensor, keyframe_index: Tensor, valid: Tensor,
                   metres_per_unit: float, moving_threshold_m: float) -> dict[str, float]:
    """Scene-flow scores of one window: how well the tracks move, apart from where they start.

    pred_points, gt_points [Kf, T, H, W, 3] (normalised), valid [Kf, T, H, W] (entries to score),
    moving_threshold_m: a pixel is *moving* when its GT travels further than this at some frame.
    -> motion_m (mean predicted travel), flow_epe_m, moving_flow_epe_m, moving_track_epe_m (metres),
    moving_fraction (of the pixels with any valid entry). NaN where nothing qualifies.
    """
    frames = torch.arange(keyframe_index.numel(), device=pred_points.device)
    pred_flow = pred_points - pred_points[frames, keyframe_index.long()][:, None]  # displacement from own instant
    gt_flow = gt_points - gt_points[frames, keyframe_index.long()][:, None]
    gt_travel = torch.nan_to_num(gt_flow.norm(dim=-1) * metres_per_unit, nan=0.0)  # [Kf, T, H, W]
    scored_pixel = valid.any(dim=1)  # [Kf, H, W]
    moving_pixel = (gt_travel * valid).amax(dim=1) > moving_threshold_m  # [Kf, H, W]
    moving = valid & moving_pixel[:, None]

    def mean_m(values: Tensor) -> float:
        return float(values.mean()) * metres_per_unit if values.numel() else float("nan")

    return {
        "motion_m": mean_m(pred_flow.norm(dim=-1)[valid]),
        "flow_epe_m": mean_m(track_errors(pred_flow, gt_flow, valid)),
        "moving_flow_epe_m": mean_m(track_errors(pred_flow, gt_flow, moving)),
        "moving_track_epe_m": mean_m(track_errors(pred_points, gt_points, moving)),
        "moving_fraction": float(moving_pixel.sum()) / max(int(scored_pixel.sum()), 1),
    }


def _render_positions(gaussians: DeformableGaussians, positions: Tensor, world_T_cam: Tensor, K: Tensor,
                      height: int, width: int, background: float) -> Tensor:
    """Render one view per (possibly fractional) window frame position -> rgb [M, 3, H, W]."""
    bg = torch.full((3,), float(background), dtype=world_T_cam.dtype, device=world_T_cam.device)
    return torch.cat([render(gaussians.at(float(p)), world_T_cam[i:i + 1], K[i:i + 1], width, height, background=bg).rgb
                      for i, p in enumerate(positions.tolist())])


def score_window(gaussians: DeformableGaussians, batch: dict[str, Any], metres_per_unit: float,
                 thresholds_m: dict[str, float], max_depth: float, background: float = 0.0,
                 heldout: dict[str, Tensor] | None = None) -> tuple[dict[str, float], dict]:
    """Metrics of one method on one normalised window (batch of one) -> (metrics, renders for previews).

    `heldout` holds the held-out-instant views with poses already in the window's normalised frame.
    """
    frames, K, poses = batch["frames"][0], batch["K"][0], batch["world_T_cam"][0]  # [T, 3, H, W], ...
    t, _, height, width = frames.shape
    with torch.no_grad():
        inp, _ = render_at_instants(gaussians, torch.arange(t, device=frames.device), poses, K, height, width, background)
        nov, _ = render_at_instants(gaussians, batch["sup_frame_index"][0].long(), batch["sup_world_T_cam"][0],
                                    batch["sup_K"][0], height, width, background)
        mid = None if heldout is None else _render_positions(
            gaussians, heldout["frame_position"], heldout["world_T_cam"], heldout["K"], height, width, background
        ).clamp(0, 1)
    inp, nov = inp.clamp(0, 1), nov.clamp(0, 1)
    sup = batch["sup_frames"][0]
    nan = float("nan")
    out = {
        "input_psnr": mean_finite(psnr(inp, frames).tolist()), "input_ssim": float(ssim(inp, frames).mean()),
        "novel_psnr": mean_finite(psnr(nov, sup).tolist()), "novel_ssim": float(ssim(nov, sup).mean()),
        "heldout_psnr": nan if mid is None else mean_finite(psnr(mid, heldout["frames"]).tolist()),
        "heldout_ssim": nan if mid is None else float(ssim(mid, heldout["frames"]).mean()),
    }
    keyframe_index = batch["keyframe_index"][0].long()
    gt_points = batch["keyframe_points"][0]  # [Kf, T, H, W, 3] normalised
    pred_points = gaussian_tracks(gaussians, keyframe_index.numel(), height, width)
    gt_depth = batch["depth"][0][keyframe_index]  # [Kf, 1, H, W]
    valid = (torch.isfinite(gt_depth) & (gt_depth > 0) & (gt_depth <= max_depth))[:, None, 0]  # [Kf, 1, H, W]
    not_own = torch.arange(t, device=frames.device)[None, :] != keyframe_index[:, None]  # [Kf, T]
    valid = valid & not_own[:, :, None, None]
    errors = track_errors(pred_points, gt_points, valid) * metres_per_unit
    metrics = track_metrics(errors, thresholds_m)
    out["track_epe_m"] = metrics["epe"]
    out.update(motion_metrics(pred_points, gt_points, keyframe_index, valid, metres_per_unit,
                              min(thresholds_m.values()) if thresholds_m else 0.05))
    for name in thresholds_m:
        out[f"within_{name}"] = metrics[f"within_{name}"]
    return out, {"input": inp, "novel": nov, "tracks": pred_points}


def _preview(path: Path, batch: dict, renders: dict, title: str) -> None:
    frames, sup = batch["frames"][0], batch["sup_frames"][0]
    index = batch["sup_frame_index"][0].long()
    rows = torch.arange(min(2, sup.shape[0]))
    rr, cc = track_grid(frames.shape[-2], frames.shape[-1])
    kf0 = int(batch["keyframe_index"][0][0])
    save_preview(
        path, frames[index[rows]], renders["novel"][rows], sup[rows], frames[kf0],
        renders["tracks"][0][:, rr, cc].permute(1, 0, 2), batch["keyframe_points"][0][0][:, rr, cc].permute(1, 0, 2),
        batch["K"][0][kf0], batch["world_T_cam"][0][kf0], title,
    )


@torch.no_grad()
def predict(model: torch.nn.Module, batch: dict[str, Any]) -> DeformableGaussians:
    """Feed-forward Gaussians of a normalised batch of one (float32, detached)."""
    prediction = model(batch["frames"], batch["K"], batch["world_T_cam"], batch["timestamps"], **reference_inputs(batch))
    return prediction.gaussians(0).detach()


def evaluate_model(model: torch.nn.Module, samples: Iterable[dict[str, Any]], config: EvalConfig = EvalConfig(),
                   out_dir: str | Path | None = None, device: torch.device | str = "cpu",
                   data_config=None) -> dict[str, Any]:
    """Score the model (and baselines) on data samples -> {"methods": {name: mean metrics}, "scenes": [...]}.

    `data_config` (default: `samples.config` when the samples are a synthetic dataset) enables the
    held-out-instant metrics. Writes `metrics.json` and preview PNGs under out_dir when given; with refine_iters > 0 also the
    refinement quality/time curve (input-view PSNR vs iterations and seconds): refine_curve.json / .png.
    """
    device = torch.device(device)
    data_config = data_config if data_config is not None else getattr(samples, "config", None)
    max_depth = float(getattr(getattr(model, "config", None), "far", 10.0))
    was_training = model.training
    model.eval()
    per_scene: list[dict[str, Any]] = []
    refine_curves: list[list[dict]] = []
    out_path = Path(out_dir) if out_dir is not None else None
    for i, sample in enumerate(samples):
        if i >= config.num_scenes:
            break
        batch, norms = normalize_batch(to_device(add_batch_dim(sample), device), config.scene_scale)
        scale = norms[0].scale
        thresholds = threshold_values(batch["depth"][0][batch["keyframe_index"][0].long()] * scale, config,
                                      max_depth * scale)  # metric depth -> metric thresholds
        frames, K, poses = batch["frames"][0], batch["K"][0], batch["world_T_cam"][0]
        heldout = None
        if data_config is not None and config.heldout_instants > 0:
            views = held_out_instant_views(_scene_id(sample, i), data_config, config.heldout_instants)
            heldout = {k: v.to(device) for k, v in views.items()}
            heldout["world_T_cam"] = norms[0].poses_to_norm(heldout["world_T_cam"])

        start = time.perf_counter()
        feed_forward = predict(model, batch)
        ff_seconds = time.perf_counter() - start
        methods: dict[str, tuple[DeformableGaussians, float]] = {"dgslrm": (feed_forward, ff_seconds)}
        if config.refine_iters > 0:
            start = time.perf_counter()
            refined, curve = optimize_gaussians(feed_forward, frames, K, poses, config.refine_iters, config.refine,
                                                eval_every=max(1, config.refine_iters // 10))
            methods["dgslrm+refine"] = (refined, ff_seconds + curve[-1]["seconds"])
            refine_curves.append(curve)
        if config.baselines:
            methods["static"] = (static_baseline(feed_forward), ff_seconds)
            if config.optimize_iters > 0:
                start = time.perf_counter()
                init = depth_initialization(frames, batch["depth"][0], K, poses, batch["keyframe_index"][0],
                                            batch["timestamps"][0], max_depth)
                optimised, _ = optimize_gaussians(init, frames, K, poses, config.optimize_iters, config.refine)
                methods["optimised"] = (optimised, time.perf_counter() - start)

        scene = {"scene_id": _scene_id(sample, i), "metres_per_unit": scale, "thresholds_m": thresholds, "methods": {}}
        for name, (gaussians, seconds) in methods.items():
            metrics, renders = score_window(gaussians, batch, scale, thresholds, max_depth, config.background, heldout)
            metrics["seconds"] = seconds
            scene["methods"][name] = metrics
            if out_path is not None and i < config.previews:
                _preview(out_path / "previews" / f"scene{i:03d}_{name.replace('+', '_')}.png", batch, renders,
                         f"{name}: novel PSNR {metrics['novel_psnr']:.2f} dB, track EPE {metrics['track_epe_m']:.3f} m")
        per_scene.append(scene)
    model.train(was_training)
    if not per_scene:
        raise ValueError("evaluate_model: no samples to evaluate (num_scenes must be >= 1 and the split non-empty)")

    names = list(per_scene[0]["methods"])
    summary = {name: {key: mean_finite([s["methods"][name][key] for s in per_scene]) for key in METRIC_KEYS}
               for name in names}
    result = {"methods": summary, "scenes": per_scene, "num_scenes": len(per_scene),
              "config": _jsonable(asdict(config))}
    if refine_curves:  # quality vs cost of test-time refinement, averaged over the windows
        result["refine_curve"] = [
            {"iter": points[0]["iter"], "seconds": sum(p["seconds"] for p in points) / len(points),
             "psnr": mean_finite([p["psnr"] for p in points])}
            for points in zip(*refine_curves)
        ]
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
        if refine_curves:
            save_curve(result["refine_curve"], out_path)
        (out_path / "metrics.json").write_text(json.dumps(_finite_or_none(result), indent=2, default=_json_default))
    return result


def held_out_windows(model_config, num_scenes: int, cache: str | Path | None = None,
                     scene_preset: str = "default"):
    """The fixed held-out split (evaluation seeds, never trained on) shaped for `model_config`.

    With `cache`, the windows are rendered once into that directory and read back on later runs.
    """
    from dgslrm_ros.data.dataset import CachedWindowDataset, SyntheticWindowDataset, cache_split
    from dgslrm_ros.training.loop import dataset_config

    config = dataset_config(model_config, scene_preset)
    if cache is None:
        return SyntheticWindowDataset(config, num_samples=num_scenes, split="eval")
    cache = Path(cache)
    meta_path = cache / "config.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("dataset") == json.loads(json.dumps(config.to_dict())) and meta.get("num_samples", 0) >= num_scenes:
            return CachedWindowDataset(cache)
    cache_split(cache, config, num_samples=num_scenes, split="eval")
    return CachedWindowDataset(cache)


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width table of the per-method means."""
    headers = ("method", "in PSNR", "in SSIM", "nov PSNR", "nov SSIM", "mid PSNR", "mid SSIM", "EPE [m]", "<5cm", "<10cm", "<20cm",
               "motion [m]", "flow EPE", "mov flow", "mov EPE", "moving", "time [s]")
    keys = METRIC_KEYS
    lines = ["  ".join(f"{h:>10}" if i else f"{h:<14}" for i, h in enumerate(headers))]
    for name, metrics in result["methods"].items():
        cells = [f"{name:<14}"] + [f"{metrics[k]:>10.3f}" if math.isfinite(metrics[k]) else f"{'n/a':>10}" for k in keys]
        lines.append("  ".join(cells))
    lines.append(f"({result['num_scenes']} held-out windows; thresholds scaled to scene size, see evaluation/evaluate.py)")
    return "\n".join(lines)


def _scene_id(sample: dict[str, Any], fallback: int) -> int:
    value = sample.get("scene_id", fallback)
    return int(value.item() if isinstance(value, Tensor) else value)


def _finite_or_none(value: Any) -> Any:
    """NaN / inf -> null, so metrics.json is strict JSON every reader accepts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    return str(value)
