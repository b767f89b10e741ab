"""A small hand-made sequence (numpy, the SyntheticSequence fields) so bag tests need no renderer."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def _rigid(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    T = np.eye(4)
    T[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    T[:3, 3] = rng.normal(size=3) * 3
    return T


@pytest.fixture
def sequence():
    rng = np.random.default_rng(7)
    V, T, H, W, M = 3, 5, 6, 8, 4
    K = np.stack([[[20.0 + v, 0, W / 2], [0, 21.0 + v, H / 2], [0, 0, 1]] for v in range(V)])
    tracks = rng.normal(size=(M, T, 3)).astype(np.float32)
    tracks[1, 2] = np.nan  # a sample that left the scene
    visible = rng.random((M, T)) > 0.4
    return SimpleNamespace(
        scene_id=7,
        timestamps=(np.arange(T) / 10.0).astype(np.float32),  # float32 like the generator
        frames=rng.random((V, T, 3, H, W)).astype(np.float32),
        depth=rng.random((V, T, 1, H, W)).astype(np.float32),
        K=K,
        world_T_cam=np.stack([[_rigid(rng) for _ in range(T)] for _ in range(V)]),
        track_points=tracks,
        track_visible=visible,
    )
