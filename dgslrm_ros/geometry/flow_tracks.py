"""Dense 2D tracks of every keyframe pixel across the window: optical flow chained frame to frame.

OpenCV's DIS flow (Kroeger et al. 2016) between consecutive frames, forward and backward, chained
from each keyframe towards both ends of the window. Chaining short steps beats direct keyframe-to-frame
flow (the issue's probe: 2.5 px mean error against 5.4 px for zero motion at 64 px; direct flow far
worse). Each step's forward-backward disagreement marks occlusion; a track that fails it once stays
invalid for the rest of that direction, and the summed disagreement is kept as its running error.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dgslrm_ros.core.cameras import inside_image, pixel_centers, pixel_length
from dgslrm_ros.geometry import cpu_kernels


@dataclass(frozen=True)
class FlowConfig:
    """DIS settings (for 64-256 px images) and the occlusion test of each chained step."""

    preset: str = "fast"  # ultrafast | fast | medium (OpenCV's DIS presets); at 64 px `fast` with 8 px
    patch_size: int = 8  # patches tracked best: 0.84 px chained error against 1.7 px for zero motion
    patch_stride: int = 4
    fb_tolerance_px: float = 0.75  # a step fails when forward + backward flow disagree by more than
    fb_relative: float = 0.1  # ... tolerance + this share of the step's motion
    work_width_px: int = 64  # DIS's finest level is the one nearest this width (finest_scale). The preset's
    # fixed scale 2 was full resolution at 64 px (OpenCV falls back to it on images too small for that
    # pyramid: what the settings above were tuned on) but a quarter at 128 px, where the chained error was
    # 3.3 px against 4.0 px for standing still; at half resolution 2.5 px (docs/results/moving_motion.md)

    def __post_init__(self) -> None:
        if self.preset not in _PRESETS:
            raise ValueError(f"FlowConfig.preset: expected one of {sorted(_PRESETS)}, got {self.preset!r}")
        if self.work_width_px < 8:
            raise ValueError(f"FlowConfig.work_width_px: expected at least 8 px, got {self.work_width_px}")


_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


@dataclass(frozen=True)
class Tracks2D:
    """Where each keyframe pixel is seen in every window frame."""

    positions: Tensor  # [Kf, T, H, W, 2] pixel coordinates (centres at +0.5), x first
    valid: Tensor  # [Kf, T, H, W] bool: tracked without an occlusion or leaving the image
    error: Tensor  # [Kf, T, H, W] summed forward-backward disagreement along the chain (px)


def gray_uint8(frames: Tensor) -> list[np.ndarray]:
    """frames [T, 3, H, W] in [0, 1] -> T grey uint8 images [H, W], what DIS is given."""
    gray = (0.299 * frames[:, 0] + 0.587 * frames[:, 1] + 0.114 * frames[:, 2]).clamp(0, 1)
    return list((gray * 255.0 + 0.5).to(torch.uint8).cpu().numpy())


def finest_scale(width: int, config: FlowConfig = FlowConfig()) -> int:
    """DIS's finest pyramid level for images `width` px wide: the one nearest config.work_width_px (0: full
    resolution; 64 px -> 0, 128 px -> 1, 256 px -> 2)."""
    return max(0, round(math.log2(width / config.work_width_px)))


def flow_estimator(width: int, config: FlowConfig = FlowConfig()):
    """An OpenCV DIS estimator with the config's settings for images `width` px wide (it keeps nothing
    between `flow_pair` calls)."""
    import cv2  # opencv-python-headless; imported here so the rest of the package loads without it

    dis = cv2.DISOpticalFlow_create(_PRESETS[config.preset])
    dis.setPatchSize(config.patch_size)
    dis.setPatchStride(config.patch_stride)
    dis.setFinestScale(finest_scale(width, config))
    return dis


def flow_pair(estimator, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey images a, b [H, W] -> (flow a -> b, flow b -> a), each [H, W, 2] float32 pixels."""
    return estimator.calc(a, b, None), estimator.calc(b, a, None)


def flow_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], config: FlowConfig = FlowConfig(),
               workers: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """flow_pair of each grey pair, the pairs dealt over `workers` threads (default: torch's thread count).

    At 64 px one DIS call is too small for OpenCV's own threads to fill two cores (12 pairs: 25 ms serial,
    16 ms over two threads); DIS releases the GIL and keeps nothing between calls, so each thread's own
    estimator gives the flows one estimator would, to the bit.
    """
    if not pairs:
        return []
    workers = max(1, min(len(pairs), torch.get_num_threads() if workers is None else workers))
    width = pairs[0][0].shape[1]
    results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(pairs)

    def run(worker: int) -> None:
        estimator = flow_estimator(width, config)
        for k in range(worker, len(pairs), workers):
            results[k] = flow_pair(estimator, *pairs[k])

    if workers == 1:
        run(0)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(run, w) for w in range(workers)]:
                done.result()  # a worker's exception surfaces here
    return results  # type: ignore[return-value]


def stack_flows(pairs: list[tuple[np.ndarray, np.ndarray]], height: int, width: int,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """flow_pair results of consecutive frames -> (forward [T-1, 2, H, W], backward [T-1, 2, H, W])."""
    if not pairs:
        empty = torch.zeros(0, 2, height, width, device=device)
        return empty, empty.clone()
    to_tensor = lambda flows: torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).float().to(device)
    return to_tensor([f for f, _ in pairs]), to_tensor([b for _, b in pairs])


