"""Test-time refinement raises the PSNR of the window's own frames; the curve is written."""
import json

import torch

from dgslrm_ros.evaluation.refine import (RefineConfig, optimize_gaussians, refine_gaussians, save_curve,
                                          window_psnr)


def test_refinement_improves_feed_forward_gaussians(tiny_model, window, tmp_path):
    batch, _ = window.add_batch_dim().normalized(1.0)
    with torch.no_grad():
        gaussians = tiny_model(**batch.model_inputs()).gaussians(0)
    frames, K, poses = batch.frames[0], batch.K[0], batch.world_T_cam[0]
    before = window_psnr(gaussians, frames, K, poses)

    refined, curve = optimize_gaussians(gaussians, frames, K, poses, iters=12, eval_every=4)
    assert [c["iter"] for c in curve] == [0, 4, 8, 12]
    assert curve[0]["psnr"] == before
    assert curve[-1]["psnr"] > before + 1.0, curve  # at least a dB on its own frames
    assert all(b["seconds"] >= a["seconds"] for a, b in zip(curve, curve[1:]))
    # The representation is kept: same Gaussians, same window, valid attributes.
    assert len(refined) == len(gaussians) and torch.equal(refined.timestamps, gaussians.timestamps)
    assert (refined.opacities > 0).all() and (refined.opacities < 1).all() and (refined.scales > 0).all()
    assert torch.allclose(refined.quats.norm(dim=-1), torch.ones(len(refined)), atol=1e-5)

    # The node's entry point: same result as the curve run for the same iterations (deterministic).
    again = refine_gaussians(gaussians, frames, K, poses, iters=12)
    assert torch.allclose(again.means, refined.means, atol=1e-5)
    assert refine_gaussians(gaussians, frames, K, poses, iters=0).means.equal(gaussians.means)

    json_path, png_path = save_curve(curve, tmp_path)
    assert json.loads(json_path.read_text())[-1]["iter"] == 12
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refinement_rejects_mismatched_window(tiny_model, window):
    import pytest

    batch, _ = window.add_batch_dim().normalized(1.0)
    with torch.no_grad():
        gaussians = tiny_model(**batch.model_inputs()).gaussians(0)
    with pytest.raises(ValueError, match="T=8"):
        refine_gaussians(gaussians, batch.frames[0, :4], batch.K[0], batch.world_T_cam[0], iters=1)
    with pytest.raises(ValueError, match="views_per_step"):
        RefineConfig(views_per_step=-1)
