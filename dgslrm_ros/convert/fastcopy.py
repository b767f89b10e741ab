"""Interleave / de-interleave columns of fixed-size rows at memory speed, with a numpy fallback.

The PointCloud2 layouts store each point as one row of several columns (x y z | rgb | opacity | ...).
numpy moves a 12-byte column of a 60-byte row with one inner-loop call per row (10-50x a memcpy of
the same bytes); the small C extension `_fastcopy` (built with the package; no rclpy, no torch; it
takes the arrays as buffers and checks their sizes) writes each row front to back from its columns (`*_rows` below,
for the contract's two layouts) and shuffles image channels with SIMD where the CPU has it. Where it
was not built (no C compiler), the `*_rows` functions return False / None and the callers use the
numpy functions here (`interleave`, `deinterleave`, `pack_rgb_into`, `unpack_rgb_from`): the same
bytes, only slower. `ACCELERATED` says which; docs/benchmarks.md has the figures.
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Sequence

import numpy as np

Column = tuple[int, np.ndarray]  # (byte offset inside the row, values [rows, ...] whose rows are contiguous)


def _load() -> ModuleType | None:
    if os.environ.get("DGSLRM_NO_FASTCOPY"):  # forces the numpy path (tests compare the two)
        return None
    try:
        from dgslrm_ros.convert import _fastcopy
    except ImportError:  # built without a C compiler (setup.py marks the extension optional)
        return None
    return _fastcopy


_LIB = _load()
ACCELERATED = _LIB is not None


def _rows_view(values: np.ndarray, rows: int) -> tuple[np.ndarray, int]:
    """values [rows, ...] -> (C-contiguous values, bytes per row); a copy only when they are not contiguous."""
    values = np.asarray(values)
    if values.shape[:1] != (rows,):
        raise ValueError(f"expected {rows} rows, got shape {values.shape}")
    if not values.flags.c_contiguous:
        values = np.ascontiguousarray(values)
    return values, (values.nbytes // rows if rows else 0)


def interleave(table: np.ndarray, columns: Sequence[Column], rgb: tuple[int, np.ndarray] | None = None) -> None:
    """numpy: table uint8 [rows, row_bytes] (C-contiguous); write each column's rows at its byte offset, and
    with `rgb` = (offset, colors float [rows, 3] in [0, 1]) the packed colour (see pack_rgb_into)."""
    rows, row_bytes = table.shape
    if table.dtype != np.uint8 or (rows and table.strides[1] != 1):
        raise ValueError(f"table: expected uint8 [rows, row_bytes] with contiguous rows, got {table.dtype} {table.strides}")
    colors = None if rgb is None else _colors(rgb[1], rows)
    prepared = [(offset, *_rows_view(values, rows)) for offset, values in columns]
    for offset, _, width in prepared:
        if offset < 0 or offset + width > row_bytes:
            raise ValueError(f"column of {width} bytes at offset {offset} does not fit a {row_bytes}-byte row")
    for offset, values, width in prepared:  # numpy: one row-sized opaque (void) element per row and column
        if rows:
            _void(table[:, offset:offset + width], width)[...] = _void(_bytes(values, rows, width), width)
    if rgb is not None:
        pack_rgb_into(table, rgb[0], colors)


def deinterleave(table: np.ndarray, columns: Sequence[Column], rgb_offset: int | None = None) -> np.ndarray | None:
    """numpy, the inverse of interleave: fill each (offset, out [rows, ...] C-contiguous) from the table; with
    `rgb_offset` also return the colours float32 [rows, 3] unpacked from there (else None)."""
    rows, row_bytes = table.shape
    for offset, out in columns:
        if not out.flags.c_contiguous or out.shape[:1] != (rows,):
            raise ValueError(f"output must be C-contiguous with {rows} rows, got {out.shape}")
        if offset < 0 or offset + out.nbytes // max(rows, 1) > row_bytes:
            raise ValueError(f"column at offset {offset} does not fit a {row_bytes}-byte row")
    for offset, out in columns:
        width = out.nbytes // max(rows, 1)
        if rows:
            _void(_bytes(out, rows, width), width)[...] = _void(table[:, offset:offset + width], width)
    return None if rgb_offset is None else unpack_rgb_from(table, rgb_offset)


def _bytes(values: np.ndarray, rows: int, width: int) -> np.ndarray:
    """values with contiguous rows -> uint8 [rows, width] view of the same memory."""
    return np.ascontiguousarray(values).reshape(rows, -1).view(np.uint8).reshape(rows, width)


def _void(rows_of_bytes: np.ndarray, width: int) -> np.ndarray:
    """uint8 [rows, width] (last axis contiguous) -> [rows, 1] of opaque width-byte elements: numpy then
    moves each row with one memcpy instead of `width` single-byte steps."""
    return rows_of_bytes.view(np.dtype((np.void, width)))


def _colors(colors: np.ndarray, rows: int) -> np.ndarray:
    colors = np.ascontiguousarray(colors, dtype=np.float32)
    if colors.shape != (rows, 3):
        raise ValueError(f"colors: expected shape [{rows}, 3], got {colors.shape}")
    return colors


def pack_rgb_into(table: np.ndarray, offset: int, colors: np.ndarray) -> None:
    """colors float32 [rows, 3] in [0, 1] -> uint32 0x00RRGGBB at `offset` of every row of table uint8 [rows, B]."""
    rows = table.shape[0]
    colors = _colors(colors, rows)
    c = np.clip(np.nan_to_num(np.rint(colors * 255.0), nan=0.0), 0, 255).astype(np.uint32)  # NaN -> 0, as in C
    packed = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    table[:, offset:offset + 4] = packed.astype("<u4").view(np.uint8).reshape(rows, 4)


def unpack_rgb_from(table: np.ndarray, offset: int) -> np.ndarray:
    """uint32 0x00RRGGBB at `offset` of every row -> float32 [rows, 3] in [0, 1]."""
    rows = table.shape[0]
    out = np.empty((rows, 3), np.float32)
    bits = np.ascontiguousarray(table[:, offset:offset + 4]).view("<u4").reshape(rows)
    out[:, 0], out[:, 1], out[:, 2] = (bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF
    out /= 255.0
    return out


def pixels_to_rgb(buffer: np.ndarray, height: int, width: int, step: int, channels: int,
                  order: tuple[int, ...]) -> np.ndarray | None:
    """Image rows (uint8 buffer, `step` bytes per row, `channels` per pixel) -> new RGB uint8 [H, W, 3] with
    channel `order` (indices of R, G, B); None when the C library is absent (the caller uses numpy)."""
    if _LIB is None or not buffer.flags.c_contiguous:
        return None
    out = np.empty((height, width, 3), np.uint8)
    _LIB.pixels_to_rgb(buffer, step, height, width, channels, *order, out)
    return out


def pack_gaussian_rows(means: np.ndarray, colors: np.ndarray, opacities: np.ndarray, scales: np.ndarray,
                       quats: np.ndarray, velocities: np.ndarray, table: np.ndarray) -> bool:
    """The `gaussians` layout (60-byte rows) assembled row by row in C; False when the library is absent.
    Inputs: C-contiguous float32 [N, 3] [N, 3] [N] [N, 3] [N, 4] [N, 3]; table uint8 [N, 60]."""
    if _LIB is None:
        return False
    _LIB.pack_gaussians(means, colors, opacities, scales, quats, velocities, table.shape[0], table)
    return True


def unpack_gaussian_rows(table: np.ndarray, means: np.ndarray, colors: np.ndarray, opacities: np.ndarray,
                         scales: np.ndarray, quats: np.ndarray, velocities: np.ndarray) -> bool:
    """The inverse of pack_gaussian_rows into the given C-contiguous outputs; False without the library."""
    if _LIB is None:
        return False
    _LIB.unpack_gaussians(table, table.shape[0], means, colors, opacities, scales, quats, velocities)
    return True


def pack_trajectory_rows(tracks: np.ndarray, times: np.ndarray, ids: np.ndarray, visible: np.ndarray,
                         table: np.ndarray) -> tuple[int, int] | None:
    """The `trajectories` layout (24-byte rows): tracks float32 [M, T, 3], times float32 [T] or [M, T], ids
    uint32 [M], visible float32 [M, T], all C-contiguous; table [M, T] of 24-byte rows (any C-contiguous
    buffer). Returns (how many samples have a non-finite x, y or z: 0 is a dense cloud, how many times are
    not finite and <= 0), or None without the library."""
    if _LIB is None:
        return None
    m, t = visible.shape
    return _LIB.pack_trajectories(tracks, times, times.ndim == 2, ids, visible, m, t, table)


def unpack_trajectory_rows(table: np.ndarray, tracks: np.ndarray, times: np.ndarray, ids: np.ndarray,
                           visible: np.ndarray) -> int | None:
    """The inverse, from the rows (any C-contiguous buffer) into C-contiguous outputs (ids [M] from each
    row's first sample); returns how many samples carry another track_id than their row's first, or None
    without the library."""
    if _LIB is None:
        return None
    m, t = visible.shape
    return _LIB.unpack_trajectories(table, m, t, tracks, times, ids, visible)
