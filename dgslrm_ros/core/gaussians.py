"""3D Gaussians: one static set (`Gaussians`) and a window's deformable set (`DeformableGaussians`).

The deformable set is what the model predicts for one window: Gaussians born at keyframe pixels, each
carrying its own trajectory `offsets [N, T, 3]` over the window's T frames. Everything downstream
(renderer, tracks, PointCloud2, PLY) asks it for a static `Gaussians` at a frame via `at(frame)`.
Shapes follow docs/architecture.md: quats wxyz, scales are standard deviations, colours rgb in [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor

from dgslrm_ros.core.errors import DgslrmError
from dgslrm_ros.core.rotations import matrix_to_quat, quat_multiply, quat_normalize

FrameLike = int | float | Tensor

EPS2D = 0.3  # px^2 low-pass added to every projected splat covariance when drawn (gsplat's default)
# With the classical footprint (0.3 px) this low-pass is most of a splat's width, so it was probed as a
# sharpening knob (`classical`, 64 px, held-out frames of the two real clips, realshort / cockatoo):
# 0.3 (this) 30.95 / 27.15 dB; 0.25: 31.18 / -; 0.2: 31.20 / 26.77; 0.15: 30.88 / 26.19; 0.1: 30.09 / -;
# 0.2 with a back layer x3: 31.41 / -. The clips disagree (the slow static one likes it sharper, the
# hand-held one with the moving bird does not), so gsplat's default stays; the classical colours
# compensate for it instead (geometry/classical.py, precompensated_colors).


class GaussiansFileError(DgslrmError, ValueError):
    """A Gaussians safetensors file is missing, corrupt, or lacks a field."""


def _check_shape(name: str, tensor: Tensor, expected: tuple[int | None, ...], hint: str) -> None:
    """Raise a ValueError naming the field, the expected and the received shape."""
    if not isinstance(tensor, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {hint}, got {type(tensor).__name__}")
    ok = tensor.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, tensor.shape))
    if not ok:
        raise ValueError(f"{name}: expected shape {hint}, got {tuple(tensor.shape)}")


def _check_float_fields(owner: str, values: dict[str, Tensor]) -> None:
    """All float fields share one floating dtype and one device (mixing them fails later, obscurely)."""
    dtypes = {name: t.dtype for name, t in values.items()}
    devices = {name: t.device for name, t in values.items()}
    for name, dtype in dtypes.items():
        if not dtype.is_floating_point:
            raise ValueError(f"{owner}.{name}: expected a floating dtype, got {dtype}; convert with .float()")
    if len(set(dtypes.values())) > 1:
        raise ValueError(f"{owner}: fields must share one dtype, got {dtypes}; convert them with .to(dtype)")
    if len(set(devices.values())) > 1:
        raise ValueError(f"{owner}: fields must share one device, got {devices}; move them with .to(device)")


class _OnMeansDevice:
    """device / dtype of a Gaussian set: those of its means (every float field follows them)."""

    means: Tensor

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype


@dataclass(frozen=True, repr=False)
class Gaussians(_OnMeansDevice):
    """A static set of N 3D Gaussians (the renderer's input)."""

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] wxyz
    scales: Tensor  # [N, 3] standard deviations
    opacities: Tensor  # [N] in (0, 1)
    colors: Tensor  # [N, 3] rgb in [0, 1]

    def __post_init__(self) -> None:
        _check_shape("Gaussians.means", self.means, (None, 3), "[N, 3]")
        n = self.means.shape[0]
        _check_shape("Gaussians.quats", self.quats, (n, 4), f"[N={n}, 4]")
        _check_shape("Gaussians.scales", self.scales, (n, 3), f"[N={n}, 3]")
        _check_shape("Gaussians.opacities", self.opacities, (n,), f"[N={n}]")
        _check_shape("Gaussians.colors", self.colors, (n, 3), f"[N={n}, 3]")
        _check_float_fields("Gaussians", {f.name: getattr(self, f.name) for f in fields(self)})

    def __len__(self) -> int:
        return self.means.shape[0]

    def __repr__(self) -> str:  # shapes, not hundreds of thousands of numbers
        return f"Gaussians(N={len(self)}, dtype={self.dtype}, device={self.device})"

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        return Gaussians(**{f.name: getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)})

    def detach(self) -> Gaussians:
        return Gaussians(**{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def select(self, mask_or_index: Tensor) -> Gaussians:
        """Subset by a bool mask [N] or a long index [M]."""
        _check_selector(mask_or_index, len(self))
        return Gaussians(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    def transformed(self, scale: float | Tensor, rotation: Tensor, translation: Tensor) -> Gaussians:
        """Apply x -> scale * R x + t (a similarity); scales grow by `scale`, quats turn by R."""
        rotation, translation, scale_t = _similarity_args(scale, rotation, translation, self.means)
        return Gaussians(
            means=scale_t * self.means @ rotation.T + translation,
            quats=_rotate_quats(rotation, self.quats),
            scales=self.scales * scale_t,
            opacities=self.opacities,
            colors=self.colors,
        )

    @staticmethod
    def concat(parts: Sequence[Gaussians]) -> Gaussians:
        if not parts:
            raise ValueError("Gaussians.concat: expected at least one Gaussians set, got none")
        return Gaussians(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Gaussians)})


def _check_selector(mask_or_index: Tensor, n: int) -> None:
    if not isinstance(mask_or_index, Tensor):
        raise ValueError(f"select: expected a bool mask [N={n}] or a long index tensor, got {type(mask_or_index)}")
    if mask_or_index.dtype == torch.bool and tuple(mask_or_index.shape) != (n,):
        raise ValueError(f"select: bool mask must have shape [N={n}], got {tuple(mask_or_index.shape)}")
    if mask_or_index.dtype != torch.bool and mask_or_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"select: expected a bool mask or an integer index, got dtype {mask_or_index.dtype}")


