"""Pure held-out-frame scoring: instants to window positions, copy/blend, extra method rows."""
import numpy as np
import pytest
import torch

from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians
from dgslrm_ros.evaluation.holdout import (HeldOutView, blend_frames, copy_frame, score_window, summarise,
                                           window_position)


def test_window_position_interpolates_inside_the_span_only():
    stamps = 1.7e9 + np.array([0.0, 0.1, 0.3, 0.4])  # absolute ROS seconds, uneven spacing
    assert window_position(stamps, stamps[0] + 0.05) == pytest.approx(0.5, abs=1e-5)
    assert window_position(stamps, stamps[0] + 0.25) == pytest.approx(1.75, abs=1e-5)
    assert window_position(stamps, stamps[2]) == pytest.approx(2.0)
    assert window_position(stamps, stamps[0] - 0.01) is None and window_position(stamps, stamps[-1] + 0.01) is None


def test_copy_takes_the_nearest_frame_and_blend_the_mean_of_both():
    inputs = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    assert copy_frame(0.3, inputs).mean() == 0 and copy_frame(0.7, inputs).mean() == 1
    assert copy_frame(1.5000024, inputs).mean() == 1  # a half-way tie blurred by stamp rounding: the earlier
    assert blend_frames(1.5, inputs).mean() == pytest.approx(1.5)


def test_score_window_runs_any_extra_method_and_skips_frames_outside_or_on_inputs():
    height = width = 32
    gaussians = DeformableGaussians.static(
        Gaussians(means=torch.tensor([[0.0, 0.0, 2.0]]), quats=torch.tensor([[1.0, 0, 0, 0]]),
                  scales=torch.full((1, 3), 0.3), opacities=torch.tensor([0.9]), colors=torch.tensor([[1.0, 0.0, 0.0]])),
        torch.tensor([0.0, 0.1]))
    inputs = torch.rand(2, 3, height, width)
    K = torch.tensor([[30.0, 0, 16], [0, 30.0, 16], [0, 0, 1]])
    views = [HeldOutView(stamp=s, image=torch.rand(3, height, width), world_T_cam=torch.eye(4, dtype=torch.float64), K=K)
             for s in (0.05, 0.1, 0.2)]  # inside, on an input frame, outside
    methods = {"grey": lambda g, p, v, x: torch.full((3, height, width), 0.5)}
    result = score_window(0, gaussians, np.array([0.0, 0.1]), inputs, views, methods)
    assert result.stamps == [0.05] and result.positions == [pytest.approx(0.5)]
    expected = 10 * np.log10(1.0 / float(((views[0].image - 0.5) ** 2).mean()))
    assert result.values["grey"]["psnr"][0] == pytest.approx(expected, abs=1e-4)
    assert summarise([result])["grey"]["frames"] == 1
    assert score_window(0, gaussians, np.array([0.0, 0.1]), inputs, views[1:], methods) is None
