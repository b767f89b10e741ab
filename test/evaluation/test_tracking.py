"""Track-error protocols (evaluation/tracking.py) on hand-made tracks."""
import numpy as np
import pytest

from dgslrm_ros.evaluation.tracking import published_track_errors


def _wall_and_ball(t: int) -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 camera at the origin looking down +z (focal 20 px: neighbouring rays 0.2 m apart at 4 m); every
    pixel sees a still wall at z = 4 except pixel (row 1, column 1), which sees a ball at z = 2 sliding +x at
    0.1 m a frame. -> (K, GT pixel tracks [4, 4, T, 3])."""
    K = np.array([[20.0, 0.0, 2.0], [0.0, 20.0, 2.0], [0.0, 0.0, 1.0]])
    rows, cols = np.meshgrid(np.arange(4) + 0.5, np.arange(4) + 0.5, indexing="ij")
    rays = np.stack([(cols - 2.0) / 20.0, (rows - 2.0) / 20.0, np.ones((4, 4))], axis=-1)  # camera z = 1
    gt = np.repeat((4.0 * rays)[:, :, None], t, axis=2)  # [4, 4, T, 3]
    gt[1, 1] = 2.0 * rays[1, 1] + np.outer(0.1 * np.arange(t), [1.0, 0.0, 0.0])
    return K, gt


def test_published_tracks_are_scored_against_the_point_their_pixel_sees() -> None:
    """The demo's figures on hand-made tracks. A track on the ball placed 2 m too deep starts 0.2 m from the
    wall point of the next pixel and 2 m from the ball: it is still scored against the ball (its motion
    exact, its error the depth error), where matching to the nearest GT point in 3D paired it with the wall
    and called it still. A track behind the camera is not scored."""
    t = 6
    K, gt = _wall_and_ball(t)
    ball = 4.0 * np.array([-0.025, -0.025, 1.0]) + np.outer(0.1 * np.arange(t), [1.0, 0.0, 0.0])  # 2 m too deep
    wall = np.repeat(gt[2, 3, :1], t, axis=0)  # exact
    behind = np.repeat([[0.0, 0.0, -1.0]], t, axis=0)
    got = published_track_errors(np.stack([ball, wall, behind]), gt, K, np.eye(4))
    assert got["tracks_evaluated"] == 2 and got["moving_tracks"] == 1
    assert got["moving_flow_epe_m"] == pytest.approx(0.0, abs=1e-12)
    assert got["moving_flow_epe_still_m"] == pytest.approx(float(np.mean(0.1 * np.arange(t))))
    depth_error = float(np.linalg.norm(ball[0] - gt[1, 1, 0]))  # 2.0006 m: the depth error, at every frame
    assert got["track_epe_m"] == pytest.approx(depth_error / 2)  # the wall track scores 0
    still = np.repeat(np.stack([ball, wall])[:, :1], t, axis=1)
    got = published_track_errors(still, gt, K, np.eye(4))
    assert got["moving_flow_epe_m"] == pytest.approx(got["moving_flow_epe_still_m"])
    assert got["track_epe_m"] == pytest.approx(got["track_epe_still_m"])
    # in another camera frame: the same tracks seen by a camera moved 1 m along x score the same
    moved = np.eye(4)
    moved[0, 3] = 1.0
    shifted = np.stack([ball, wall]) + [1.0, 0.0, 0.0]
    got_moved = published_track_errors(shifted, gt + [1.0, 0.0, 0.0], K, moved)
    assert got_moved["track_epe_m"] == pytest.approx(depth_error / 2) and got_moved["moving_tracks"] == 1
    assert published_track_errors(behind[None], gt, K, np.eye(4)) == {}


def test_query_points_follow_the_keyframe_zero_gaussian_at_their_pixel() -> None:
    """A visible GT point inside the first image is scored against the Gaussian of its pixel; others are not."""
    import torch

    from dgslrm_ros.core.gaussians import DeformableGaussians
    from dgslrm_ros.evaluation.tracking import query_point_errors

    n, t = 4, 3  # a 2x2 keyframe 0, three frames
    means = torch.zeros(n, 3, dtype=torch.float64)
    means[1] = torch.tensor([1.0, -1.0, 2.0])  # seen at pixel (column 1, row 0) by the camera below
    offsets = torch.zeros(n, t, 3, dtype=torch.float64)
    offsets[1, :, 0] = 0.1 * torch.arange(t)
    pixels = DeformableGaussians(means=means, quats=torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4).double(),
                                 scales=torch.full((n, 3), 0.1).double(), opacities=torch.full((n,), 0.5).double(),
                                 colors=torch.full((n, 3), 0.5).double(), offsets=offsets,
                                 timestamps=torch.arange(t).double(), keyframe_index=torch.zeros(n, dtype=torch.long))
    K = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    truth = means[1].numpy() + offsets[1].numpy()  # [T, 3]
    gt = np.stack([truth + [0.0, 0.0, 0.2], truth, truth + [50.0, 0.0, 0.0]])  # off by 0.2 m / hidden / outside
    errors = query_point_errors(gt, np.array([True, False, True]), pixels, K, np.eye(4), 2, 2)
    np.testing.assert_allclose(errors, np.full((1, t), 0.2), atol=1e-9)
    assert query_point_errors(gt, np.zeros(3, bool), pixels, K, np.eye(4), 2, 2) is None


def test_query_point_scores_sample_the_ground_truth_at_the_window_stamps() -> None:
    """GT samples within 1 ms of a window stamp are used, others are missing (NaN, not scored); a window the
    GT does not reach back to the first frame of adds nothing. The summary is replay's `tracking`."""
    import torch

    from dgslrm_ros.core.gaussians import DeformableGaussians
    from dgslrm_ros.evaluation.tracking import QueryPointScores

    t = 3
    pixel = DeformableGaussians(means=torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64),
                                quats=torch.tensor([[1.0, 0, 0, 0]]).double(), scales=torch.full((1, 3), 0.1).double(),
                                opacities=torch.full((1,), 0.5).double(), colors=torch.full((1, 3), 0.5).double(),
                                offsets=torch.zeros(1, t, 3, dtype=torch.float64), timestamps=torch.arange(t).double(),
                                keyframe_index=torch.zeros(1, dtype=torch.long))
    K = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # a 1x1 image seeing (0, 0, z)
    stamps = 100.0 + np.array([0.0, 0.1, 0.2])
    gt_t = 100.0 + np.array([-0.1, 0.0004, 0.1, 0.25])  # no sample within 1 ms of the last stamp
    gt = np.zeros((1, 4, 3))
    gt[0, :, 2] = [9.0, 2.0, 2.3, 9.0]  # the point at the first two stamps: 0 m, then 0.3 m off
    scores = QueryPointScores()
    scores.add_window(gt, gt_t, np.ones((1, 4)), stamps, pixel, K, np.eye(4), 1, 1)
    assert scores.queries == 1 and np.allclose(np.concatenate(scores.errors), [0.0, 0.3])
    scores.add_window(gt, gt_t + 0.05, np.ones((1, 4)), stamps, pixel, K, np.eye(4), 1, 1)  # first stamp: no GT
    assert scores.queries == 1
    summary = scores.summary()
    assert (summary["tracks"], summary["samples"]) == (1, 2)
    assert summary["epe"] == pytest.approx(0.15) and summary["within_0.1m"] == 0.5 and summary["within_0.2m"] == 0.5
    assert QueryPointScores().summary() is None
