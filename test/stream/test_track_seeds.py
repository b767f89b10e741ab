"""Tracks are seeded where the plane sweep resolved a depth, or where the point moves.

A camera standing still (a robot waiting) looks at a textured wall at z = WALL with a textured board at
z = BOARD sliding across it. Without parallax the sweep resolves no depth anywhere (confidence 0), so a
track on the wall would sit at a guessed depth; the board's tracks show its motion, the gate opens there,
and those are the tracks a planner needs. With the node's default `min_track_confidence` (0) the node
publishes the board's tracks only; with -1 it seeds every pixel, the wall's too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgslrm_ros.geometry.track_trust import trusted_seed_pixels

pytest.importorskip("cv2")  # the classical cues need opencv-python-headless (a project dependency)

SIZE, FRAMES, FOCAL = 40, 16, 34.0
WALL, BOARD = 3.0, 2.0  # depths (m)
BOARD_HALF, BOARD_SPEED = 0.45, 0.12  # half width (m) and metres per frame along +x
T, KEYFRAMES = 8, [0, 4]


def _board_x(frame: int) -> float:
    return -0.9 + BOARD_SPEED * frame  # centre of the board


def _stream() -> torch.Tensor:
    """frames [N, 3, H, W] of the still camera at the origin (pixel centres at +0.5, looking down +z)."""
    generator = torch.Generator().manual_seed(7)
    wall = torch.rand(1, 3, 32, 32, generator=generator)  # over x, y in [-2, 2]
    board = torch.rand(1, 3, 12, 12, generator=generator)  # over the board's own [-half, half]^2
    rays = (torch.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL
    ray_x, ray_y = rays[None, :].expand(SIZE, SIZE), rays[:, None].expand(SIZE, SIZE)
    on_wall = F.grid_sample(wall, torch.stack([ray_x * WALL, ray_y * WALL], -1)[None] / 2.0, mode="bilinear",
                            align_corners=True)[0]
    frames = []
    for n in range(FRAMES):
        local = torch.stack([ray_x * BOARD - _board_x(n), ray_y * BOARD], -1)  # board coordinates (m)
        on_board = F.grid_sample(board, local[None] / BOARD_HALF, mode="bilinear", align_corners=True)[0]
        inside = (local.abs() < BOARD_HALF).all(-1)
        frames.append(torch.where(inside, on_board, on_wall))
    return torch.stack(frames)


def _on_board(frame: int) -> torch.Tensor:
    """[H, W] pixels that see the board at `frame`, away from its edges by 2 px."""
    rays = (torch.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL * BOARD
    margin = 2 / FOCAL * BOARD
    x = (rays[None, :] - _board_x(frame)).abs() < BOARD_HALF - margin
    y = rays[:, None].abs() < BOARD_HALF - margin
    return x & y


@pytest.fixture(scope="module")
def stream() -> torch.Tensor:
    return _stream()


def test_a_still_camera_trusts_the_moving_board_only(stream):
    from dgslrm_ros.geometry.cues import compute_cues

    K = torch.tensor([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]])
    cues = compute_cues(stream[:T], K.expand(T, 3, 3), torch.eye(4).repeat(T, 1, 1), torch.tensor(KEYFRAMES))
    assert (cues.sweep_confidence == 0).all()  # no parallax: no depth anywhere
    allowed = trusted_seed_pixels(cues.sweep_confidence, cues.gate, 0.0)  # [Kf, H, W]
    for row, frame in enumerate(KEYFRAMES):
        board = _on_board(frame)
        assert allowed[row][board].float().mean() > 0.8, frame
        assert allowed[row][~board].float().mean() < 0.1, frame
    assert trusted_seed_pixels(cues.sweep_confidence, cues.gate, -1.0).all()


@pytest.mark.parametrize("min_track_confidence", [0.0, -1.0])
def test_the_node_publishes_the_tracks_of_what_moves(make_pipeline, stream, min_track_confidence):
    from dgslrm_ros.model.classical import ClassicalReconstructor
    from dgslrm_ros.model.config import ModelConfig

    model = ClassicalReconstructor(ModelConfig.preset("tiny", window_frames=T, keyframe_stride=4)).eval()
    pipeline = make_pipeline(camera_info=False, model=model, method="classical", image_width=SIZE,
                             image_height=SIZE, track_grid=4, min_track_confidence=min_track_confidence)
    K_info = np.array([[FOCAL, 0.0, SIZE / 2 - 0.5], [0.0, FOCAL, SIZE / 2 - 0.5], [0.0, 0.0, 1.0]])
    pipeline.add_camera_info(K_info, np.zeros(5), "plumb_bob", SIZE, SIZE)  # CameraInfo: centres at integers
    travel = []
    for i in range(FRAMES):
        t = 0.1 * i
        pipeline.add_pose(t, np.eye(4), "world")
        pipeline.add_image(t, (stream[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        while (window := pipeline.pop_window()) is not None:
            positions = pipeline.reconstruct(window).tracks.positions  # [M, T, 3]
            travel.append(np.nanmax(np.linalg.norm(positions - positions[:, :1], axis=-1), axis=1))
    travel = np.concatenate(travel)
    assert len(travel) >= 10
    still = float(np.mean(travel < 0.05))  # the board moves 0.12 m a frame: its tracks travel far more
    if min_track_confidence >= 0:
        assert still < 0.2  # a few seeds by the board's edges, where the gate opens a little
    else:
        assert still > 0.5  # the wall fills most of the image
