"""core.shapes.broadcast_shape: torch's broadcasting rule, without importing sympy."""
from __future__ import annotations

import pytest
import torch

from dgslrm_ros.core.shapes import broadcast_shape


@pytest.mark.parametrize("shapes", [((2, 1), (3,)), ((), (4, 5)), ((1, 3, 1), (2, 1, 6)), (torch.Size([7]), (1,))])
def test_same_shape_as_torch(shapes) -> None:
    assert broadcast_shape(*shapes) == torch.broadcast_shapes(*shapes)


def test_refuses_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(ValueError):
        broadcast_shape((2, 3), (4,))


def test_camera_rays_and_poses_do_not_import_sympy(modules_loaded_after) -> None:
    # In a fresh process: building rays and interpolating poses must not pull in sympy (0.3-0.5 s and
    # tens of MB on the node's first window).
    code = (
        "import torch\n"
        "from dgslrm_ros.core.cameras import camera_rays\n"
        "from dgslrm_ros.core.poses import pose_from_translation_quat\n"
        "K = torch.eye(3).expand(2, 3, 3); T = torch.eye(4).expand(2, 4, 4)\n"
        "camera_rays(K, T, 4, 5)\n"
        "pose_from_translation_quat(torch.zeros(2, 3), torch.tensor([1.0, 0.0, 0.0, 0.0]))\n"
    )
    assert "sympy" not in modules_loaded_after(code)
