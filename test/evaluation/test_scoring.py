"""The one scoring rule (evaluation/scoring.py): uint8 and float images alike, clamped, finite means."""
import math

import numpy as np
import pytest
import torch

from dgslrm_ros.core.gaussians import Gaussians
from dgslrm_ros.evaluation.scoring import ScoreLog, mean_scores, render_views, score_images, score_views


def test_uint8_and_float_images_are_scored_alike_and_clamped():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)  # [H, W, 3]
    frames = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0  # the same image as library frames
    same = score_images(rgb, frames)
    assert same["psnr"] == [math.inf] and same["ssim"][0] == pytest.approx(1.0, abs=1e-6)
    # a render over-exposed past 1 is scored as its clamped self: the error is what reaches the image
    bright = frames + 0.3
    expected = 10 * math.log10(1.0 / float((bright.clamp(0, 1) - frames).square().mean()))
    assert score_images(bright[None], rgb)["psnr"] == [pytest.approx(expected, abs=1e-4)]
    with pytest.raises(ValueError, match="C in"):
        score_images(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))


def test_means_keep_the_finite_values_and_say_nan_when_nothing_was_scored():
    target = torch.full((2, 3, 8, 8), 0.5)
    pred = target.clone()
    pred[1] += 0.1  # image 0 is perfect (PSNR inf), image 1 is 20 dB off
    means = mean_scores(pred, target, "novel_")
    assert set(means) == {"novel_psnr", "novel_ssim"} and means["novel_psnr"] == pytest.approx(20.0, abs=1e-4)
    empty = mean_scores(None, None, "heldout_")
    assert set(empty) == {"heldout_psnr", "heldout_ssim"} and all(math.isnan(v) for v in empty.values())
    log = ScoreLog()
    first = score_images(pred, target)
    log.add(first)
    log.add({"psnr": [30.0], "ssim": [float("nan")]})
    assert log.count == 3 and log.mean()["psnr"] == pytest.approx(25.0, abs=1e-4)
    assert log.mean()["ssim"] == pytest.approx(sum(first["ssim"]) / 2)
    assert log.values["psnr"][1:] == [first["psnr"][1], 30.0]


def test_lpips_is_nan_below_its_minimum_side():
    from dgslrm_ros.metrics.lpips import LPIPS

    small = torch.rand(2, 3, 16, 16)
    scores = score_images(small, small.flip(0), LPIPS())
    assert len(scores["lpips"]) == 2 and all(math.isnan(v) for v in scores["lpips"])
    assert "lpips" not in score_images(small, small)


def test_score_views_renders_at_the_targets_size_and_scores_each_view():
    gaussians = Gaussians(means=torch.tensor([[0.0, 0.0, 2.0]]), quats=torch.tensor([[1.0, 0, 0, 0]]),
                          scales=torch.full((1, 3), 0.3), opacities=torch.tensor([0.9]),
                          colors=torch.tensor([[1.0, 0.0, 0.0]]))
    K = torch.tensor([[[20.0, 0, 12], [0, 20.0, 8], [0, 0, 1]]]).expand(2, 3, 3)
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[1, 0, 3] = 5.0  # the second camera looks past the Gaussian: an empty (black) view
    seen = render_views(gaussians, poses, K, 16, 24, "torch")
    assert seen.shape == (2, 3, 16, 24) and seen.dtype == torch.float32 and seen[0].amax() > 0.5
    assert seen[1].amax() == 0
    targets = seen.clone()
    targets[1] = 0.25  # a grey image where the render is black: 20 log10(4) dB
    renders, scores = score_views(gaussians, poses.double(), K, targets, "torch")
    torch.testing.assert_close(renders, seen)
    assert scores["psnr"][0] == math.inf and scores["psnr"][1] == pytest.approx(20 * math.log10(4), abs=1e-4)
