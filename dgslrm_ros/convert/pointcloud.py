"""sensor_msgs/PointCloud2 <-> numpy structured arrays, and our two layouts.

A generic reader/writer works on any PointCloud2 by its field names, offsets and datatypes (the
sensor_msgs_py approach). On top of it sit the contract's two clouds:

* `gaussians`: 15 float32 fields `x y z rgb opacity scale_x scale_y scale_z rot_w rot_x rot_y rot_z
  vx vy vz`; `rgb` is the PCL/RViz packed colour, uint32 0x00RRGGBB bit-cast to float32.
* `trajectories`: organised, height = tracks, width = samples (oldest first); `x y z t` float32
  (t in s relative to the header stamp, <= 0), `track_id` uint32, `visible` float32; NaN xyz where a
  sample is invalid.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from dgslrm_ros.convert.errors import PointCloudLayoutError
from dgslrm_ros.convert.fastcopy import (
    deinterleave,
    interleave,
    pack_gaussian_rows,
    pack_trajectory_rows,
    unpack_gaussian_rows,
    unpack_trajectory_rows,
)
from dgslrm_ros.convert.image import as_uint8_buffer

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_DATATYPE_TO_NUMPY: dict[int, np.dtype] = {
    INT8: np.dtype(np.int8), UINT8: np.dtype(np.uint8), INT16: np.dtype(np.int16),
    UINT16: np.dtype(np.uint16), INT32: np.dtype(np.int32), UINT32: np.dtype(np.uint32),
    FLOAT32: np.dtype(np.float32), FLOAT64: np.dtype(np.float64),
}
_NUMPY_TO_DATATYPE: dict[str, int] = {dt.str[1:]: code for code, dt in _DATATYPE_TO_NUMPY.items()}

GAUSSIAN_FIELDS: tuple[str, ...] = (
    "x", "y", "z", "rgb", "opacity", "scale_x", "scale_y", "scale_z",
    "rot_w", "rot_x", "rot_y", "rot_z", "vx", "vy", "vz",
)
GAUSSIAN_DTYPE = np.dtype([(name, "<f4") for name in GAUSSIAN_FIELDS])  # point_step 60
TRAJECTORY_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<f4"), ("track_id", "<u4"), ("visible", "<f4")]
)  # point_step 24


class PointFieldSpec(NamedTuple):
    """sensor_msgs/PointField as plain values."""

    name: str
    offset: int
    datatype: int
    count: int


class PointCloudFields(NamedTuple):
    """The fields of a sensor_msgs/PointCloud2 other than the header."""

    height: int
    width: int
    fields: list[PointFieldSpec]
    is_bigendian: bool
    point_step: int
    row_step: int
    data: np.ndarray  # [row_step * height] uint8
    is_dense: bool


def _field_tuple(field: Any) -> PointFieldSpec:
    if type(field) is PointFieldSpec:  # our own fields: as they are (this runs for every field of every cloud)
        return field
    if isinstance(field, tuple):
        return PointFieldSpec(*field)
    return PointFieldSpec(field.name, int(field.offset), int(field.datatype), int(field.count))


def pointcloud_dtype(fields: Sequence[Any], point_step: int, is_bigendian: bool = False) -> np.dtype:
    """Structured dtype (itemsize = point_step, padding kept) for PointField objects or tuples."""
    return _layout_dtype(tuple(map(_field_tuple, fields)), int(point_step), bool(is_bigendian))


@functools.lru_cache(maxsize=64)
def _layout_dtype(fields: tuple[PointFieldSpec, ...], point_step: int, is_bigendian: bool) -> np.dtype:
    """pointcloud_dtype, built once per layout: a subscriber sees the same few layouts over and over."""
    names, formats, offsets = [], [], []
    for field in fields:
        if field.datatype not in _DATATYPE_TO_NUMPY:
            raise PointCloudLayoutError(
                f"field {field.name!r} has unknown PointField datatype {field.datatype}; expected 1..8"
            )
        base = _DATATYPE_TO_NUMPY[field.datatype].newbyteorder(">" if is_bigendian else "<")
        count = max(int(field.count), 1)
        if field.offset < 0 or field.offset + base.itemsize * count > point_step:
            raise PointCloudLayoutError(
                f"field {field.name!r} at offset {field.offset} ({count} x {base}) does not fit in "
                f"point_step {point_step}"
            )
        if field.name in names:
            raise PointCloudLayoutError(f"field {field.name!r} appears twice in the PointCloud2 fields")
        names.append(field.name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(field.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": int(point_step)})


def pointcloud_fields_to_array(
    fields: Sequence[Any],
    point_step: int,
    data: Any,
    height: int,
    width: int,
    is_bigendian: bool = False,
    row_step: int | None = None,
) -> np.ndarray:
    """Any PointCloud2's fields -> structured array [height, width] (a zero-copy view when possible).

    Fields are read by their offsets and datatypes, so other producers' layouts (padding, extra
    fields, big-endian) work; `row_step` larger than width * point_step (padded rows) is honoured.
    """
    height, width, point_step = int(height), int(width), int(point_step)
    row_step = width * point_step if row_step is None else int(row_step)
    dtype = pointcloud_dtype(fields, point_step, bool(is_bigendian))
    if row_step < width * point_step:
        raise PointCloudLayoutError(f"row_step {row_step} is smaller than width * point_step = {width * point_step}")
    buffer = as_uint8_buffer(data)
    needed = row_step * (height - 1) + width * point_step if height and width else 0
    if buffer.size < needed:
        raise PointCloudLayoutError(
            f"PointCloud2 {height}x{width} with point_step {point_step} and row_step {row_step} needs "
            f"{needed} data bytes, got {buffer.size}; the message is truncated"
        )
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=dtype)
    if row_step == width * point_step:
        return buffer[: height * row_step].view(dtype).reshape(height, width)
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, width * point_step), strides=(row_step, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width)


def pointcloud_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/PointCloud2 (any object with its fields) -> structured array [height, width]."""
    return pointcloud_fields_to_array(
        msg.fields, msg.point_step, msg.data, msg.height, msg.width, bool(msg.is_bigendian), msg.row_step
    )


