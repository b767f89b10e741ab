"""Loss terms: exactly zero for a perfect prediction, positive (and only the right one) otherwise."""
from dataclasses import replace

import pytest
import torch

from dgslrm_ros.data.sample import WindowSample
from dgslrm_ros.model.heads import GaussianPrediction
from dgslrm_ros.render import render_at_instants
from dgslrm_ros.training.losses import LossConfig, compute_losses, input_view_indices

H = W = 8
T, STRIDE = 4, 2


def _look_at(eye, target=(0.0, 0.0, 3.0)):
    eye, target = torch.tensor(eye), torch.tensor(target)
    z = torch.nn.functional.normalize(target - eye, dim=0)
    x = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0]), z), dim=0)
    y = torch.linalg.cross(z, x)
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def _prediction_and_batch():
    """A random-but-plausible prediction and a batch whose ground truth it explains exactly."""
    torch.manual_seed(0)
    kf = torch.arange(0, T, STRIDE)
    offsets = 0.02 * torch.randn(1, len(kf), T, 3, H, W)
    offsets = offsets - offsets[:, torch.arange(len(kf)), kf][:, :, None]  # anchored as the model's heads do
    K = torch.tensor([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]])
    poses = torch.stack([_look_at((0.05 * n, 0.0, 0.0)) for n in range(T)])  # [T, 4, 4]
    pred = GaussianPrediction(
        depth=2.5 + 0.5 * torch.rand(1, len(kf), 1, H, W),
        colors=torch.rand(1, len(kf), 3, H, W),
        quats=torch.nn.functional.normalize(torch.randn(1, len(kf), 4, H, W), dim=2),
        scales=0.03 + 0.02 * torch.rand(1, len(kf), 3, H, W),
        opacities=0.5 + 0.4 * torch.rand(1, len(kf), 1, H, W),
        offsets=offsets,
        keyframe_index=kf,
        keyframe_K=K.expand(1, len(kf), 3, 3).clone(),
        keyframe_world_T_cam=poses[kf][None].clone(),
        timestamps=torch.arange(T, dtype=torch.float32)[None] / 10,
    )
    gaussians = pred.gaussians(0)
    sup_index = torch.tensor([1, 3])
    sup_poses = torch.stack([_look_at((0.4, 0.1, 0.0)), _look_at((-0.4, -0.1, 0.1))])
    sup_K = K.expand(2, 3, 3).clone()
    with torch.no_grad():
        frames, _ = render_at_instants(gaussians, torch.arange(T), poses, K.expand(T, 3, 3), H, W)
        sup_frames, _ = render_at_instants(gaussians, sup_index, sup_poses, sup_K, H, W)
    depth = torch.full((T, 1, H, W), 2.0)
    depth[kf] = pred.depth[0]
    batch = WindowSample(
        frames=frames[None], K=K.expand(1, T, 3, 3).clone(), world_T_cam=poses[None],
        timestamps=pred.timestamps, depth=depth[None], keyframe_index=kf[None],
        keyframe_points=pred.keyframe_points().detach(),
        keyframe_visible=torch.ones(1, len(kf), T, H, W, dtype=torch.bool), sup_frames=sup_frames[None],
        sup_K=sup_K[None], sup_world_T_cam=sup_poses[None], sup_frame_index=sup_index[None],
        sup_depth=torch.full((1, 2, 1, H, W), 2.0), scene_id=torch.zeros(1, dtype=torch.long),
    )
    return pred, batch


def test_perfect_prediction_gives_zero_losses():
    pred, batch = _prediction_and_batch()
    losses = compute_losses(pred, batch, LossConfig(input_views=-1, perceptual="ssim"))
    assert set(losses) >= {"total", "mse", "perceptual", "photo", "depth", "flow", "psnr"}
    for name in ("mse", "depth", "flow"):
        assert float(losses[name]) == pytest.approx(0.0, abs=1e-7), name
    assert float(losses["perceptual"]) == pytest.approx(0.0, abs=1e-4)
    assert float(losses["total"]) == pytest.approx(0.0, abs=1e-4)