def _similarity_args(
    scale: float | Tensor, rotation: Tensor, translation: Tensor, like: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    rotation = torch.as_tensor(rotation, dtype=like.dtype, device=like.device)
    translation = torch.as_tensor(translation, dtype=like.dtype, device=like.device)
    scale_t = torch.as_tensor(scale, dtype=like.dtype, device=like.device)
    _check_shape("rotation", rotation, (3, 3), "[3, 3]")
    _check_shape("translation", translation, (3,), "[3]")
    if scale_t.dim() != 0 or not bool(scale_t > 0):
        raise ValueError(f"scale: expected a positive scalar, got {scale}")
    return rotation, translation, scale_t


def _rotate_quats(rotation: Tensor, quats: Tensor) -> Tensor:
    """Left-multiply every orientation [N, 4] by the rotation matrix [3, 3]."""
    q_rot = matrix_to_quat(rotation)  # [4]
    return quat_normalize(quat_multiply(q_rot.expand_as(quats), quats))


@dataclass(frozen=True, repr=False)
class DeformableGaussians(_OnMeansDevice):
    """Keyframe Gaussians of one window plus their per-frame offsets.

    Gaussian i sits at `means[i] + offsets[i, n]` at window frame n (time `timestamps[n]`); the other
    attributes stay fixed over the window. `keyframe_index[i]` is the frame whose pixel it came from.
    """

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] wxyz
    scales: Tensor  # [N, 3]
    opacities: Tensor  # [N]
    colors: Tensor  # [N, 3]
    offsets: Tensor  # [N, T, 3]
    timestamps: Tensor  # [T] seconds, strictly increasing (float64 if absolute ROS times)
    keyframe_index: Tensor  # [N] long
    # How far in time a keyframe's Gaussians are drawn in full, in keyframe spacings: 0 = every keyframe at
    # every instant (DGS-LRM); s > 0 = opacity x max(floor, 1 - |instant - own keyframe| / (s x spacing)).
    keyframe_support: float = 0.0
    keyframe_floor: float = 0.0  # the share of its opacity a keyframe keeps at any instant (with a support)
    # Scales of the back layer (layers_at) times this: the keyframes that only fill what the near ones leave
    # uncovered (tears off the camera path, the window's ends) are drawn wider, so the front can stay sharp.
    back_scale: float = 1.0

    def __post_init__(self) -> None:
        owner = "DeformableGaussians"
        if not (math.isfinite(self.keyframe_support) and self.keyframe_support >= 0):
            raise ValueError(f"{owner}.keyframe_support: expected a finite number >= 0, got {self.keyframe_support}")
        if not 0 <= self.keyframe_floor <= 1:
            raise ValueError(f"{owner}.keyframe_floor: expected a number in [0, 1], got {self.keyframe_floor}")
        if not (math.isfinite(self.back_scale) and self.back_scale > 0):
            raise ValueError(f"{owner}.back_scale: expected a finite number > 0, got {self.back_scale}")
        _check_shape(f"{owner}.means", self.means, (None, 3), "[N, 3]")
        n = self.means.shape[0]
        _check_shape(f"{owner}.quats", self.quats, (n, 4), f"[N={n}, 4]")
        _check_shape(f"{owner}.scales", self.scales, (n, 3), f"[N={n}, 3]")
        _check_shape(f"{owner}.opacities", self.opacities, (n,), f"[N={n}]")
        _check_shape(f"{owner}.colors", self.colors, (n, 3), f"[N={n}, 3]")
        _check_shape(f"{owner}.timestamps", self.timestamps, (None,), "[T]")
        t = self.timestamps.shape[0]
        if t < 1:
            raise ValueError(f"{owner}.timestamps: expected at least one frame, got T=0")
        _check_shape(f"{owner}.offsets", self.offsets, (n, t, 3), f"[N={n}, T={t}, 3]")
        _check_shape(f"{owner}.keyframe_index", self.keyframe_index, (n,), f"[N={n}]")
        if self.keyframe_index.dtype != torch.int64:
            raise ValueError(f"{owner}.keyframe_index: expected dtype torch.int64, got {self.keyframe_index.dtype}")
        float_names = ("means", "quats", "scales", "opacities", "colors", "offsets")
        _check_float_fields(owner, {name: getattr(self, name) for name in float_names})
        for name in ("timestamps", "keyframe_index"):
            # Small metadata follows the Gaussians' device (a CPU stamp vector next to CUDA Gaussians
            # is common and harmless to move; failing later inside select() would not be).
            if getattr(self, name).device != self.means.device:
                object.__setattr__(self, name, getattr(self, name).to(self.means.device))
        if not self.timestamps.dtype.is_floating_point:
            raise ValueError(f"{owner}.timestamps: expected a floating dtype (seconds), got {self.timestamps.dtype}")
        if t > 1 and not bool((self.timestamps[1:] > self.timestamps[:-1]).all()):
            raise ValueError(f"{owner}.timestamps: expected strictly increasing seconds, got {self.timestamps.tolist()}")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.means.shape[0]

    def __repr__(self) -> str:
        span = float(self.timestamps[-1] - self.timestamps[0])
        return (f"DeformableGaussians(N={len(self)}, T={self.num_frames}, span={span:.3f} s, "
                f"dtype={self.dtype}, device={self.device})")

    @property
    def num_frames(self) -> int:
        return self.timestamps.shape[0]

    @staticmethod
    def static(gaussians: Gaussians, timestamps: Tensor, keyframe_index: Tensor | None = None) -> DeformableGaussians:
        """A set that does not move over the window (zero offsets), e.g. for static baselines."""
        if not isinstance(timestamps, Tensor) or timestamps.dim() != 1:
            raise ValueError(f"DeformableGaussians.static: expected timestamps [T], got {getattr(timestamps, 'shape', timestamps)}")
        n, t = len(gaussians), timestamps.shape[0]
        return DeformableGaussians(
            means=gaussians.means, quats=gaussians.quats, scales=gaussians.scales,
            opacities=gaussians.opacities, colors=gaussians.colors,
            offsets=gaussians.means.new_zeros(n, t, 3),
            timestamps=timestamps,
            keyframe_index=(torch.zeros(n, dtype=torch.long, device=gaussians.device)
                            if keyframe_index is None else keyframe_index),
        )

    def drawing(self) -> dict[str, float]:
        """The fields that say how the window is drawn (DRAWING_FIELDS), by name."""
        return {name: getattr(self, name) for name in DRAWING_FIELDS}

    def _map(self, fn: Callable[[str, Tensor], Tensor]) -> DeformableGaussians:
        """Rebuild with fn(field name, tensor) applied to every tensor field (the drawing fields are kept)."""
        return replace(self, **{name: fn(name, getattr(self, name)) for name in _DEFORMABLE_TENSORS})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> DeformableGaussians:
        """Move to a device; `dtype` converts the Gaussian attributes but never `keyframe_index` or
        `timestamps` (float32 cannot hold absolute ROS seconds to the millisecond)."""
        def move(name: str, t: Tensor) -> Tensor:
            keep_dtype = name in ("keyframe_index", "timestamps")
            return t.to(device=device) if keep_dtype else t.to(device=device, dtype=dtype)
        return self._map(move)

    def detach(self) -> DeformableGaussians:
        return self._map(lambda _, t: t.detach())

    # ------------------------------------------------------------------ time
    def _frame_weights(self, frame: FrameLike) -> tuple[int, int, float]:
        """Split a (possibly fractional) frame index into (lower, upper, weight of upper)."""
        value = float(frame.item() if isinstance(frame, Tensor) else frame)
        last = self.num_frames - 1
        if not (0.0 <= value <= last):
            raise ValueError(f"frame: expected an index in [0, {last}] for a window of T={last + 1}, got {value}")
        lower = min(int(value), last)
        upper = min(lower + 1, last)
        return lower, upper, value - lower

    def positions(self, frame: FrameLike) -> Tensor:
        """[N, 3] centres at window frame `frame`; fractional frames interpolate offsets linearly."""
        lower, upper, w = self._frame_weights(frame)
        offset = self.offsets[:, lower] * (1.0 - w) + self.offsets[:, upper] * w
        return self.means + offset

    def frame_velocities(self) -> Tensor:
        """[N, T, 3] velocity in units/s at every frame: central differences, one-sided at the ends."""
        return self._velocities_at(torch.arange(self.num_frames, device=self.device))

    def _velocities_at(self, frames: Tensor) -> Tensor:
        """[N, F, 3] velocities at integer window frames [F]."""
        t = self.num_frames
        if t == 1:
            return self.offsets.new_zeros(len(self), frames.shape[0], 3)
        prev_idx = (frames - 1).clamp(min=0)
        next_idx = (frames + 1).clamp(max=t - 1)
        # Differences in the stamps' own dtype first: absolute float64 seconds lose nothing.
        dt = (self.timestamps[next_idx] - self.timestamps[prev_idx]).to(self.offsets.dtype)  # [F]
        return (self.offsets[:, next_idx] - self.offsets[:, prev_idx]) / dt[None, :, None]

    def velocities(self, frame: FrameLike) -> Tensor:
        """[N, 3] velocity (units of means per second, m/s in the world frame) at window frame `frame`;
        fractional frames interpolate the velocities of the two neighbouring frames linearly."""
        lower, upper, w = self._frame_weights(frame)
        both = self._velocities_at(torch.tensor([lower, upper], device=self.device))  # [N, 2, 3]
        return both[:, 0] * (1.0 - w) + both[:, 1] * w

    def instant_weights(self, frame: FrameLike) -> Tensor:
        """[N] the share of each Gaussian's opacity drawn at window frame `frame`: all ones without a
        keyframe_support; else a hat over time, 1 at the Gaussian's own keyframe and keyframe_floor from
        keyframe_support keyframe spacings on, so an instant is drawn mostly from the keyframes around it,
        not from every keyframe's imperfect depth and motion at once, while the others still fill what those
        do not see (instants outside the keyframes count as the nearest keyframe's)."""
        return self._fade(frame, self.keyframe_floor)

    def _fade(self, frame: FrameLike, floor: float) -> Tensor:
        """instant_weights with the given floor."""
        value = float(frame.item() if isinstance(frame, Tensor) else frame)
        if self.keyframe_support == 0 or len(self) == 0:
            return torch.ones_like(self.opacities)
        keyframes = torch.unique(self.keyframe_index)  # sorted
        spacing = float(keyframes[-1] - keyframes[0]) / (len(keyframes) - 1) if len(keyframes) > 1 else 1.0
        instant = min(max(value, float(keyframes[0])), float(keyframes[-1]))
        distance = (self.keyframe_index.to(self.opacities.dtype) - instant).abs()
        return (1.0 - distance / (self.keyframe_support * spacing)).clamp(min=floor)

    def at(self, frame: FrameLike) -> Gaussians:
        """The static Gaussians drawn at window frame `frame` (what the renderer draws): centres deformed to
        it, opacities times instant_weights, those with no weight left out."""
        return self.drawn_at(frame)[0]

    def drawn_at(self, frame: FrameLike) -> tuple[Gaussians, Tensor | None]:
        """(at(frame), which of these Gaussians it holds: a bool mask [N], None for all of them), so that a
        per-Gaussian value (e.g. velocities) can be taken for the same set.

        One set for single-pass renderers (the `gaussians` cloud, PLY): the keyframes that only their floor
        keeps are drawn back_scale wider, as in the back layer of `layers_at`, to fill what the others leave."""
        drawn, shown = self._drawn(self.positions(frame), self.instant_weights(frame))
        if not self.widens_faded_keyframes:
            return drawn, shown
        factors = self.instant_scale_factors(frame)
        factors = factors if shown is None else factors[shown]
        return replace(drawn, scales=drawn.scales * factors[:, None]), shown

    @property
    def widens_faded_keyframes(self) -> bool:
        """Whether a one-set drawing widens some keyframes (a fade and a back_scale other than 1)."""
        return self.keyframe_support > 0 and self.back_scale != 1.0

    def instant_scale_factors(self, frame: FrameLike) -> Tensor:
        """[N] what each Gaussian's scale is multiplied by in the one-set drawing at `frame`: back_scale for the
        keyframes that only the floor keeps (outside the hat), 1 for the others."""
        behind = self._fade(frame, 0.0) == 0
        return torch.where(behind, torch.full_like(self.opacities, self.back_scale), torch.ones_like(self.opacities))

    def layers_at(self, frame: FrameLike) -> tuple[Gaussians, Gaussians]:
        """(front, back) for a renderer that composites an instant in two layers (render.render_instant):
        front = the keyframes around the instant, opacities times the hat without its floor; back = every
        keyframe at its own opacity and back_scale times its scale, seen only where the front leaves the view
        uncovered."""
        positions = self.positions(frame)
        front, _ = self._drawn(positions, self._fade(frame, 0.0))
        back = self._drawn(positions, torch.ones_like(self.opacities))[0]
        return front, back if self.back_scale == 1.0 else replace(back, scales=back.scales * self.back_scale)

    def _drawn(self, positions: Tensor, weights: Tensor) -> tuple[Gaussians, Tensor | None]:
        """The static set at `positions` [N, 3] with opacities times `weights` [N], without the weightless."""
        static = Gaussians(means=positions, quats=self.quats, scales=self.scales,
                           opacities=self.opacities * weights, colors=self.colors)
        if bool((weights > 0).all()):
            return static, None
        shown = weights > 0
        return static.select(shown), shown

    # ------------------------------------------------------------------ subsets
    def select(self, mask_or_index: Tensor) -> DeformableGaussians:
        """Subset by a bool mask [N] or a long index [M]; timestamps are kept."""
        _check_selector(mask_or_index, len(self))
        mask_or_index = mask_or_index.to(self.device)
        return self._map(lambda name, t: t if name == "timestamps" else t[mask_or_index])

    def prune(self, min_opacity: float) -> DeformableGaussians:
        """Keep Gaussians whose opacity is at least `min_opacity`."""
        return self.select(self.opacities >= min_opacity)

    @staticmethod
    def concat(parts: Sequence[DeformableGaussians]) -> DeformableGaussians:
        """Join sets predicted for the same window (e.g. one per keyframe); timestamps must agree."""
        if not parts:
            raise ValueError("DeformableGaussians.concat: expected at least one set, got none")
        stamps = parts[0].timestamps
        for i, part in enumerate(parts[1:], start=1):
            same = part.timestamps.shape == stamps.shape and torch.allclose(
                part.timestamps.to(stamps), stamps, rtol=0.0, atol=1e-6
            )
            if not same:
                raise ValueError(
                    f"DeformableGaussians.concat: part {i} has timestamps {part.timestamps.tolist()}, "
                    f"expected the window's {stamps.tolist()}; only sets of the same window can be joined"
                )
        drawings = {tuple(part.drawing().items()) for part in parts}
        if len(drawings) > 1:
            raise ValueError(f"DeformableGaussians.concat: parts drawn differently: {sorted(drawings)}")
        return DeformableGaussians(
            **{name: stamps if name == "timestamps" else torch.cat([getattr(p, name) for p in parts])
               for name in _DEFORMABLE_TENSORS},
            **parts[0].drawing(),
        )

    # ------------------------------------------------------------------ frames
    def transformed(self, scale: float | Tensor, rotation: Tensor, translation: Tensor) -> DeformableGaussians:
        """Apply the similarity x -> scale * R x + t: means, offsets (and so velocities), scales, quats."""
        rotation, translation, scale_t = _similarity_args(scale, rotation, translation, self.means)
        return replace(
            self,
            means=scale_t * self.means @ rotation.T + translation,
            offsets=scale_t * self.offsets @ rotation.T,
            quats=_rotate_quats(rotation, self.quats),
            scales=self.scales * scale_t,
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write a safetensors file (the format `dgslrm export` and the node's outputs use)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: getattr(self, name).detach().cpu().contiguous() for name in _DEFORMABLE_TENSORS}
        save_file(tensors, str(path), metadata={"format": "dgslrm_ros.DeformableGaussians", "version": "1",
                                                **{name: repr(value) for name, value in self.drawing().items()}})
        return path

    @staticmethod
    def load(path: str | Path, device: torch.device | str = "cpu") -> DeformableGaussians:
        """Read what `save` wrote; raises GaussiansFileError on a missing/corrupt file or missing keys."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise GaussiansFileError(f"{path}: no such file; expected a DeformableGaussians .safetensors file")
        try:
            tensors = load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise GaussiansFileError(
                f"{path}: not a readable safetensors file ({error}); expected what DeformableGaussians.save writes"
            ) from error
        expected = list(_DEFORMABLE_TENSORS)
        missing = [name for name in expected if name not in tensors]
        if missing:
            raise GaussiansFileError(
                f"{path}: missing tensors {missing}; expected {expected} as written by DeformableGaussians.save"
            )
        try:
            metadata = _file_metadata(path)  # a file from before a drawing field gets its default (before the
            # fade: every keyframe at every instant; before back_scale: the back layer at its own scales)
            return DeformableGaussians(**{name: tensors[name] for name in expected},
                                       **{name: float(metadata.get(name, repr(default)))
                                          for name, default in _DRAWING_DEFAULTS.items()})
        except ValueError as error:
            raise GaussiansFileError(f"{path}: inconsistent tensors: {error}") from error


# How a window is drawn (the keyframe fade and the back layer's width): plain numbers, not per-Gaussian tensors.
DRAWING_FIELDS = ("keyframe_support", "keyframe_floor", "back_scale")
_DRAWING_DEFAULTS = {f.name: f.default for f in fields(DeformableGaussians) if f.name in DRAWING_FIELDS}
_DEFORMABLE_TENSORS = tuple(f.name for f in fields(DeformableGaussians) if f.name not in DRAWING_FIELDS)


def _file_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (its header), without reading the tensors again."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}
