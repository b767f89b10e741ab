"""Metric scale of a COLMAP model: median depth of the first frame's points, anchored world."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dgslrm_ros.posing.errors import PoseError
from dgslrm_ros.posing.scale import median_depth_scale, metric_poses


def _cam_from_world(rotvec, t):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


def test_median_depth_scale_puts_the_median_point_at_the_requested_depth():
    rng = np.random.default_rng(0)
    cam = _cam_from_world([0.1, -0.2, 0.05], [0.3, -0.1, 0.5])
    depths = rng.uniform(1.0, 9.0, 101)
    pixels = rng.uniform(-0.5, 0.5, (101, 2))
    in_cam = np.concatenate([pixels * depths[:, None], depths[:, None]], 1)  # z = depth
    world = (in_cam - cam[:3, 3]) @ cam[:3, :3]  # inverse of cam_from_world
    centre = -cam[:3, :3].T @ cam[:3, 3]
    behind = centre - np.outer([1.0, 2.0, 3.0, 4.0, 5.0], cam[2, :3])  # behind the camera: ignored
    scale = median_depth_scale(cam, np.concatenate([world, behind]), 2.0)
    assert scale == pytest.approx(2.0 / np.median(depths), rel=1e-9)
    with pytest.raises(PoseError, match="--scale"):
        median_depth_scale(cam, world[:2], 2.0)


def test_metric_poses_anchor_the_world_at_the_first_camera_and_scale_translations():
    first = _cam_from_world([0.0, 0.3, 0.0], [1.0, 2.0, 3.0])
    second = _cam_from_world([0.2, 0.3, -0.1], [1.5, 2.0, 2.0])
    points = np.array([[0.5, -1.0, 4.0], [2.0, 0.0, 1.0]])
    poses, world = metric_poses({3: first, 7: second}, points, 0.25, anchor=3)
    np.testing.assert_allclose(poses[3], np.eye(4), atol=1e-12)
    # relative motion is preserved: the second camera seen from the first, translation scaled
    relative = first @ np.linalg.inv(second)
    np.testing.assert_allclose(poses[7][:3, :3], relative[:3, :3], atol=1e-12)
    np.testing.assert_allclose(poses[7][:3, 3], 0.25 * relative[:3, 3], atol=1e-12)
    # points land where the first camera sees them, in metres
    np.testing.assert_allclose(world, 0.25 * (points @ first[:3, :3].T + first[:3, 3]), atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        metric_poses({3: first}, points, -1.0, anchor=3)
