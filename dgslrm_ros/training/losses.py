"""Training losses of DGS-LRM (paper.md, Training), all in the window's normalised frame.

    total = photometric(renders) + 10 * L1(keyframe depth) + 10 * L1(offsets - GT scene flow)
    photometric = MSE + w * perceptual,   perceptual = LPIPS(alex) (paper, w = 0.5) or 1 - SSIM

Renders: every supervision view (the dataset draws them from two synchronised cameras other than the
input one: dual-view supervision) at its own instant `sup_frame_index`, plus `input_views` frames of
the input camera. The prediction is deformed to the view's instant before rasterising.

LPIPS is our pure-torch port (metrics/lpips.py, weights shipped as safetensors). It needs renders
of at least 31 px a side, so tiny CPU runs below that use the structural term 1 - SSIM instead.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from dgslrm_ros.data.sample import WindowSample, scene_flow_targets
from dgslrm_ros.metrics import ssim
from dgslrm_ros.render import render_at_instants
from dgslrm_ros.training.config import LossConfig


@functools.lru_cache(maxsize=4)
def _lpips(device: torch.device):
    """The frozen LPIPS network, loaded once per device."""
    from dgslrm_ros.metrics.lpips import LPIPS

    return LPIPS().to(device)


def perceptual_loss(rendered: Tensor, target: Tensor, kind: str) -> Tensor:
    """Mean perceptual distance of [V, 3, H, W] renders to targets (0 for identical images)."""
    if kind == "none":
        return rendered.new_zeros(())
    if kind == "ssim":
        return 1.0 - ssim(rendered, target).mean()
    from dgslrm_ros.metrics.lpips import MIN_SIDE

    if min(rendered.shape[-2:]) < MIN_SIDE:
        raise ValueError(
            f"LPIPS needs renders of at least {MIN_SIDE} px a side, got {tuple(rendered.shape[-2:])}; "
            f"train at a larger --image-size or use LossConfig(perceptual='ssim')"
        )
    return _lpips(rendered.device)(rendered, target).mean()


def input_view_indices(num_frames: int, count: int) -> list[int]:
    """Evenly spread frame indices, always including the first and last frame (deterministic)."""
    if count < 0 or count >= num_frames:
        return list(range(num_frames))
    if count == 0:
        return []
    if count == 1:
        return [num_frames - 1]
    return sorted({round(i * (num_frames - 1) / (count - 1)) for i in range(count)})


def _masked_error(pred: Tensor, target: Tensor, valid: Tensor, power: int = 1) -> Tensor:
    """Mean |pred - target|^power over valid entries (broadcast over the trailing dims of pred)."""
    while valid.dim() < pred.dim():
        valid = valid.unsqueeze(-1)
    valid = valid.expand_as(pred)
    diff = (pred - torch.nan_to_num(target)).abs().pow(power)
    count = valid.sum().clamp_min(1)
    return (diff * valid).sum() / count


def compute_losses(prediction, batch: WindowSample, config: LossConfig = LossConfig()) -> dict[str, Tensor]:
    """Every loss term of one batch, separately for logging, plus `total` (the one to backpropagate).

    `prediction` is the model's GaussianPrediction for `batch`, a collated batch already in the
    normalised frame (WindowSample.normalized). Returns scalar tensors: mse, perceptual (LPIPS or
    1 - SSIM), photo (weighted photometric sum), depth, flow (L1 of offsets vs GT scene flow), total, psnr (detached).
    """
    frames, sup_frames = batch.frames, batch.sup_frames  # [B, T, 3, H, W], [B, S, 3, H, W]
    bsz, num_frames, _, height, width = frames.shape
    keyframe_index = prediction.keyframe_index.to(frames.device)  # [Kf]
    if not torch.equal(keyframe_index.cpu(), batch.keyframe_index[0].cpu()):
        raise ValueError(
            f"compute_losses: model keyframes {keyframe_index.tolist()} differ from the data's "
            f"{batch.keyframe_index[0].tolist()}; use the same keyframe_stride for model and data"
        )

    # Photometric: supervision views at their instants + a few input-camera frames.
    if config.photometric:
        input_idx = torch.tensor(input_view_indices(num_frames, config.input_views), dtype=torch.long,
                                 device=frames.device)
        renders, targets = [], []
        for b in range(bsz):
            gaussians = prediction.gaussians(b)  # float32: the head decodes outside autocast
            frame_index = torch.cat([batch.sup_frame_index[b].long(), input_idx])
            poses = torch.cat([batch.sup_world_T_cam[b], batch.world_T_cam[b][input_idx]]).float()
            Ks = torch.cat([batch.sup_K[b], batch.K[b][input_idx]]).float()
            rgb, _ = render_at_instants(gaussians, frame_index, poses, Ks, height, width, config.background)
            renders.append(rgb)
            targets.append(torch.cat([sup_frames[b], frames[b][input_idx]]).float())
        rendered, target = torch.cat(renders), torch.cat(targets)  # [V, 3, H, W]
        mse = (rendered - target).square().mean()
        perceptual = perceptual_loss(rendered, target, config.perceptual)
    else:
        mse = perceptual = frames.new_zeros((), dtype=torch.float32)
    photo = config.mse_weight * mse + config.perceptual_weight * perceptual

    # Geometry: keyframe depth and keyframe scene flow against ground truth (normalised units).
    gt_depth = batch.depth[:, keyframe_index].float()  # [B, Kf, 1, H, W]
    depth_valid = torch.isfinite(gt_depth) & (gt_depth > 0) & (gt_depth <= config.max_depth)

    # Scene flow: the predicted offsets against the GT displacement of each keyframe pixel's surface
    # point from its own keyframe instant (paper: L1 of offsets vs GT scene flow). Comparing offsets, not
    # positions, keeps the depth error out of the motion gradient: with positions, the sign of the L1
    # gradient on an offset is set by the (larger) depth error and the motion never gets a clean signal.
    pred_flow = prediction.offsets.permute(0, 1, 2, 4, 5, 3).float()  # [B, Kf, T, H, W, 3], 0 at own keyframe
    gt_flow = scene_flow_targets(batch.keyframe_points.float(), keyframe_index)  # [B, Kf, T, H, W, 3]
    # A keyframe pixel's GT track is usable when its surface point is within the model's depth range
    # (sky pixels are not); occluded instants stay supervised: the 3D flow of a hidden point is known.
    point_valid = torch.isfinite(gt_flow).all(-1) & depth_valid[:, :, None, 0, :, :]  # [B, Kf, T, H, W]
    power = 1 if config.flow_loss == "l1" else 2
    moving = (torch.nan_to_num(gt_flow).norm(dim=-1) * point_valid).amax(dim=2) > config.moving_threshold  # [B, Kf, H, W]
    pred_depth = prediction.depth.float()  # [B, Kf, 1, H, W]
    if config.depth_balance:
        moving_depth = depth_valid & moving[:, :, None]
        still = _masked_error(pred_depth, gt_depth, depth_valid & ~moving_depth)
        balanced = 0.5 * (_masked_error(pred_depth, gt_depth, moving_depth) + still)
        depth = torch.where(moving_depth.any(), balanced, still)  # a window without motion: still pixels only
    else:
        depth = _masked_error(pred_depth, gt_depth, depth_valid)
    if config.flow_balance:
        flow_moving = _masked_error(pred_flow, gt_flow, point_valid & moving[:, :, None], power)
        flow_still = _masked_error(pred_flow, gt_flow, point_valid & ~moving[:, :, None], power)
        flow = 0.5 * (flow_moving + flow_still)
    else:
        flow = _masked_error(pred_flow, gt_flow, point_valid, power)

    total = photo + config.depth_weight * depth + config.flow_weight * flow
    out = {"photo": photo, "mse": mse, "perceptual": perceptual, "depth": depth, "flow": flow}
    if config.gate_weight > 0 and prediction.gate is not None:
        scored = depth_valid[:, :, 0]  # [B, Kf, H, W]
        gate = prediction.gate[:, :, 0].clamp(1e-4, 1 - 1e-4)
        bce = torch.nn.functional.binary_cross_entropy(gate, moving.float(), reduction="none")
        out["gate"] = (bce * scored).sum() / scored.sum().clamp_min(1)
        total = total + config.gate_weight * out["gate"]
    psnr = -10.0 * torch.log10(mse.detach().clamp_min(1e-10)) if config.photometric else mse.new_zeros(())
    return {"total": total, **out, "psnr": psnr}