def array_to_pointcloud_fields(points: np.ndarray, is_dense: bool = True) -> PointCloudFields:
    """Structured array [N] (unorganised) or [H, W] (organised) -> PointCloud2 fields, little-endian."""
    points = np.asarray(points)
    if points.dtype.names is None:
        raise PointCloudLayoutError(f"expected a numpy structured array, got dtype {points.dtype}")
    if points.ndim == 1:
        points = points.reshape(1, -1)
    if points.ndim != 2:
        raise PointCloudLayoutError(f"expected points [N] or [H, W], got shape {points.shape}")
    specs, le_dtype = _point_fields(points.dtype)
    points = np.ascontiguousarray(points.astype(le_dtype, copy=False))
    height, width = points.shape
    point_step = points.dtype.itemsize
    return PointCloudFields(
        height=height, width=width, fields=list(specs), is_bigendian=False, point_step=point_step,
        row_step=point_step * width, data=points.reshape(-1).view(np.uint8), is_dense=is_dense,
    )


@functools.lru_cache(maxsize=64)
def _point_fields(dtype: np.dtype) -> tuple[list[PointFieldSpec], np.dtype]:
    """A structured dtype -> (PointField specs, its little-endian twin); cached: a node publishes the same
    two layouts every window, and building them costs more than packing a small cloud."""
    specs: list[PointFieldSpec] = []
    little = []
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        base, shape = (field_dtype.subdtype if field_dtype.subdtype else (field_dtype, ()))
        key = base.newbyteorder("<").str[1:]
        if key not in _NUMPY_TO_DATATYPE:
            raise PointCloudLayoutError(f"field {name!r} has dtype {base}, which PointField cannot express")
        count = int(np.prod(shape)) if shape else 1
        specs.append(PointFieldSpec(name, int(offset), _NUMPY_TO_DATATYPE[key], count))
        little.append(base.newbyteorder("<") if not shape else (base.newbyteorder("<"), shape))
    le_dtype = np.dtype({
        "names": list(dtype.names), "formats": little,
        "offsets": [s.offset for s in specs], "itemsize": dtype.itemsize,
    })
    return specs, le_dtype