def test_each_error_raises_its_own_term():
    pred, batch = _prediction_and_batch()
    config = LossConfig(input_views=1, perceptual="ssim")

    wrong_colours = replace(pred, colors=(pred.colors + 0.3).clamp(0, 1))
    losses = compute_losses(wrong_colours, batch, config)
    assert float(losses["mse"]) > 1e-3 and float(losses["perceptual"]) > 0
    assert float(losses["depth"]) == pytest.approx(0.0, abs=1e-7)

    wrong_motion = replace(pred, offsets=pred.offsets + 0.1)
    losses = compute_losses(wrong_motion, batch, config)
    assert float(losses["flow"]) > 0.05
    assert float(losses["depth"]) == pytest.approx(0.0, abs=1e-7)

    wrong_depth = replace(pred, depth=pred.depth * 1.2)
    losses = compute_losses(wrong_depth, batch, config)
    # Scene flow compares offsets with GT displacements: a depth error is the depth term's alone.
    assert float(losses["depth"]) > 0.3
    assert float(losses["flow"]) == pytest.approx(0.0, abs=1e-7)
    total = losses["photo"] + 10 * losses["depth"] + 10 * losses["flow"]
    assert float(losses["total"]) == pytest.approx(float(total), rel=1e-6)

    # Gradients reach every predicted field the loss depends on.
    leaf = pred.depth.clone().requires_grad_()
    compute_losses(replace(pred, depth=leaf * 1.1), batch, config)["total"].backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_sky_and_invalid_ground_truth_are_masked():
    pred, batch = _prediction_and_batch()
    depth = batch.depth.clone()
    depth[0, 0, 0, :2] = 40.0  # sky rows of keyframe 0, beyond the model's far plane
    points = batch.keyframe_points.clone()
    points[0, 0, :, :2] = 1e3  # nonsense GT there must not count
    points[0, 1, :, 0, 0] = float("nan")
    batch = replace(batch, depth=depth, keyframe_points=points)
    losses = compute_losses(pred, batch, LossConfig(max_depth=10.0, perceptual="ssim"))
    assert float(losses["depth"]) == pytest.approx(0.0, abs=1e-7)
    assert float(losses["flow"]) == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(losses["total"])


def test_lpips_term_is_zero_for_identical_and_positive_for_different_renders():
    from dgslrm_ros.training.losses import perceptual_loss

    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32)
    assert float(perceptual_loss(image, image, "lpips")) == pytest.approx(0.0, abs=1e-6)
    assert float(perceptual_loss(image, image.flip(-1), "lpips")) > 0.05
    with pytest.raises(ValueError, match="31 px"):
        perceptual_loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), "lpips")
    with pytest.raises(ValueError, match="perceptual"):
        LossConfig(perceptual="vgg")


def test_input_view_indices():
    assert input_view_indices(8, 2) == [0, 7]
    assert input_view_indices(8, 3) == [0, 4, 7]  # round(3.5) -> 4
    assert input_view_indices(8, -1) == list(range(8))
    assert input_view_indices(8, 0) == []


def test_mismatched_keyframes_are_refused():
    pred, batch = _prediction_and_batch()
    batch = replace(batch, keyframe_index=torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="keyframe"):
        compute_losses(pred, batch)


def test_l2_flow_loss_weighs_large_motion_errors_more():
    pred, batch = _prediction_and_batch()
    config = LossConfig(input_views=1, perceptual="ssim")
    small_everywhere = replace(pred, offsets=pred.offsets + 0.01)  # every point 1 cm off
    large_few = pred.offsets.clone()
    large_few[..., :2, :2] += 0.16  # 4 of 64 pixels 16 cm off: the same L1 on average
    large_few = replace(pred, offsets=large_few)
    l1 = [float(compute_losses(p, batch, config)["flow"]) for p in (small_everywhere, large_few)]
    assert l1[0] == pytest.approx(l1[1], rel=0.2)
    l2_config = replace(config, flow_loss="l2")
    l2 = [float(compute_losses(p, batch, l2_config)["flow"]) for p in (small_everywhere, large_few)]
    assert l2[0] == pytest.approx(0.01**2, rel=0.2)
    assert l2[1] > 10 * l2[0]  # squared error: the few large errors dominate
    with pytest.raises(ValueError, match="flow_loss"):
        LossConfig(flow_loss="huber")


