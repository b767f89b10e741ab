"""The sweep's far-end prior: what wins at the farthest plane takes the depth the window did resolve.

A textured plane at z = DEPTH seen by a camera sliding along x, with a patch that travels with the
camera (fixed in the image, like dirt on the lens or an object carried along): the patch shows no
parallax, so the farthest plane wins there. The prior must give it the plane's depth, leave every other
pixel as it was, and do nothing where the window resolved no depth at all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dgslrm_ros.geometry.plane_sweep import SweepConfig, plane_sweep

SIZE, FRAMES, DEPTH, FOCAL = 48, 8, 2.0, 40.0
PATCH = (slice(16, 32), slice(16, 32))  # rows, columns of the patch that moves with the camera


def _window(travel: float) -> dict[str, torch.Tensor]:
    """frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4] of the plane and the co-moving patch."""
    generator = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 3, 48, 48, generator=generator)  # the plane over x, y in [-3, 3], texels 2.5 px wide
    patch = F.interpolate(torch.rand(1, 3, 6, 6, generator=generator), size=(16, 16), mode="bilinear")[0]
    K = torch.tensor([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]]).expand(FRAMES, 3, 3)
    poses = torch.eye(4).repeat(FRAMES, 1, 1)
    poses[:, 0, 3] = torch.linspace(-travel / 2, travel / 2, FRAMES)
    centres = (torch.arange(SIZE) + 0.5 - SIZE / 2) / FOCAL * DEPTH  # plane coordinates seen by each pixel
    frames = []
    for n in range(FRAMES):
        x, y = (centres[None, :] + poses[n, 0, 3]).expand(SIZE, SIZE), centres[:, None].expand(SIZE, SIZE)
        frame = F.grid_sample(texture, torch.stack([x, y], dim=-1)[None] / 3.0, mode="bilinear", align_corners=True)[0]
        frame[:, PATCH[0], PATCH[1]] = patch
        frames.append(frame)
    return {"frames": torch.stack(frames), "K": K.contiguous(), "world_T_cam": poses}


def test_far_end_winners_take_the_resolved_depth() -> None:
    window = _window(travel=0.3)
    references = [2, 5]
    plain = plane_sweep(**window, reference_index=references, config=SweepConfig(far_end_prior=False))
    prior = plane_sweep(**window, reference_index=references)
    assert SweepConfig().far_end_prior
    inner = (slice(None), slice(None), slice(19, 29), slice(19, 29))  # the patch, away from its edges
    far = plain.depth >= SweepConfig().far * 0.999
    assert float(far[inner].float().mean()) > 0.9  # without parallax the farthest plane wins on the patch
    # With the prior the patch lies on the plane (the median of the confident depths: the textured plane).
    assert float(((prior.depth[inner] - DEPTH).abs() / DEPTH).median()) < 0.05
    # Every other pixel keeps its depth, and no confidence changes.
    assert torch.equal(prior.depth[~far], plain.depth[~far])
    assert torch.equal(prior.confidence, plain.confidence)
    # The textured plane around the patch was right to begin with.
    outside = (plain.confidence > 0.3) & ~far
    assert float(outside.float().mean()) > 0.3
    assert float(((plain.depth[outside] - DEPTH).abs() / DEPTH).median()) < 0.05


def test_without_any_resolved_depth_the_far_end_stays() -> None:
    window = _window(travel=0.0)  # a still camera: nothing is confident, so there is nothing to take
    plain = plane_sweep(**window, reference_index=[2, 5], config=SweepConfig(far_end_prior=False))
    prior = plane_sweep(**window, reference_index=[2, 5])
    assert float(prior.confidence.max()) == 0.0
    assert torch.equal(prior.depth, plain.depth)