# --- packed colour --------------------------------------------------------------------------------

def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """float32 [N] packed colours -> float32 [N, 3] in [0, 1]."""
    bits = np.ascontiguousarray(rgb, dtype=np.float32).view(np.uint32)
    channels = np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1)
    return channels.astype(np.float32) / 255.0


# --- gaussians ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GaussianCloud:
    """The `gaussians` cloud as arrays (one static set at the header's instant)."""

    means: np.ndarray  # [N, 3] float32, world frame
    colors: np.ndarray  # [N, 3] float32 in [0, 1] (8-bit quantised by the packing)
    opacities: np.ndarray  # [N] float32
    scales: np.ndarray  # [N, 3] float32 metric standard deviations
    quats: np.ndarray  # [N, 4] float32 wxyz
    velocities: np.ndarray  # [N, 3] float32 m/s


def _check_rows(name: str, array: np.ndarray, n: int, cols: int | None) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    expected = (n,) if cols is None else (n, cols)
    if array.shape != expected:
        hint = "[N]" if cols is None else f"[N, {cols}]"
        raise PointCloudLayoutError(f"{name}: expected shape {hint} = {expected}, got {array.shape}")
    return array


def gaussians_to_array(
    means: np.ndarray, colors: np.ndarray, opacities: np.ndarray, scales: np.ndarray,
    quats: np.ndarray, velocities: np.ndarray,
) -> np.ndarray:
    """Per-Gaussian arrays (means [N, 3], colors [N, 3], opacities [N], scales [N, 3], quats [N, 4]
    wxyz, velocities [N, 3]) -> structured [N] in GAUSSIAN_DTYPE."""
    n = np.asarray(means).shape[0] if np.ndim(means) == 2 else -1
    means = _check_rows("means", means, n, 3)
    colors = _check_rows("colors", colors, n, 3)
    columns = [  # (byte offset in the 60-byte row, values)
        (0, means),
        (16, _check_rows("opacities", opacities, n, None)),
        (20, _check_rows("scales", scales, n, 3)),
        (32, _check_rows("quats", quats, n, 4)),
        (48, _check_rows("velocities", velocities, n, 3)),
    ]
    table = np.empty((max(n, 0), GAUSSIAN_DTYPE.itemsize), dtype=np.uint8)
    contiguous = [np.ascontiguousarray(values) for _, values in columns]
    # C (convert/fastcopy.py) assembles each row whole; numpy moves one column at a time
    if not pack_gaussian_rows(contiguous[0], np.ascontiguousarray(colors), *contiguous[1:], table):
        interleave(table, columns, rgb=(12, colors))
    return table.view(GAUSSIAN_DTYPE).reshape(-1)


def pack_gaussians(
    means: np.ndarray, colors: np.ndarray, opacities: np.ndarray, scales: np.ndarray,
    quats: np.ndarray, velocities: np.ndarray,
) -> PointCloudFields:
    """Per-Gaussian arrays -> `gaussians` PointCloud2 fields (unorganised, height 1)."""
    return array_to_pointcloud_fields(gaussians_to_array(means, colors, opacities, scales, quats, velocities))


def _require(points: np.ndarray, names: Sequence[str], datatype: str, what: str) -> None:
    present = points.dtype.names or ()
    missing = [n for n in names if n not in present]
    if missing:
        raise PointCloudLayoutError(
            f"{what}: missing fields {missing}; expected {list(names)}, got {list(present)}"
        )
    wrong = {n: str(points.dtype.fields[n][0]) for n in names if points.dtype.fields[n][0].str[1:] != datatype}
    if wrong:
        raise PointCloudLayoutError(f"{what}: fields {wrong} should be {np.dtype(datatype)}")


