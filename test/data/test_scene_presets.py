"""The scene families `train`/`eval` name: each is drawn as its name says."""
import numpy as np
import pytest
import torch

from dgslrm_ros.data.scenes import SCENE_PRESETS, sample_scene, scene_preset

SEEDS = range(12)


def _foreground_travel(name: str) -> tuple[list[float], int]:
    """Distance each foreground object's centre covers in 2 s, over a few seeds; and frozen scenes."""
    travel, frozen = [], 0
    for seed in SEEDS:
        scene = sample_scene(np.random.default_rng(seed), scene_preset(name))
        frozen += scene.is_static
        centres = scene.states(torch.linspace(0.0, 2.0, 21)).centres[scene.num_background:]  # [O_fg, 21, 3]
        travel += (centres[:, 1:] - centres[:, :-1]).norm(dim=-1).sum(dim=1).tolist()
    return travel, frozen


def test_static_family_never_moves_and_dynamic_families_always_do():
    travel, frozen = _foreground_travel("static")
    assert frozen == len(SEEDS) and max(travel) == 0.0
    for name in ("dynamic", "fast"):
        travel, frozen = _foreground_travel(name)
        assert frozen == 0 and min(travel) > 0.0, name  # every foreground object of every scene moves


def test_fast_family_moves_faster_than_dynamic():
    fast, _ = _foreground_travel("fast")
    dynamic, _ = _foreground_travel("dynamic")
    assert np.mean(fast) > 1.8 * np.mean(dynamic)


def test_unknown_family_is_named_in_the_error():
    with pytest.raises(KeyError, match="fast"):
        scene_preset("fastest")
    assert {"default", "static", "dynamic", "fast", "simple", "wide"} <= set(SCENE_PRESETS)


def _camera_travel(name: str, seeds=range(16)) -> list[float]:
    """Path length of the input camera over a 24-frame window at 10 fps, per seed."""
    from dgslrm_ros.data.sequence import make_setup

    lengths = []
    for seed in seeds:
        setup = make_setup(seed, num_frames=24, height=16, width=16, fps=10.0, num_views=1, config=scene_preset(name))
        positions = setup.rig.poses(torch.arange(24) / 10.0)[0, :, :3, 3]
        lengths.append(float((positions[1:] - positions[:-1]).norm(dim=-1).sum()))
    return lengths


def test_wide_family_is_dynamic_with_a_camera_that_travels_further():
    wide, dynamic = _camera_travel("wide"), _camera_travel("dynamic")
    assert max(dynamic) < 0.6 and np.median(wide) > 2.0 * np.median(dynamic)
    assert np.median(wide) > 0.5  # a walking robot's window, not a hand's sway
    travel, frozen = _foreground_travel("wide")
    assert frozen == 0 and min(travel) > 0.0
