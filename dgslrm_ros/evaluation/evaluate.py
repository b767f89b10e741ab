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

- keyframe depth: AbsRel (|z - z_gt| / z_gt) of every Gaussian's z-depth in its own keyframe camera,
  median and mean over the keyframe pixels with ground truth.
- published tracks (`published_*`, geometry-primed models): the same track and scene-flow errors over
  the keyframe pixels the node would seed its published tracks at (geometry.track_trust: the sweep
  resolved a depth there, or the point shows motion; all of them, not only the node's `track_grid`),
  and which fraction of the keyframe pixels that is. The pixels come from the window's cues, so every
  method is scored on the same ones: `static` gives their standing-still figures.

Methods: `network` (feed-forward), `classical` (the network's cues alone: plane-sweep depth + lifted
optical-flow tracks), `static` (the network's deformation forced to zero), `optimised` (test-time
optimisation from depth-unprojected pixels, see evaluation.baselines), `network+refine` when
refine_iters > 0, and three oracle rows that bound what better geometry would buy: `oracle depth` (the
network's Gaussians moved onto the ground-truth keyframe depth), `oracle depth+motion` (also the
ground-truth scene flow as the deformation) and `oracle depth, static` (ground-truth depth, no motion:
against `oracle depth+motion` it is the most that motion can add to a render at this renderer).

Windows are also summarised by camera motion: `translating` (the camera moves >= 8 cm over the window:
depth is observable from parallax) and `pan/still` (less: only learned priors can give depth).
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor
from tqdm import tqdm

from dgslrm_ros.core.cameras import project_points, unproject_depth
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.strict_json import strict_json
from dgslrm_ros.data.sample import WindowSample, scene_flow_targets
from dgslrm_ros.evaluation.baselines import depth_initialization, gaussian_tracks, static_baseline
from dgslrm_ros.evaluation.config import EvalConfig
from dgslrm_ros.evaluation.previews import save_preview, track_grid
from dgslrm_ros.evaluation.refine import optimize_gaussians, save_curve
from dgslrm_ros.evaluation.scoring import mean_scores
from dgslrm_ros.geometry.cues import GeometryCues
from dgslrm_ros.geometry.track_trust import trusted_seed_pixels
from dgslrm_ros.metrics import mean_finite, track_errors, track_metrics
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.dgslrm import window_cues
from dgslrm_ros.render import render_at_instants
from dgslrm_ros.render.color_solve import solve_keyframe_colors

METRIC_KEYS = ("input_psnr", "input_ssim", "novel_psnr", "novel_ssim", "heldout_psnr", "heldout_ssim", "track_epe_m",
               "within_5cm", "within_10cm", "within_20cm", "motion_m", "flow_epe_m", "moving_flow_epe_m",
               "moving_track_epe_m", "moving_fraction", "depth_absrel_median", "depth_absrel_mean", "seconds",
               "published_fraction", "published_track_epe_m", "published_flow_epe_m", "published_moving_flow_epe_m",
               "published_moving_fraction")
TRANSLATING_M = 0.08  # camera travel over a window from which on depth counts as observable from parallax


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


def depth_absrel(pred_points: Tensor, gt_depth: Tensor, K: Tensor, world_T_cam: Tensor, keyframe_index: Tensor,
                 max_depth: float) -> dict[str, float]:
    """AbsRel of each keyframe Gaussian's z-depth in its own keyframe camera.

    pred_points [Kf, T, H, W, 3], gt_depth [Kf, 1, H, W], K [Kf, 3, 3], world_T_cam [Kf, 4, 4] (one frame).
    """
    kf, _, height, width, _ = pred_points.shape
    own = pred_points[torch.arange(kf, device=pred_points.device), keyframe_index.long()]  # [Kf, H, W, 3]
    _, z = project_points(own.reshape(kf, -1, 3), K, world_T_cam)  # [Kf, H*W]
    gt = gt_depth.reshape(kf, -1)
    valid = torch.isfinite(gt) & (gt > 0) & (gt <= max_depth) & torch.isfinite(z)
    rel = ((z - gt).abs() / gt)[valid]
    nan = float("nan")
    return {"depth_absrel_median": float(rel.median()) if rel.numel() else nan,
            "depth_absrel_mean": float(rel.mean()) if rel.numel() else nan}


def oracle_depth(gaussians: DeformableGaussians, gt_depth: Tensor, K: Tensor, world_T_cam: Tensor,
                 max_depth: float) -> DeformableGaussians:
    """The same pixel-ordered Gaussians moved along their rays onto the GT keyframe depth [Kf, 1, H, W]
    (K, world_T_cam of the keyframes), their scales grown or shrunk with the depth so each still covers
    its pixel; pixels without GT keep their own depth."""
    kf, _, height, width = gt_depth.shape
    points = unproject_depth(gt_depth.clamp(max=max_depth).nan_to_num(0.0), K, world_T_cam).reshape(-1, 3)
    valid = (torch.isfinite(gt_depth) & (gt_depth > 0)).reshape(-1, 1)
    centres = world_T_cam[:, None, None, :3, 3].expand(kf, height, width, 3).reshape(-1, 3)
    ratio = (points - centres).norm(dim=-1, keepdim=True) / (gaussians.means - centres).norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return replace(gaussians, means=torch.where(valid, points, gaussians.means),
                   scales=torch.where(valid, gaussians.scales * ratio, gaussians.scales))


def oracle_motion(gaussians: DeformableGaussians, keyframe_points: Tensor, keyframe_index: Tensor) -> DeformableGaussians:
    """Ground-truth scene flow (keyframe_points [Kf, T, H, W, 3]) as the deformation of pixel-ordered Gaussians."""
    flow = scene_flow_targets(keyframe_points[None], keyframe_index)[0]  # [Kf, T, H, W, 3]
    kf, t, height, width, _ = flow.shape
    offsets = flow.permute(0, 2, 3, 1, 4).reshape(kf * height * width, t, 3).nan_to_num(0.0)
    return replace(gaussians, offsets=offsets.to(gaussians.offsets.dtype))


def camera_travel_m(world_T_cam: Tensor, metres_per_unit: float) -> float:
    """Largest distance (m) of a window camera from the first one."""
    positions = world_T_cam[:, :3, 3]
    return float((positions - positions[:1]).norm(dim=-1).max()) * metres_per_unit


def published_track_metrics(pred_points: Tensor, gt_points: Tensor, keyframe_index: Tensor, valid: Tensor,
                            published: Tensor | None, metres_per_unit: float,
                            moving_threshold_m: float) -> dict[str, float]:
    """Track and scene-flow errors over the keyframe pixels `published` [Kf, H, W] (bool) marks.

    pred_points, gt_points [Kf, T, H, W, 3], valid [Kf, T, H, W] as in `motion_metrics`. NaN everywhere
    when `published` is None (a model without cues); the errors are NaN when it marks no scored pixel.
    """
    keys = ("published_fraction", "published_track_epe_m", "published_flow_epe_m", "published_moving_flow_epe_m",
            "published_moving_fraction")
    if published is None:
        return dict.fromkeys(keys, float("nan"))
    scored_pixel = valid.any(dim=1)  # [Kf, H, W]
    chosen = valid & published[:, None].to(torch.bool)
    errors = track_errors(pred_points, gt_points, chosen)
    motion = motion_metrics(pred_points, gt_points, keyframe_index, chosen, metres_per_unit, moving_threshold_m)
    return {"published_fraction": float((scored_pixel & published).sum()) / max(int(scored_pixel.sum()), 1),
            "published_track_epe_m": float(errors.mean()) * metres_per_unit if errors.numel() else float("nan"),
            "published_flow_epe_m": motion["flow_epe_m"],
            "published_moving_flow_epe_m": motion["moving_flow_epe_m"],
            "published_moving_fraction": motion["moving_fraction"]}


def score_window(gaussians: DeformableGaussians, batch: WindowSample, metres_per_unit: float,
                 thresholds_m: dict[str, float], max_depth: float, background: float = 0.0,
                 heldout: dict[str, Tensor] | None = None,
                 published: Tensor | None = None) -> tuple[dict[str, float], dict]:
    """Metrics of one method on one normalised window (batch of one) -> (metrics, renders for previews).

    `heldout` holds the held-out-instant views with poses already in the window's normalised frame;
    `published` [Kf, H, W] bool the keyframe pixels the node would publish tracks at (None: no cues).
    """
    frames, K, poses = batch.frames[0], batch.K[0], batch.world_T_cam[0]  # [T, 3, H, W], ...
    t, _, height, width = frames.shape
    with torch.no_grad():
        inp, _ = render_at_instants(gaussians, torch.arange(t, device=frames.device), poses, K, height, width, background)
        nov, _ = render_at_instants(gaussians, batch.sup_frame_index[0].long(), batch.sup_world_T_cam[0],
                                    batch.sup_K[0], height, width, background)
        mid = None if heldout is None else render_at_instants(
            gaussians, heldout["frame_position"], heldout["world_T_cam"], heldout["K"], height, width, background)[0]
    out = {**mean_scores(inp, frames, "input_"), **mean_scores(nov, batch.sup_frames[0], "novel_"),
           **mean_scores(mid, None if heldout is None else heldout["frames"], "heldout_")}
    keyframe_index = batch.keyframe_index[0].long()
    gt_points = batch.keyframe_points[0]  # [Kf, T, H, W, 3] normalised
    pred_points = gaussian_tracks(gaussians, keyframe_index.numel(), height, width)
    gt_depth = batch.depth[0][keyframe_index]  # [Kf, 1, H, W]
    valid = (torch.isfinite(gt_depth) & (gt_depth > 0) & (gt_depth <= max_depth))[:, None, 0]  # [Kf, 1, H, W]
    not_own = torch.arange(t, device=frames.device)[None, :] != keyframe_index[:, None]  # [Kf, T]
    valid = valid & not_own[:, :, None, None]
    errors = track_errors(pred_points, gt_points, valid) * metres_per_unit
    metrics = track_metrics(errors, thresholds_m)
    out.update(depth_absrel(pred_points, gt_depth, K[keyframe_index], poses[keyframe_index], keyframe_index, max_depth))
    out["track_epe_m"] = metrics["epe"]
    moving_threshold_m = min(thresholds_m.values()) if thresholds_m else 0.05
    out.update(motion_metrics(pred_points, gt_points, keyframe_index, valid, metres_per_unit, moving_threshold_m))
    out.update(published_track_metrics(pred_points, gt_points, keyframe_index, valid, published, metres_per_unit,
                                       moving_threshold_m))
    for name in thresholds_m:
        out[f"within_{name}"] = metrics[f"within_{name}"]
    return out, {"input": inp, "novel": nov, "tracks": pred_points}


def _preview(path: Path, batch: WindowSample, renders: dict, title: str) -> None:
    frames, sup = batch.frames[0], batch.sup_frames[0]
    index = batch.sup_frame_index[0].long()
    rows = torch.arange(min(2, sup.shape[0]))
    rr, cc = track_grid(frames.shape[-2], frames.shape[-1])
    kf0 = int(batch.keyframe_index[0][0])
    save_preview(
        path, frames[index[rows]], renders["novel"][rows], sup[rows], frames[kf0],
        renders["tracks"][0][:, rr, cc].permute(1, 0, 2), batch.keyframe_points[0][0][:, rr, cc].permute(1, 0, 2),
        batch.K[0][kf0], batch.world_T_cam[0][kf0], title,
    )


@torch.no_grad()
def predict(model: torch.nn.Module, batch: WindowSample, cues: GeometryCues | None = None) -> DeformableGaussians:
    """Feed-forward Gaussians of a normalised batch of one (float32, detached); `cues` when already computed."""
    prediction = model(**batch.model_inputs(), cues=cues)
    return prediction.gaussians(0).detach()


def solved_colors(gaussians: DeformableGaussians, batch: WindowSample, iterations: int) -> DeformableGaussians:
    """The Gaussians with their keyframe colours solved against the drawing on the batch's frames, as the node
    does (render/color_solve.py; 0 iterations: unchanged)."""
    return solve_keyframe_colors(gaussians, batch.frames[0].float(), batch.K[0], batch.world_T_cam[0], iterations)


def evaluate_model(model: torch.nn.Module, samples: Iterable[WindowSample], config: EvalConfig = EvalConfig(),
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
    total = min(config.num_scenes, len(samples)) if hasattr(samples, "__len__") else config.num_scenes
    for i, sample in enumerate(tqdm(samples, total=total, desc="eval", unit="window", disable=not config.progress)):
        if i >= config.num_scenes:
            break
        batch, norms = sample.add_batch_dim().to(device).normalized(config.scene_scale)
        scale = norms[0].scale
        thresholds = threshold_values(batch.depth[0][batch.keyframe_index[0].long()] * scale, config,
                                      max_depth * scale)  # metric depth -> metric thresholds
        frames, K, poses = batch.frames[0], batch.K[0], batch.world_T_cam[0]
        heldout = None
        if data_config is not None and config.heldout_instants > 0:
            views = held_out_instant_views(int(sample.scene_id), data_config, config.heldout_instants)
            heldout = {k: v.to(device) for k, v in views.items()}
            heldout["world_T_cam"] = norms[0].poses_to_norm(heldout["world_T_cam"])

        start = time.perf_counter()
        primed = getattr(model.config, "geometry_primed", False)
        cues = window_cues(frames[None], K[None], poses[None], model.keyframe_index(device)) if primed else None
        cue_seconds = time.perf_counter() - start
        raw = predict(model, batch, cues)
        feed_forward = solved_colors(raw, batch, config.color_solve_iters)
        ff_seconds = time.perf_counter() - start
        methods: dict[str, tuple[DeformableGaussians, float]] = {"network": (feed_forward, ff_seconds)}
        if config.refine_iters > 0:
            start = time.perf_counter()
            # from the predicted colours: refinement fits colours itself, through a sigmoid in [0, 1]
            refined, curve = optimize_gaussians(raw, frames, K, poses, config.refine_iters, config.refine,
                                                eval_every=max(1, config.refine_iters // 10))
            methods["network+refine"] = (refined, ff_seconds + curve[-1]["seconds"])
            refine_curves.append(curve)
        if config.classical and primed:
            start = time.perf_counter()
            classical = solved_colors(predict(ClassicalReconstructor(model.config).to(device), batch, cues), batch,
                                      config.color_solve_iters)
            methods["classical"] = (classical, cue_seconds + time.perf_counter() - start)
        if config.baselines:
            methods["static"] = (static_baseline(feed_forward), ff_seconds)
            if config.optimize_iters > 0:
                start = time.perf_counter()
                init = depth_initialization(frames, batch.depth[0], K, poses, batch.keyframe_index[0],
                                            batch.timestamps[0], max_depth)
                optimised, _ = optimize_gaussians(init, frames, K, poses, config.optimize_iters, config.refine)
                methods["optimised"] = (optimised, time.perf_counter() - start)
        if config.oracles:
            kf = batch.keyframe_index[0].long()
            # the network's Gaussians at the ground-truth depth, their colours solved for that geometry
            with_depth = solved_colors(oracle_depth(raw, batch.depth[0][kf], K[kf], poses[kf], max_depth), batch,
                                       config.color_solve_iters)
            methods["oracle depth"] = (with_depth, ff_seconds)
            methods["oracle depth+motion"] = (oracle_motion(with_depth, batch.keyframe_points[0], kf), ff_seconds)
            methods["oracle depth, static"] = (static_baseline(with_depth), ff_seconds)

        published = None if cues is None else trusted_seed_pixels(cues.sweep_confidence[0], cues.gate[0],
                                                                  config.min_track_confidence)
        travel = camera_travel_m(poses, scale)
        scene = {"scene_id": int(sample.scene_id), "metres_per_unit": scale, "thresholds_m": thresholds,
                 "camera_travel_m": travel, "camera_motion": "translating" if travel >= TRANSLATING_M else "pan/still",
                 "methods": {}}
        for name, (gaussians, seconds) in methods.items():
            metrics, renders = score_window(gaussians, batch, scale, thresholds, max_depth, config.background, heldout,
                                            published)
            metrics["seconds"] = seconds
            scene["methods"][name] = metrics
            if out_path is not None and i < config.previews:
                _preview(out_path / "previews" / f"scene{i:03d}_{re.sub('[^a-z0-9]+', '_', name)}.png", batch, renders,
                         f"{name}: novel PSNR {metrics['novel_psnr']:.2f} dB, track EPE {metrics['track_epe_m']:.3f} m")
        per_scene.append(scene)
    model.train(was_training)
    if not per_scene:
        raise ValueError("evaluate_model: no samples to evaluate (num_scenes must be >= 1 and the split non-empty)")

    names = list(per_scene[0]["methods"])

    def summarise(scenes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        # depth AbsRel: medians of the per-window values are summarised by their median (heavy tails)
        out = {name: {key: mean_finite([s["methods"][name][key] for s in scenes]) for key in METRIC_KEYS}
               for name in names}
        for name in names:
            values = torch.tensor([s["methods"][name]["depth_absrel_median"] for s in scenes], dtype=torch.float64)
            values = values[torch.isfinite(values)]
            out[name]["depth_absrel_median"] = float(values.median()) if values.numel() else float("nan")
        return out

    strata = {kind: summarise([s for s in per_scene if s["camera_motion"] == kind])
              for kind in ("translating", "pan/still") if any(s["camera_motion"] == kind for s in per_scene)}
    result = {"methods": summarise(per_scene), "strata": strata, "scenes": per_scene, "num_scenes": len(per_scene),
              "strata_counts": {k: sum(s["camera_motion"] == k for s in per_scene) for k in strata},
              "config": strict_json(asdict(config))}
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
        (out_path / "metrics.json").write_text(json.dumps(strict_json(result), indent=2))
    return result


def held_out_windows(model_config, num_scenes: int, cache: str | Path | None = None,
                     scene_preset: str = "default", pixel_samples: int = 1):
    """The fixed held-out split (evaluation seeds, never trained on) shaped for `model_config` (pixel_samples:
    data.dataset.WindowDatasetConfig's).

    With `cache`, the windows are rendered once into that directory and read back on later runs.
    """
    from dgslrm_ros.data.dataset import (CachedWindowDataset, SyntheticWindowDataset, WindowDatasetConfig, cache_split,
                                         dataset_config)

    config = dataset_config(model_config, scene_preset, pixel_samples)
    if cache is None:
        return SyntheticWindowDataset(config, num_samples=num_scenes, split="eval")
    cache = Path(cache)
    meta_path = cache / "config.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        # read through from_dict, so a cache written before a field existed matches its default
        cached = WindowDatasetConfig.from_dict(meta["dataset"]).to_dict() if isinstance(meta.get("dataset"), dict) else None
        if cached == config.to_dict() and meta.get("num_samples", 0) >= num_scenes:
            return CachedWindowDataset(cache)
    cache_split(cache, config, num_samples=num_scenes, split="eval")
    return CachedWindowDataset(cache)


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width tables of the per-method means: all windows, then each camera-motion stratum."""
    headers = ("method", "AbsRel med", "AbsRel mean", "mov flow", "flow EPE", "EPE [m]", "mid PSNR", "nov PSNR",
               "in PSNR", "<10cm", "motion [m]", "time [s]")
    keys = ("depth_absrel_median", "depth_absrel_mean", "moving_flow_epe_m", "flow_epe_m", "track_epe_m",
            "heldout_psnr", "novel_psnr", "input_psnr", "within_10cm", "motion_m", "seconds")

    published_headers = ("published tracks", "pixels", "EPE [m]", "flow EPE", "mov flow", "moving")
    published_keys = ("published_fraction", "published_track_epe_m", "published_flow_epe_m",
                      "published_moving_flow_epe_m", "published_moving_fraction")

    def table(methods: dict[str, dict[str, float]], headers=headers, keys=keys) -> list[str]:
        lines = ["  ".join(f"{h:>11}" if i else f"{h:<20}" for i, h in enumerate(headers))]
        for name, metrics in methods.items():
            cells = [f"{name:<20}"] + [f"{metrics[k]:>11.3f}" if math.isfinite(metrics[k]) else f"{'n/a':>11}"
                                       for k in keys]
            lines.append("  ".join(cells))
        return lines

    lines = [f"all {result['num_scenes']} held-out windows"] + table(result["methods"])
    for kind, methods in result.get("strata", {}).items():
        lines += ["", f"{kind} camera ({result['strata_counts'][kind]} windows)"] + table(methods)
    lines.append("(flow EPE / mov flow: scene-flow error over all / moving pixels, m; EPE: absolute 3D track error, m; "
                 "thresholds scaled to scene size, see evaluation/evaluate.py)")
    published = {name: m for name, m in result["methods"].items()
                 if math.isfinite(m.get("published_fraction", math.nan))}
    if published:
        lines += ["", f"the keyframe pixels the node publishes tracks at, all {result['num_scenes']} windows"]
        lines += table(published, published_headers, published_keys)
        lines.append("(pixels / moving: their share of the keyframe pixels / the moving share of them; `static`: "
                     "the same pixels standing still)")
    return "\n".join(lines)

