"""Pose buffer (interpolation, tolerance, waiting), frame preparation (undistortion, crop/resize with
consistent intrinsics) and config validation."""
import math

import numpy as np
import pytest
import torch

from dgslrm_ros.core.cameras import project_points
from dgslrm_ros.core.distortion import distort_points, undistort_points
from dgslrm_ros.core.poses import interpolate_poses
from dgslrm_ros.stream.config import ConfigError, PipelineConfig
from dgslrm_ros.stream.frames import CameraModel, Frame, FrameError
from dgslrm_ros.stream.pose_buffer import PoseBuffer, PoseLookup, check_pose


def _pose(yaw: float, x: float) -> np.ndarray:
    pose = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    pose[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    pose[0, 3] = x
    return pose


def test_interpolation_matches_core_twin_and_tolerance_rules():
    buffer = PoseBuffer()
    stamps = [1.0, 1.04, 1.08]
    poses = [_pose(0.0, 0.0), _pose(0.8, 0.4), _pose(1.2, 0.5)]
    for t, p in zip(reversed(stamps), reversed(poses)):  # out of order arrival is sorted
        buffer.add(t, p)
    result = buffer.lookup(1.01, tolerance=0.05)
    assert result.status is PoseLookup.OK and result.how == "interpolated"
    reference = interpolate_poses(torch.tensor(stamps, dtype=torch.float64),
                                  torch.tensor(np.stack(poses)), torch.tensor([1.01], dtype=torch.float64))[0]
    np.testing.assert_allclose(result.world_T_cam, reference.numpy(), atol=1e-9)
    np.testing.assert_allclose(result.world_T_cam[0, 3], 0.1)  # linear position
    assert buffer.lookup(1.04, 0.0).how == "exact"
    # a gap wider than 2 x tolerance: nearest pose if within tolerance, else never
    sparse = PoseBuffer()
    sparse.add(0.0, _pose(0, 0))
    sparse.add(1.0, _pose(0, 1))
    assert sparse.lookup(0.03, 0.05).how == "nearest"
    assert sparse.lookup(0.5, 0.05).status is PoseLookup.MISSING
    assert sparse.lookup(-0.2, 0.05).status is PoseLookup.MISSING
    # newer than every pose: wait for a late one; at expiry, nearest within tolerance or missing
    assert sparse.lookup(1.02, 0.05).status is PoseLookup.WAIT
    assert sparse.lookup(1.02, 0.05, final=True).how == "nearest"
    assert sparse.lookup(1.2, 0.05, final=True).status is PoseLookup.MISSING


def test_pose_buffer_is_bounded_and_checks_poses():
    buffer = PoseBuffer(capacity=10)
    for i in range(100):
        buffer.add(float(i), _pose(0, i))
    assert len(buffer) == 10 and buffer.newest_stamp == 99.0
    assert buffer.drop_newer_than(95.0) == 4 and buffer.newest_stamp == 95.0
    bad = _pose(0, 0)
    bad[1, 1] = np.nan
    assert "NaN" in check_pose(bad)
    assert "rotation" in check_pose(np.diag([2.0, 1, 1, 1]))
    assert check_pose(np.eye(3)) is not None
    assert check_pose(_pose(0.3, 1.0)) is None


def test_crop_resize_keeps_intrinsics_consistent():
    """A bright dot at a 3D point's projection in the full image lands where the prepared K projects it."""
    K_info = np.array([[60.0, 0, 47.5], [0, 60.0, 31.5], [0, 0, 1]])  # 96 x 64 camera
    camera = CameraModel.from_camera_info(K_info, np.zeros(5), "plumb_bob", 96, 64)
    point = torch.tensor([[0.3, -0.1, 2.0]], dtype=torch.float64)
    uv, _ = project_points(point, torch.from_numpy(camera.K), torch.eye(4, dtype=torch.float64))
    rgb = np.zeros((64, 96, 3), np.uint8)
    u, v = (int(c) for c in uv[0].numpy())  # the pixel containing the projection
    rgb[v - 1:v + 2, u - 1:u + 2] = 255
    frame = Frame(0.0, rgb, np.eye(4), camera)
    image, K = frame.prepared((32, 32))  # centre crop 64 x 64, then / 2
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    uv_small, _ = project_points(point.float(), K, torch.eye(4))
    peak = np.unravel_index(int(image[0].argmax()), (32, 32))
    assert abs(peak[0] + 0.5 - float(uv_small[0, 1])) <= 1.0
    assert abs(peak[1] + 0.5 - float(uv_small[0, 0])) <= 1.0
    assert frame.prepared((32, 32))[0] is image  # cached for the next window


def test_distorted_camera_is_undistorted():
    K_info = np.array([[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]])
    D = np.array([-0.25, 0.0, 0.0, 0.0, 0.0])
    camera = CameraModel.from_camera_info(K_info, D, "plumb_bob", 64, 64)
    assert camera.distorted
    # draw a dot where the lens images an off-centre ideal pixel; after undistortion it is back there
    ideal = torch.tensor([[56.0, 54.0]], dtype=torch.float64)
    distorted = distort_points(ideal, torch.from_numpy(camera.K), D)[0].numpy()
    rgb = np.zeros((64, 64, 3), np.uint8)
    du, dv = int(distorted[0]), int(distorted[1])
    rgb[dv - 1:dv + 2, du - 1:du + 2] = 255
    image, _ = Frame(0.0, rgb, np.eye(4), camera).prepared((64, 64))
    weights = image[0].numpy()
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    centroid = (float((weights * cols).sum() / weights.sum()), float((weights * rows).sum() / weights.sum()))
    # where the ideal camera sees the dot's centre pixel (du + 0.5, dv + 0.5)
    expected = undistort_points(torch.tensor([[du + 0.5, dv + 0.5]], dtype=torch.float64),
                                torch.from_numpy(camera.K), D)[0].numpy()
    assert np.hypot(centroid[0] - expected[0], centroid[1] - expected[1]) <= 0.5, (centroid, expected)
    assert np.hypot(expected[0] - 56.0, expected[1] - 54.0) <= 0.75  # and that is the ideal pixel
    assert np.hypot(du + 0.5 - 56.0, dv + 0.5 - 54.0) > 2.5  # the distortion did move it
    with pytest.raises(FrameError, match="equidistant"):
        CameraModel.from_camera_info(K_info, [0.1, 0, 0, 0], "equidistant", 64, 64)
    # zero coefficients of any model are fine (nothing to undo)
    assert not CameraModel.from_camera_info(K_info, [0, 0, 0, 0], "equidistant", 64, 64).distorted


@pytest.mark.parametrize("field, value, match", [
    ("window_frames", 1, "window_frames"),
    ("window_frames", 10, "multiple of keyframe_stride"),
    ("window_stride", 30, "window_stride"),
    ("frame_rate", float("nan"), "frame_rate"),
    ("frame_rate", 0.0, "frame_rate"),
    ("device", "tpu", "device"),
    ("renderer", "vulkan", "renderer"),
    ("track_grid", 500, "track_grid"),
    ("world_frame", "", "world_frame"),
    ("min_opacity", 1.5, "min_opacity"),
    ("sync_tolerance", 5.0, "sync_tolerance"),
    ("image_width", "128", "image_width"),
])
def test_config_refuses_bad_values_by_name(field, value, match):
    # concrete window and input size (the defaults are the checkpoint's): the cross-field checks need them
    resolved = dict(window_frames=24, window_stride=12, keyframe_stride=4, image_width=64, image_height=64)
    with pytest.raises(ConfigError, match=match):
        PipelineConfig(**{**resolved, field: value}).validate()


def test_default_config_is_valid():
    PipelineConfig().validate()
    assert PipelineConfig().frame_period == pytest.approx(0.1)


def test_values_left_to_the_model_pass_the_table_but_zero_does_not():
    """-1 (the checkpoint's) is taken besides each range; 0 and 1 frames stay refused by name."""
    from dgslrm_ros.stream.config import FROM_MODEL, PIPELINE_PARAMETERS

    by_name = {spec.name: spec for spec in PIPELINE_PARAMETERS}
    for name in ("window_frames", "window_stride", "keyframe_stride", "image_width", "image_height"):
        assert by_name[name].check(FROM_MODEL) == FROM_MODEL
        with pytest.raises(ConfigError, match=f"'{name}'"):
            PipelineConfig(**{name: 0}).validate()
    with pytest.raises(ConfigError, match="'window_frames': 1 is below the minimum 2"):
        PipelineConfig(window_frames=1).validate()
    with pytest.raises(ConfigError, match="'image_width': -2 is below the minimum 8"):
        PipelineConfig(image_width=-2).validate()
    # a check between fields runs as soon as its values are given, before any model is loaded
    with pytest.raises(ConfigError, match="'window_frames': 10 is not a multiple of keyframe_stride=4"):
        PipelineConfig(window_frames=10, keyframe_stride=4).validate()
    PipelineConfig(window_frames=10).validate()  # keyframe_stride is the checkpoint's: for_model checks it

