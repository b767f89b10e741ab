"""Unit quaternions (w, x, y, z) <-> rotation matrices in numpy, the twins of `core.rotations`.

For the per-message and per-pose paths (convert/, the pose buffer, synthetic scenes), where torch's
per-call overhead and import cost are unwanted; a test checks they match the torch versions.
"""
from __future__ import annotations

import numpy as np


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """[..., 4] unit wxyz -> [..., 3, 3]."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> [4] unit wxyz with w >= 0 (Shepperd: divide by the largest component)."""
    m = np.asarray(R, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    diag = np.array([1 + trace, 1 + m[0, 0] - m[1, 1] - m[2, 2], 1 - m[0, 0] + m[1, 1] - m[2, 2],
                     1 - m[0, 0] - m[1, 1] + m[2, 2]])
    rows = np.array([
        [1 + trace, m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]],
        [m[2, 1] - m[1, 2], diag[1], m[0, 1] + m[1, 0], m[0, 2] + m[2, 0]],
        [m[0, 2] - m[2, 0], m[0, 1] + m[1, 0], diag[2], m[1, 2] + m[2, 1]],
        [m[1, 0] - m[0, 1], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], diag[3]],
    ])
    q = rows[int(np.argmax(diag))]
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q
