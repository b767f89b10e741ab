"""The classical drawing: a keyframe drawn from its own camera keeps the detail of its image.

A splat FOOTPRINT pixels wide, plus the renderer's low-pass, mixes each pixel with its neighbours; at
the earlier 0.6 a keyframe came back blurred even where its depth was exact, and the pre-compensated
colours undo most of what the narrow splats still blur (geometry/classical.py).
"""
from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("setting, earlier, gain_db", [
    # Narrow splats against the earlier 0.6 px footprint. Measured: 24.9 / 25.5 dB against 19.0 / 19.6 dB.
    ("FOOTPRINT", 0.6, 3.0),
    # Colours chosen to undo the drawing's blur against the raw pixel colours: 24.9 / 25.5 against 23.8 / 24.4.
    ("PRECOMPENSATION_TERMS", 0, 0.5),
])
def test_the_drawing_keeps_the_detail_of_a_keyframe_at_its_own_camera(textured_plane_window, monkeypatch, setting,
                                                                        earlier, gain_db):
    # A plane the sweep gets right (median depth error 0.4 %), textured a few pixels per period: what is
    # lost drawing a keyframe at its own camera is the drawing's blur alone.
    window = textured_plane_window(size=SIZE, frames=8)
    now = _keyframes_drawn_at_their_own_cameras(window)
    monkeypatch.setattr(classical, setting, earlier)
    before = _keyframes_drawn_at_their_own_cameras(window)
    for sharp, blurred in zip(now, before):
        assert sharp > blurred + gain_db, (now, before)
