"""Camera rigs: REP 103 optical frames, travel cap, realistic intrinsics, smooth hand-held motion."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dgslrm_ros.data.camera_paths import FORWARD_CLEARANCE, CameraPathConfig, PATH_NAMES, sample_rig
from dgslrm_ros.data.geometry import look_at
from dgslrm_ros.data.scenes import SceneConfig
from dgslrm_ros.data.sequence import make_setup


def test_look_at_is_rep103_optical():
    pose = look_at(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([5.0, 0.0, 1.0]))
    assert torch.allclose(pose[:3, 2], torch.tensor([1.0, 0.0, 0.0]))  # z forward
    assert torch.allclose(pose[:3, 0], torch.tensor([0.0, -1.0, 0.0]))  # x right (world y is left)
    assert torch.allclose(pose[:3, 1], torch.tensor([0.0, 0.0, -1.0]))  # y down


@pytest.mark.parametrize("seed", range(12))
def test_rigs_respect_travel_fov_and_stay_upright(seed):
    config = SceneConfig()
    setup = make_setup(seed, num_frames=24, height=48, width=64, fps=10.0, num_views=4, config=config)
    rig = setup.rig
    times = torch.arange(24) / 10.0
    poses = rig.poses(times)  # [V, T, 4, 4]
    rotation = poses[..., :3, :3]
    eye = torch.eye(3).expand_as(rotation)
    assert torch.allclose(rotation.transpose(-1, -2) @ rotation, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(4, 24), atol=1e-5)
    assert (rotation[..., 2, 1] < 0.2).all(), "camera y (down) should not point up"
    positions = poses[..., :3, 3]
    steps = (positions[:, 1:] - positions[:, :-1]).norm(dim=-1).sum(dim=1)  # path length per camera
    jitter = 2 * 3 * config.camera.jitter_position[1]
    assert (steps <= config.camera.travel[1] * 1.05 + jitter * 24).all()
    # Scene centre in front of every camera at the start, and every camera inside the free space.
    to_centre = setup.scene.centre - positions[:, 0]
    assert ((to_centre * poses[:, 0, :3, 2]).sum(-1) > 0).all()
    assert (positions[..., :2].abs() < setup.scene.extent[:2]).all()
    fov = 2 * torch.atan(0.5 * 64 / rig.K[:, 0, 0]) * 180 / math.pi
    assert ((fov > 44.9) & (fov < 75.1)).all()
    assert torch.allclose(rig.K[:, 0, 2], torch.full((4,), 32.0))
    assert torch.allclose(rig.K[:, 1, 2], torch.full((4,), 24.0))


def test_paths_are_smooth_and_kinds_vary():
    kinds, max_jump = set(), 0.0
    for seed in range(20):
        setup = make_setup(seed, num_frames=24, height=16, width=16, fps=10.0, num_views=2, config=SceneConfig())
        kinds.update(setup.rig.kinds.tolist())
        fine = setup.rig.poses(torch.linspace(0, 2.4, 241))[..., :3, 3]
        max_jump = max(max_jump, float((fine[:, 1:] - fine[:, :-1]).norm(dim=-1).max()))
    assert len(kinds) >= 4, f"only path kinds {[PATH_NAMES[k] for k in kinds]} drawn"
    assert max_jump < 0.02, "positions 10 ms apart should be close (no teleporting)"


def test_travel_config_is_respected_and_validated():
    rng = np.random.default_rng(0)
    config = CameraPathConfig(travel=(0.3, 0.3), path_weights=(1, 0, 0, 0, 0), jitter_position=(0.0, 0.0))
    rig = sample_rig(rng, config, num_views=3, height=16, width=16, duration=2.0,
                     scene_centre=torch.tensor([0.0, 0.0, 0.5]), scene_extent=torch.tensor([5.0, 5.0, 1.5]))
    positions = rig.poses(torch.tensor([0.0, 2.0]))[..., :3, 3]
    assert torch.allclose((positions[:, 1] - positions[:, 0]).norm(dim=-1), torch.full((3,), 0.3), atol=1e-4)
    with pytest.raises(ValueError, match="travel"):
        CameraPathConfig(travel=(0.5, 0.1))


def test_a_long_forward_walk_stops_short_of_the_scene_centre():
    """A forward path longer than the way to the scene centre ends FORWARD_CLEARANCE before it (not inside the
    objects); sideways paths of the same length are not shortened."""
    centre = torch.tensor([0.0, 0.0, 0.5])
    for kind, weights in (("forward", (1, 0, 0, 0, 0)), ("lateral", (0, 1, 0, 0, 0))):
        config = CameraPathConfig(travel=(4.0, 4.0), distance=(2.5, 2.5), path_weights=weights,
                                  jitter_position=(0.0, 0.0))
        rig = sample_rig(np.random.default_rng(1), config, num_views=3, height=16, width=16, duration=2.0,
                         scene_centre=centre, scene_extent=torch.tensor([8.0, 8.0, 1.5]))
        positions = rig.poses(torch.tensor([0.0, 2.0]))[..., :3, 3]
        walked = (positions[:, 1] - positions[:, 0]).norm(dim=-1)
        if kind == "forward":
            assert torch.allclose(walked, torch.full((3,), 2.5 - FORWARD_CLEARANCE), atol=1e-4)
            start_xy = (positions[:, 0, :2] - centre[:2]).norm(dim=-1)
            end_xy = (positions[:, 1, :2] - centre[:2]).norm(dim=-1)
            assert (end_xy < start_xy - 0.5).all() and (end_xy > 0.3).all()
        else:
            assert torch.allclose(walked, torch.full((3,), 4.0), atol=1e-4)
    with pytest.raises(ValueError, match="blur_subframes"):
        CameraPathConfig(blur_subframes=2)