def array_to_gaussians(points: np.ndarray) -> GaussianCloud:
    """A structured array with the `gaussians` fields (any order/padding) -> GaussianCloud."""
    points = np.asarray(points).reshape(-1)
    if points.dtype == GAUSSIAN_DTYPE:  # our own layout: one pass over the rows
        table = np.ascontiguousarray(points).view(np.uint8).reshape(-1, GAUSSIAN_DTYPE.itemsize)
        n = table.shape[0]
        means, opacities = np.empty((n, 3), np.float32), np.empty(n, np.float32)
        scales, quats, velocities = np.empty((n, 3), np.float32), np.empty((n, 4), np.float32), np.empty((n, 3), np.float32)
        colors = np.empty((n, 3), np.float32)
        if not unpack_gaussian_rows(table, means, colors, opacities, scales, quats, velocities):
            colors = deinterleave(table, [(0, means), (16, opacities), (20, scales), (32, quats), (48, velocities)],
                                  rgb_offset=12)
        return GaussianCloud(means=means, colors=colors, opacities=opacities, scales=scales, quats=quats,
                             velocities=velocities)
    _require(points, GAUSSIAN_FIELDS, "f4", "gaussians cloud")

    def cols(*names: str) -> np.ndarray:
        return np.stack([points[n].astype(np.float32) for n in names], axis=-1)

    return GaussianCloud(
        means=cols("x", "y", "z"),
        colors=unpack_rgb(points["rgb"]),
        opacities=points["opacity"].astype(np.float32),
        scales=cols("scale_x", "scale_y", "scale_z"),
        quats=cols("rot_w", "rot_x", "rot_y", "rot_z"),
        velocities=cols("vx", "vy", "vz"),
    )


def unpack_gaussians(msg: Any) -> GaussianCloud:
    """`gaussians` PointCloud2 (any object with its fields) -> GaussianCloud."""
    return array_to_gaussians(pointcloud_to_array(msg))


# --- trajectories ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrajectoryCloud:
    """The `trajectories` cloud as arrays."""

    tracks: np.ndarray  # [M, T, 3] float32, NaN where invalid
    t: np.ndarray  # [M, T] float32 seconds relative to the header stamp, <= 0
    track_ids: np.ndarray  # [M] uint32
    visible: np.ndarray  # [M, T] float32 in [0, 1]


def trajectories_to_array(
    tracks: np.ndarray, t: np.ndarray, track_ids: np.ndarray, visible: np.ndarray
) -> np.ndarray:
    """tracks [M, T, 3], t [T] or [M, T] (<= 0), track_ids [M], visible [M, T] -> structured [M, T]."""
    return _trajectory_rows(tracks, t, track_ids, visible)[0]


def _trajectory_rows(tracks: np.ndarray, t: np.ndarray, track_ids: np.ndarray,
                     visible: np.ndarray) -> tuple[np.ndarray, bool]:
    """trajectories_to_array's rows, and whether every x y z is finite (the cloud's is_dense), found in the
    same pass: the checks here are on the small inputs only, so a call costs little beyond the copy."""
    tracks = np.ascontiguousarray(tracks, dtype=np.float32)
    if tracks.ndim != 3 or tracks.shape[2] != 3:
        raise PointCloudLayoutError(f"tracks: expected shape [M, T, 3], got {tracks.shape}")
    m, n = tracks.shape[:2]
    times = np.ascontiguousarray(t, dtype=np.float32)  # [T] stays [T]: M times fewer values to check and read
    if times.shape not in ((n,), (m, n)):
        raise PointCloudLayoutError(f"t: expected shape [T] or [M, T] = {(m, n)}, got {times.shape}")
    ids = np.asarray(track_ids)
    if ids.shape != (m,) or (ids.dtype != np.uint32 and ids.size and (ids.min() < 0 or ids.max() > 0xFFFFFFFF)):
        raise PointCloudLayoutError(f"track_ids: expected [M] = ({m},) values in uint32 range, got {ids.shape}")
    ids = np.ascontiguousarray(ids, dtype=np.uint32)
    visible = np.ascontiguousarray(visible, dtype=np.float32)
    if visible.shape != (m, n):
        raise PointCloudLayoutError(f"visible: expected shape [M, T] = {(m, n)}, got {visible.shape}")
    out = np.empty((m, n), dtype=TRAJECTORY_DTYPE)
    counts = pack_trajectory_rows(tracks, times, ids, visible, out)  # C: the rows, and both counts in the same pass
    bad_times = counts[1] if counts is not None else not (np.isfinite(times).all() and (times <= 0).all())
    if bad_times:
        raise PointCloudLayoutError(
            f"t: times must be finite and <= 0 (seconds before the header stamp), got max {np.nanmax(times) if times.size else 0}; "
            "stamp the cloud with the newest sample's time"
        )
    if counts is not None:
        return out, counts[0] == 0
    interleave(out.view(np.uint8).reshape(m * n, TRAJECTORY_DTYPE.itemsize), [
        (0, tracks.reshape(m * n, 3)),
        (12, np.broadcast_to(times, (m, n)).reshape(m * n)),  # a shared t is materialised here (a sixth of the bytes)
        (16, np.repeat(ids, n)),
        (20, visible.reshape(m * n)),
    ])
    return out, bool(np.isfinite(tracks).all())