def test_balanced_flow_loss_weighs_moving_and_still_pixels_equally():
    pred, batch = _prediction_and_batch()
    points = batch.keyframe_points.clone()
    points[:, :, :, :1] += 0.3 * torch.arange(T, dtype=torch.float32)[None, None, :, None, None, None] / T  # row 0 moves
    batch = replace(batch, keyframe_points=points)
    plain = compute_losses(pred, batch, LossConfig(perceptual="none", mse_weight=0.0))
    # The prediction's own offsets travel up to ~0.08: the threshold sits above them.
    balanced = compute_losses(pred, batch, LossConfig(perceptual="none", mse_weight=0.0, flow_balance=True,
                                                      moving_threshold=0.15))
    # Only one row of eight moves: the plain mean dilutes its error, the balanced one gives it half the weight.
    assert float(balanced["flow"]) > 2.5 * float(plain["flow"]) > 0


def test_depth_balance_gives_the_few_moving_pixels_half_the_depth_loss():
    pred, batch = _prediction_and_batch()
    points = batch.keyframe_points.clone()
    points[:, :, :, :1] += 0.3 * torch.arange(T, dtype=torch.float32)[None, None, :, None, None, None] / T  # row 0 moves
    depth = batch.depth.clone()
    depth[:, :, :, :1] += 0.5  # the prediction misses the depth of the moving row only
    batch = replace(batch, keyframe_points=points, depth=depth)
    config = dict(perceptual="none", mse_weight=0.0, moving_threshold=0.15)
    plain = compute_losses(pred, batch, LossConfig(**config))
    balanced = compute_losses(pred, batch, LossConfig(**config, depth_balance=True))
    # One row of eight is wrong: the plain mean is 0.5 / 8, the balanced one 0.5 / 2.
    assert float(plain["depth"]) == pytest.approx(0.5 / H, rel=1e-4)
    assert float(balanced["depth"]) == pytest.approx(0.25, rel=1e-4)
    # Without any moving pixel the balanced depth error is the plain one, not half of it.
    still_batch = replace(batch, keyframe_points=pred.keyframe_points().detach())
    assert float(compute_losses(pred, still_batch, LossConfig(**config, depth_balance=True))["depth"]) == \
        pytest.approx(float(compute_losses(pred, still_batch, LossConfig(**config))["depth"]), rel=1e-6)


def test_geometry_only_loss_renders_nothing_and_gate_loss_follows_the_moving_mask(monkeypatch):
    import dgslrm_ros.training.losses as losses_module

    pred, batch = _prediction_and_batch()
    points = batch.keyframe_points.clone()
    points[:, :, :, :4] += 0.3 * torch.arange(T, dtype=torch.float32)[None, None, :, None, None, None] / T
    batch = replace(batch, keyframe_points=points)
    moving = torch.zeros(1, pred.num_keyframes, 1, H, W)
    moving[:, :, :, :4] = 1.0
    monkeypatch.setattr(losses_module, "render_at_instants", lambda *a, **k: pytest.fail("rendered"))
    config = LossConfig(perceptual="none", mse_weight=0.0, gate_weight=1.0, moving_threshold=0.15)
    assert not config.photometric
    right = compute_losses(replace(pred, gate=0.02 + 0.96 * moving), batch, config)
    wrong = compute_losses(replace(pred, gate=0.98 - 0.96 * moving), batch, config)
    assert float(right["gate"]) < 0.05 < 1.0 < float(wrong["gate"])
    assert float(right["photo"]) == 0.0
