"""The classical footprint: a keyframe drawn from its own camera keeps the detail of its image.

A splat FOOTPRINT pixels wide, plus the renderer's low-pass, mixes each pixel with its neighbours; at
the earlier 0.6 a keyframe came back blurred even where its depth was exact (geometry/classical.py).
"""
from __future__ import annotations

import torch

import dgslrm_ros.geometry.classical as classical
from dgslrm_ros.metrics import psnr
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.render import render_instant

SIZE = 32


def _keyframes_drawn_at_their_own_cameras(window: dict) -> list[float]:
    """PSNR of each keyframe rendered at its own instant from its own camera against its input frame."""
    config = ModelConfig.preset("tiny", image_size=SIZE, window_frames=window["frames"].shape[0])
    with torch.no_grad():
        prediction = ClassicalReconstructor(config)(**{name: value[None] for name, value in window.items()})
    gaussians = prediction.gaussians(0)
    scores = []
    for k in prediction.keyframe_index.tolist():
        out = render_instant(gaussians, k, window["world_T_cam"][k][None], window["K"][k][None], SIZE, SIZE)
        scores.append(float(psnr(out.rgb[0].clamp(0, 1), window["frames"][k])))
    return scores


def test_narrow_splats_draw_a_keyframe_sharper_than_the_earlier_footprint(textured_plane_window, monkeypatch):
    # A plane the sweep gets right (median depth error 0.4 %), textured a few pixels per period: what is
    # lost drawing a keyframe at its own camera is the drawing's blur alone.
    window = textured_plane_window(size=SIZE, frames=8)
    narrow = _keyframes_drawn_at_their_own_cameras(window)
    monkeypatch.setattr(classical, "FOOTPRINT", 0.6)
    wide = _keyframes_drawn_at_their_own_cameras(window)
    for sharp, blurred in zip(narrow, wide):
        assert sharp > blurred + 3.0, (narrow, wide)  # measured: 24.9 / 25.5 dB against 19.0 / 19.6 dB


def test_precompensated_colours_draw_a_keyframe_closer_to_its_image(textured_plane_window, monkeypatch):
    # The same exact plane: the drawing's blur is the only loss at the keyframes' own cameras, and colours
    # chosen to undo it must give more of the image back than the raw pixel colours.
    window = textured_plane_window(size=SIZE, frames=8)
    compensated = _keyframes_drawn_at_their_own_cameras(window)
    monkeypatch.setattr(classical, "PRECOMPENSATION_TERMS", 0)
    raw = _keyframes_drawn_at_their_own_cameras(window)
    for sharp, blurred in zip(compensated, raw):
        assert sharp > blurred + 0.5, (compensated, raw)  # measured: 24.9 / 25.5 dB against 23.8 / 24.4 dB