def pairwise_flow(frames: Tensor, config: FlowConfig = FlowConfig()) -> tuple[Tensor, Tensor]:
    """Flow between consecutive frames: frames [T, 3, H, W] -> (forward [T-1, 2, H, W] from n to n+1,
    backward [T-1, 2, H, W] from n+1 to n), in pixels."""
    gray = gray_uint8(frames)
    return stack_flows(flow_pairs(list(zip(gray[:-1], gray[1:])), config), *frames.shape[-2:], frames.device)


def _sample(field: Tensor, uv: Tensor) -> Tensor:
    """Bilinear sample of fields [B, C, H, W] at pixel coordinates uv [B, N, 2] -> [B, N, C] (border clamped)."""
    height, width = field.shape[-2:]
    grid = torch.stack([uv[..., 0] / width * 2.0 - 1.0, uv[..., 1] / height * 2.0 - 1.0], dim=-1)
    out = F.grid_sample(field, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :, 0].transpose(1, 2)


def chain_tracks(frames: Tensor, keyframe_index: Tensor | list[int], config: FlowConfig = FlowConfig(),
                 flows: tuple[Tensor, Tensor] | None = None) -> Tracks2D:
    """Track every pixel of every keyframe through the window.

    frames [T, 3, H, W] in [0, 1], keyframe_index [Kf]; `flows` = pairwise_flow(frames) when already
    computed. -> Tracks2D. On a CPU the C kernel follows each pixel through its frames
    (_chain_tracks_kernel); elsewhere every keyframe's chain towards the newest and towards the oldest
    frame is advanced in torch, one batch per step (a loop per chain cost 5x more on a CPU at 64 px).
    test/geometry/test_cpu_kernels.py holds the two together.
    """
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"chain_tracks: expected frames [T, 3, H, W], got {tuple(frames.shape)}")
    t, _, height, width = frames.shape
    forward, backward = flows if flows is not None else pairwise_flow(frames, config)
    keyframes = [int(k) for k in (keyframe_index.tolist() if isinstance(keyframe_index, Tensor) else keyframe_index)]
    if t >= 2 and cpu_kernels.runs_on(forward):
        return _chain_tracks_kernel(forward, backward, keyframes, height, width, config)
    return _chain_tracks_torch(forward, backward, keyframes, t, height, width, config)


def _chain_tracks_kernel(forward: Tensor, backward: Tensor, keyframes: list[int], height: int, width: int,
                         config: FlowConfig) -> Tracks2D:
    """chain_tracks' torch batch steps per pixel in one pass (geometry/_kernels.c), over torch's threads."""
    kf, t = len(keyframes), forward.shape[0] + 1
    positions = torch.empty(kf, t, height, width, 2)
    valid = torch.empty(kf, t, height, width, dtype=torch.bool)
    error = torch.empty(kf, t, height, width)
    inputs = [x.detach().float().contiguous().numpy() for x in (forward, backward)]
    cpu_kernels.KERNELS.chain_tracks(*inputs, np.asarray(keyframes, dtype=np.int32), kf, t, height, width,
                                     float(config.fb_tolerance_px), float(config.fb_relative), positions.numpy(),
                                     valid.numpy(), error.numpy(), torch.get_num_threads())
    return Tracks2D(positions=positions, valid=valid, error=error)


def _chain_tracks_torch(forward: Tensor, backward: Tensor, keyframes: list[int], t: int, height: int, width: int,
                        config: FlowConfig) -> Tracks2D:
    """chain_tracks in batched torch steps: forward / backward [T-1, 2, H, W] -> Tracks2D."""
    device = forward.device
    start = pixel_centers(height, width, device=device).reshape(-1, 2)  # [H*W, 2]
    kf, pixels = len(keyframes), height * width
    positions = torch.full((kf, t, pixels, 2), float("nan"), device=device)
    valid = torch.zeros(kf, t, pixels, dtype=torch.bool, device=device)
    error = torch.zeros(kf, t, pixels, device=device)
    rows = torch.arange(kf, device=device)
    positions[rows, keyframes], valid[rows, keyframes] = start, True
    # Chain c < Kf runs from keyframe c towards the newest frame, chain Kf + c towards the oldest.
    owner = torch.cat([rows, rows])
    direction = torch.tensor([1] * kf + [-1] * kf, device=device)
    frame = torch.tensor(keyframes * 2, device=device)  # where each chain is now
    fields = torch.cat([forward, backward])  # [2(T-1), 2, H, W]: forward[n] at n, backward[n] at T-1+n
    uv = start.expand(2 * kf, -1, -1).clone()
    alive = torch.ones(2 * kf, pixels, dtype=torch.bool, device=device)
    err = torch.zeros(2 * kf, pixels, device=device)
    while True:
        target = frame + direction
        active = ((target >= 0) & (target < t)).nonzero()[:, 0]
        if active.numel() == 0:
            break
        n, towards_newest = frame[active], direction[active] == 1
        there = torch.where(towards_newest, n, t - 1 + n - 1)  # flow from frame n to its neighbour
        back = torch.where(towards_newest, t - 1 + n, n - 1)  # flow from the neighbour back to n
        move = _sample(fields[there], uv[active])  # [B, HW, 2]
        landed = uv[active] + move
        disagreement = pixel_length(move + _sample(fields[back], landed))
        inside = inside_image(landed, height, width)
        consistent = disagreement <= config.fb_tolerance_px + config.fb_relative * pixel_length(move)
        alive[active] = alive[active] & inside & consistent
        err[active] = err[active] + disagreement
        uv[active], frame[active] = landed, target[active]
        keyframe, reached = owner[active], target[active]
        positions[keyframe, reached], valid[keyframe, reached], error[keyframe, reached] = landed, alive[active], err[active]
    shape = (kf, t, height, width)
    return Tracks2D(positions=positions.reshape(*shape, 2), valid=valid.reshape(shape), error=error.reshape(shape))