def pack_trajectories(
    tracks: np.ndarray, t: np.ndarray, track_ids: np.ndarray, visible: np.ndarray
) -> PointCloudFields:
    """Tracks -> organised `trajectories` PointCloud2 fields (height M, width T); not dense if NaNs."""
    points, dense = _trajectory_rows(tracks, t, track_ids, visible)
    return array_to_pointcloud_fields(points, is_dense=dense)


def array_to_trajectories(points: np.ndarray) -> TrajectoryCloud:
    """Structured [M, T] with the `trajectories` fields -> TrajectoryCloud."""
    points = np.asarray(points)
    if points.ndim != 2:
        raise PointCloudLayoutError(f"trajectories cloud must be organised [tracks, samples], got {points.shape}")
    if points.dtype == TRAJECTORY_DTYPE:  # our own layout: one pass over the rows
        m, n = points.shape
        points = np.ascontiguousarray(points)
        tracks, t = np.empty((m, n, 3), np.float32), np.empty((m, n), np.float32)
        visible, track_ids = np.empty((m, n), np.float32), np.zeros(m, np.uint32)
        mismatched = unpack_trajectory_rows(points, tracks, t, track_ids, visible)
        if mismatched is None:  # numpy fallback
            table = points.view(np.uint8).reshape(m * n, TRAJECTORY_DTYPE.itemsize)
            ids = np.empty((m, n), np.uint32)
            deinterleave(table, [(0, tracks.reshape(m * n, 3)), (12, t.reshape(m * n)), (16, ids.reshape(m * n)),
                                 (20, visible.reshape(m * n))])
            mismatched = int(np.count_nonzero(ids != ids[:, :1])) if n else 0
            track_ids = (ids[:, 0] if n else np.zeros(m)).astype(np.uint32)
        if mismatched:
            raise PointCloudLayoutError("trajectories cloud: track_id must be constant along each row (one track per row)")
        return TrajectoryCloud(tracks=tracks, t=t, track_ids=track_ids, visible=visible)
    _require(points, ("x", "y", "z", "t", "visible"), "f4", "trajectories cloud")
    _require(points, ("track_id",), "u4", "trajectories cloud")
    ids = points["track_id"]
    if ids.shape[1] and np.any(ids != ids[:, :1]):
        raise PointCloudLayoutError("trajectories cloud: track_id must be constant along each row (one track per row)")
    return TrajectoryCloud(
        tracks=np.stack([points["x"], points["y"], points["z"]], axis=-1).astype(np.float32),
        t=points["t"].astype(np.float32),
        track_ids=(ids[:, 0] if ids.shape[1] else np.zeros(ids.shape[0])).astype(np.uint32),
        visible=points["visible"].astype(np.float32),
    )


def unpack_trajectories(msg: Any) -> TrajectoryCloud:
    """`trajectories` PointCloud2 (any object with its fields) -> TrajectoryCloud."""
    return array_to_trajectories(pointcloud_to_array(msg))
