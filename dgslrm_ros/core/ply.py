"""The standard 3DGS PLY layout (what the INRIA code writes and splat viewers read).

binary_little_endian float32 vertices: `x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 opacity scale_0 scale_1
scale_2 rot_0 rot_1 rot_2 rot_3`, stored *before* activation: f_dc = (rgb - 0.5) / C0 (degree-0
spherical harmonic), opacity = logit, scale = log, rot = wxyz quaternion. Normals are zero.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.gaussians import Gaussians

SH_C0 = 0.28209479177387814  # Y_0^0, turns the DC coefficient into a colour offset
PROPERTIES = (
    "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)
# The logit/log of values at the edge of their range are infinite; viewers choke on inf, so clamp.
_OPACITY_EPS = 1e-6
_SCALE_MIN = 1e-12

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "<i2", "int16": "<i2",
    "ushort": "<u2", "uint16": "<u2", "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
    "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8",
}


class PlyFormatError(DgslrmError, ValueError):
    """A PLY file that is not a binary little-endian 3DGS vertex list."""


def write_ply(path: str | Path, gaussians: Gaussians) -> Path:
    """Write `gaussians` (static; take `DeformableGaussians.at(frame)` first) as a 3DGS PLY."""
    if not isinstance(gaussians, Gaussians):
        raise ValueError(
            f"write_ply: expected a Gaussians set, got {type(gaussians).__name__}; "
            "for a DeformableGaussians pass `.at(frame)`"
        )
    g = gaussians.detach().to("cpu", torch.float64)
    n = len(g)
    opacity = g.opacities.clamp(_OPACITY_EPS, 1.0 - _OPACITY_EPS)
    columns = [
        g.means,
        torch.zeros(n, 3, dtype=torch.float64),
        (g.colors - 0.5) / SH_C0,
        torch.logit(opacity)[:, None],
        torch.log(g.scales.clamp_min(_SCALE_MIN)),
        g.quats / g.quats.norm(dim=-1, keepdim=True).clamp_min(1e-12),
    ]
    data = torch.cat(columns, dim=1).numpy().astype("<f4")  # [N, 17]
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
        + [f"property float {name}" for name in PROPERTIES]
        + ["end_header"]
    ) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(header.encode("ascii"))
        stream.write(np.ascontiguousarray(data).tobytes())
    return path


def _parse_header(stream, path: Path) -> tuple[int, np.dtype]:
    """Read the header lines; return (vertex count, structured dtype of one vertex)."""
    if stream.readline().strip() != b"ply":
        raise PlyFormatError(f"{path}: not a PLY file (first line is not 'ply')")
    count, names, types, element, seen_format = None, [], [], None, False
    while True:
        line = stream.readline()
        if not line:
            raise PlyFormatError(f"{path}: header ended without 'end_header'; the file is truncated")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            if words[1:2] != ["binary_little_endian"]:
                raise PlyFormatError(f"{path}: expected format binary_little_endian, got {' '.join(words[1:])}")
            seen_format = True
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                count = int(words[2])
            elif count is not None:
                raise PlyFormatError(f"{path}: elements after 'vertex' are not supported (got {element})")
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list" or words[1] not in _PLY_TYPES:
                raise PlyFormatError(f"{path}: unsupported vertex property type '{' '.join(words[1:])}'")
            types.append(_PLY_TYPES[words[1]])
            names.append(words[2])
    if not seen_format or count is None:
        raise PlyFormatError(f"{path}: header lacks a binary_little_endian format line or a vertex element")
    return count, np.dtype(list(zip(names, types)))


def read_ply(path: str | Path) -> Gaussians:
    """Read a 3DGS PLY (ours or the INRIA layout, extra f_rest_* ignored) back into activated Gaussians."""
    path = Path(path)
    if not path.is_file():
        raise PlyFormatError(f"{path}: no such file; expected a 3DGS .ply")
    with open(path, "rb") as stream:
        count, dtype = _parse_header(stream, path)
        payload = stream.read()
    missing = [name for name in PROPERTIES if name not in (dtype.names or ()) and name[0] != "n"]
    if missing:
        raise PlyFormatError(f"{path}: missing 3DGS vertex properties {missing}")
    if len(payload) < count * dtype.itemsize:
        raise PlyFormatError(
            f"{path}: expected {count} vertices ({count * dtype.itemsize} bytes), got {len(payload)} bytes; truncated"
        )
    vertices = np.frombuffer(payload, dtype=dtype, count=count)

    def stack(*names: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([vertices[n].astype(np.float32) for n in names], axis=-1))

    quats = stack("rot_0", "rot_1", "rot_2", "rot_3")
    return Gaussians(
        means=stack("x", "y", "z"),
        quats=quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12),
        scales=torch.exp(stack("scale_0", "scale_1", "scale_2")),
        opacities=torch.sigmoid(stack("opacity")[:, 0]),
        colors=(stack("f_dc_0", "f_dc_1", "f_dc_2") * SH_C0 + 0.5).clamp(0.0, 1.0),
    )
