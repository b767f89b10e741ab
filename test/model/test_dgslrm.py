import dataclasses
import math

import pytest
import torch

from dgslrm_ros.core.cameras import project_points, pixel_centers
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.geometry.classical import (COLOR_EPS, FOOTPRINT, KEYFRAME_FLOOR, KEYFRAME_SUPPORT, OPACITY,
                                          precompensated_colors)
from dgslrm_ros.geometry.cues import CUE_CHANNELS, GeometryCues
from dgslrm_ros.geometry.depth_check import depth_agrees
from dgslrm_ros.model import DGSLRM, GaussianPrediction, ModelConfig, ModelInputError
from dgslrm_ros.model.classical import ClassicalReconstructor
from dgslrm_ros.model.dgslrm import window_cues
from dgslrm_ros.model.heads import DEPTH, OFFSETS_START

from .conftest import as_if_trained

FIELDS = {  # name -> channels per pixel (None: the T offsets)
    "depth": 1, "colors": 3, "quats": 4, "scales": 3, "opacities": 1,
}


def check_shapes(prediction: GaussianPrediction, config: ModelConfig, batch: int, size: int) -> None:
    kf, t = config.num_keyframes, config.window_frames
    for name, channels in FIELDS.items():
        assert getattr(prediction, name).shape == (batch, kf, channels, size, size), name
    assert prediction.offsets.shape == (batch, kf, t, 3, size, size)
    assert prediction.keyframe_index.shape == (kf,)
    if prediction.keyframe_index.device.type != "meta":
        assert prediction.keyframe_index.tolist() == list(range(0, t, config.keyframe_stride))
    assert prediction.keyframe_K.shape == (batch, kf, 3, 3)
    assert prediction.keyframe_world_T_cam.shape == (batch, kf, 4, 4)
    assert prediction.timestamps.shape == (batch, t)


def test_tiny_forward_shapes_and_dtypes(tiny_model, tiny_config, tiny_window):
    with torch.no_grad():
        prediction = tiny_model(**tiny_window)
    check_shapes(prediction, tiny_config, batch=2, size=32)
    for name in [*FIELDS, "offsets"]:
        assert getattr(prediction, name).dtype == torch.float32, name
    assert prediction.keyframe_index.dtype == torch.int64
    assert prediction.keyframe_points().shape == (2, 2, 8, 32, 32, 3)


@pytest.mark.parametrize("name", ["small", "paper"])
def test_big_presets_on_meta_device(name):
    config = ModelConfig.preset(name)
    with torch.device("meta"):
        model = DGSLRM(config)
        size, t, r = config.image_size, config.window_frames, config.num_reference_frames
        inputs = dict(frames=torch.rand(1, t, 3, size, size), K=torch.eye(3).expand(1, t, 3, 3),
                      world_T_cam=torch.eye(4).expand(1, t, 4, 4), timestamps=torch.zeros(1, t))
        if r:
            inputs.update(ref_frames=torch.rand(1, r, 3, size, size), ref_K=torch.eye(3).expand(1, r, 3, 3),
                          ref_world_T_cam=torch.eye(4).expand(1, r, 4, 4), ref_timestamps=torch.zeros(1, r))
        # The cues are computed from pixel values, which the meta device does not have: shapes only.
        kf = config.num_keyframes
        one = torch.zeros(1, kf, 1, size, size)
        inputs["cues"] = GeometryCues(depth=one, sweep_confidence=one, sweep_cost=one, sweep_spread=one, fit_depth=one,
                                      fit_residual=one, fit_parallax=one, gate=one,
                                      lifted=torch.zeros(1, kf, t, 3, size, size))
        prediction = model(**inputs)
    check_shapes(prediction, config, batch=1, size=size)
    assert prediction.keyframe_points().shape == (1, config.num_keyframes, t, size, size, 3)


def test_small_preset_runs_for_real_at_low_resolution(window_factory):
    # The model has no positional embedding, so any multiple of the patch size works (the paper
    # fine-tunes 256 -> 512); 32 px keeps this real small-preset forward cheap.
    config = ModelConfig.preset("small")
    torch.manual_seed(0)
    with torch.no_grad():
        prediction = DGSLRM(config).eval()(**window_factory(config, size=32))
    check_shapes(prediction, config, batch=1, size=32)
    assert torch.isfinite(prediction.offsets).all()


def test_untrained_geometry_primed_model_is_exactly_the_classical_method(tiny_config, tiny_window):
    assert tiny_config.cue_channels == CUE_CHANNELS
    torch.manual_seed(0)
    model = DGSLRM(tiny_config).eval()
    with torch.no_grad():
        cues = window_cues(tiny_window["frames"], tiny_window["K"], tiny_window["world_T_cam"], model.keyframe_index())
        p = model(**tiny_window, cues=cues)
        c = ClassicalReconstructor(tiny_config)(**tiny_window, cues=cues)
    for name in [*FIELDS, "offsets", "gate"]:
        assert torch.allclose(getattr(p, name), getattr(c, name), atol=1e-6, rtol=1e-6), name
    # Both draw an instant from the keyframes around it; so do their Gaussians (and so every render).
    assert p.keyframe_support == c.keyframe_support == KEYFRAME_SUPPORT > 0
    assert p.keyframe_floor == c.keyframe_floor == p.gaussians(0).keyframe_floor == KEYFRAME_FLOOR
    assert p.gaussians(0).keyframe_support == p.detach().gaussians(0).keyframe_support == KEYFRAME_SUPPORT
    # ... and the classical fields are a plausible reconstruction: pixel colours (pre-compensated for the
    # drawing's blur), footprint scales, fixed
    # opacity, identity rotations, depth inside the model's range, no motion at the own keyframe.
    assert tiny_config.near <= p.depth.min() and p.depth.max() <= tiny_config.far
    keyframe_rgb = precompensated_colors(tiny_window["frames"][:, p.keyframe_index]).clamp(COLOR_EPS, 1 - COLOR_EPS)
    assert torch.allclose(p.colors, keyframe_rgb, atol=1e-6)
    assert torch.allclose(p.opacities, torch.full_like(p.opacities, OPACITY))
    assert torch.equal(p.quats[:, :, 0], torch.ones_like(p.quats[:, :, 0]))
    focal = tiny_window["K"][:, p.keyframe_index, 0, 0][..., None, None, None]
    assert torch.allclose(p.scales[:, :, :1], FOOTPRINT * p.depth / focal, rtol=1e-5)
    # With cues computed inside the forward (the node's path) the result is the same.
    with torch.no_grad():
        inside = model(**tiny_window)
    assert torch.allclose(inside.depth, p.depth) and torch.allclose(inside.offsets, p.offsets)


def test_depth_check_drops_at_inference_the_residual_the_frames_refuse(tiny_config, textured_plane_window):
    # A network whose depth residual puts every Gaussian 60 % too far, on an exact window of a textured plane.
    plane = textured_plane_window(size=tiny_config.image_size, frames=tiny_config.window_frames)
    window = {name: value[None] for name, value in plane.items()}
    model = DGSLRM(tiny_config)
    with torch.no_grad():
        model.head.out.bias.view(tiny_config.head_channels, -1)[DEPTH] = math.log(1.6)
        cues = window_cues(window["frames"], window["K"], window["world_T_cam"], model.keyframe_index())
        base = cues.depth.clamp(tiny_config.near, tiny_config.far)
        checked = model.eval()(**window, cues=cues).depth
        trained_on = model.train()(**window, cues=cues).depth  # what the losses see: the residual everywhere
        unchecked = dataclasses.replace(tiny_config, depth_check=False)
        model.config = unchecked
        off = model.eval()(**window, cues=cues).depth
    moved = torch.isclose(checked, base * 1.6, rtol=1e-5)
    kept_classical = torch.isclose(checked, base, rtol=1e-5)
    assert bool((moved | kept_classical).all())
    sure = cues.sweep_confidence > 0.3
    assert sure.float().mean() > 0.5 and float(kept_classical[sure].float().mean()) > 0.95
    agrees = depth_agrees(plane["frames"], plane["K"], plane["world_T_cam"], model.keyframe_index(), base[0],
                          base[0] * 1.6, cues.sweep_confidence[0])
    assert torch.equal(moved[0], agrees)
    assert torch.allclose(trained_on, base * 1.6, rtol=1e-5) and torch.allclose(off, base * 1.6, rtol=1e-5)


def test_motion_check_drops_at_inference_the_motion_the_frames_refuse(tiny_config, textured_plane_window):
    # A network whose motion residual drifts every Gaussian 3 cm a frame along y, on an exact window of a static
    # textured plane: the frames refuse that drift, and the Gaussians keep the classical (gated) motion.
    plane = textured_plane_window(size=tiny_config.image_size, frames=tiny_config.window_frames)
    window = {name: value[None] for name, value in plane.items()}
    model = DGSLRM(tiny_config)
    frames = tiny_config.window_frames
    with torch.no_grad():
        bias = model.head.out.bias.view(tiny_config.head_channels, -1)
        bias[OFFSETS_START + 1:OFFSETS_START + 3 * frames:3] = 0.03 * torch.arange(frames, dtype=bias.dtype)[:, None]
        cues = window_cues(window["frames"], window["K"], window["world_T_cam"], model.keyframe_index())
        classical = cues.offsets()
        checked = model.eval()(**window, cues=cues)
        trained_on = model.train()(**window, cues=cues).offsets  # what the losses see: the network's motion
        model.config = dataclasses.replace(tiny_config, motion_check=False)
        off = model.eval()(**window, cues=cues).offsets
    drift = (off - classical).norm(dim=3).amax(dim=2)  # [B, Kf, H, W]
    assert float(drift.min()) > 0.05 and torch.allclose(trained_on, off)
    kept_classical = (checked.offsets == classical).all(dim=3).all(dim=2)
    kept_network = (checked.offsets == off).all(dim=3).all(dim=2)
    assert bool((kept_classical | kept_network).all())
    assert float(kept_classical.float().mean()) > 0.9
    assert torch.equal(checked.gate[:, :, 0][kept_classical], cues.gate[:, :, 0][kept_classical].float())


def test_without_appearance_residuals_only_depth_and_motion_come_from_the_network(tiny_config, tiny_window):
    # Same (trained-like) weights, the switch off: colour, rotation and opacity are exactly the classical
    # ones, the scale is the classical footprint at the network's depth, depth and motion are the network's.
    torch.manual_seed(0)
    with_residuals = as_if_trained(DGSLRM(tiny_config)).eval()
    geometry_only = DGSLRM(dataclasses.replace(tiny_config, appearance_residuals=False)).eval()
    geometry_only.load_state_dict(with_residuals.state_dict())
    with torch.no_grad():
        cues = window_cues(tiny_window["frames"], tiny_window["K"], tiny_window["world_T_cam"],
                           geometry_only.keyframe_index())
        p = geometry_only(**tiny_window, cues=cues)
        r = with_residuals(**tiny_window, cues=cues)
        c = ClassicalReconstructor(tiny_config)(**tiny_window, cues=cues)
    assert torch.equal(p.depth, r.depth) and torch.equal(p.offsets, r.offsets) and torch.equal(p.gate, r.gate)
    assert (p.depth - c.depth).abs().max() > 1e-3  # the network moved the Gaussians ...
    for name in ("colors", "quats", "opacities"):  # ... but draws them as the classical method does
        assert torch.equal(getattr(p, name), getattr(c, name)), name
        assert (getattr(r, name) - getattr(c, name)).abs().max() > 1e-4, name  # the residuals were not zero
    focal = tiny_window["K"][:, p.keyframe_index, 0, 0][..., None, None, None]
    footprint = (FOOTPRINT * p.depth / focal).clamp(max=tiny_config.scale_max).expand_as(p.scales)
    assert torch.allclose(p.scales, footprint, rtol=1e-6)
    assert not torch.allclose(r.scales, footprint, rtol=1e-2)


def test_geometry_primed_output_layer_learns_from_the_first_step(tiny_config, tiny_window):
    torch.manual_seed(0)
    model = DGSLRM(tiny_config).train()
    p = model(**{k: v[:1] for k, v in tiny_window.items()})
    (p.depth.mean() + p.offsets.square().mean() + p.gate.mean()).backward()
    assert model.head.out.weight.grad.abs().sum() > 0  # zero weights, but a gradient: training can start


def test_cues_are_refused_by_a_model_without_cue_channels(tiny_config, tiny_window):
    model = DGSLRM(dataclasses.replace(tiny_config, cue_channels=0)).eval()
    with torch.no_grad():
        p = model(**tiny_window)  # the paper's plain model still works ...
        cues = window_cues(tiny_window["frames"], tiny_window["K"], tiny_window["world_T_cam"], model.keyframe_index())
        with pytest.raises(ModelInputError, match="without cue channels"):
            model(**tiny_window, cues=cues)  # ... but is not silently fed cues
    assert p.gate is None
    assert p.gaussians(0).keyframe_support == 0.0  # and draws every keyframe at every instant, as the paper


def test_offsets_vanish_at_own_keyframe(tiny_model, tiny_window):
    with torch.no_grad():
        p = tiny_model(**tiny_window)
    for k, frame in enumerate(p.keyframe_index.tolist()):
        assert torch.equal(p.offsets[:, k, frame], torch.zeros_like(p.offsets[:, k, frame]))
        others = [n for n in range(p.num_frames) if n != frame]
        assert p.offsets[:, k, others].abs().max() > 0  # the rest is predicted, not zeroed


def test_means_lie_on_keyframe_pixel_rays_at_predicted_z_depth(tiny_model, tiny_window):
    with torch.no_grad():
        p = tiny_model(**tiny_window)
    means = p.means()  # [B, Kf, H, W, 3]
    B, Kf, H, W, _ = means.shape
    uv, z = project_points(means.reshape(B, Kf, H * W, 3), p.keyframe_K, p.keyframe_world_T_cam)
    assert torch.allclose(uv, pixel_centers(H, W).reshape(1, 1, H * W, 2).expand_as(uv), atol=1e-3)
    assert torch.allclose(z, p.depth.reshape(B, Kf, H * W), atol=1e-4)
    assert torch.allclose(p.keyframe_world_T_cam, tiny_window["world_T_cam"][:, p.keyframe_index].float())


def test_gaussians_of_one_batch_item(tiny_model, tiny_window):
    with torch.no_grad():
        p = tiny_model(**tiny_window)
    g = p.gaussians(1)
    assert isinstance(g, DeformableGaussians)
    Kf, (H, W), T = p.num_keyframes, p.image_size, p.num_frames
    assert len(g) == Kf * H * W and g.offsets.shape == (Kf * H * W, T, 3)
    assert torch.equal(g.timestamps, tiny_window["timestamps"][1])
    assert g.keyframe_index.tolist() == [0] * (H * W) + [4] * (H * W)
    k, v, u = 1, 5, 7  # Gaussian (keyframe, row, column) -> flat index k*H*W + v*W + u
    i = k * H * W + v * W + u
    assert torch.equal(g.colors[i], p.colors[1, k, :, v, u])
    assert torch.equal(g.quats[i], p.quats[1, k, :, v, u])
    assert g.opacities[i] == p.opacities[1, k, 0, v, u]
    assert torch.equal(g.offsets[i], p.offsets[1, k, :, :, v, u])
    points = p.keyframe_points()
    for n in (0, 3, 7):
        assert torch.allclose(g.positions(n)[i], points[1, k, n, v, u])
    assert torch.allclose(g.positions(4)[i], p.means()[1, k, v, u])  # own keyframe: no offset
    with pytest.raises(IndexError, match="out of range for B=2"):
        p.gaussians(2)


def test_batch_items_are_independent(tiny_model, tiny_window):
    with torch.no_grad():
        both = tiny_model(**tiny_window)
        second = tiny_model(**{k: v[1:] for k, v in tiny_window.items()})
    for name in [*FIELDS, "offsets"]:
        assert torch.allclose(getattr(both, name)[1:], getattr(second, name), atol=1e-5), name


def test_reference_frames_change_output_not_shapes(tiny_config, tiny_window, window_factory):
    torch.manual_seed(1)
    model = as_if_trained(DGSLRM(dataclasses.replace(tiny_config, num_reference_frames=4))).eval()
    with torch.no_grad():
        plain = model(**tiny_window)
        window = window_factory(tiny_config, batch=2, references=4)
        window = {**window, **{k: tiny_window[k] for k in ("frames", "K", "world_T_cam", "timestamps")}}
        with_refs = model(**window)
    check_shapes(with_refs, tiny_config, batch=2, size=32)
    assert not torch.allclose(plain.depth, with_refs.depth)
    assert not torch.allclose(plain.offsets, with_refs.offsets)


def test_gradients_reach_every_parameter(tiny_config, window_factory):
    # Every parameter, since DDP fails on parameters that get no gradient; the reference embedding too.
    torch.manual_seed(0)
    model = as_if_trained(DGSLRM(dataclasses.replace(tiny_config, num_reference_frames=4))).train()
    p = model(**window_factory(tiny_config, batch=1, references=4))
    loss = sum(getattr(p, name).square().mean() for name in [*FIELDS, "offsets"]) + p.keyframe_points().mean()
    loss.backward()
    dead = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_activation_checkpointing_gives_the_same_gradients(tiny_config, tiny_window):
    assert tiny_config.num_reference_frames == 0  # so every parameter must get a gradient below
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)
        model = as_if_trained(DGSLRM(dataclasses.replace(tiny_config, activation_checkpointing=flag))).train()
        p = model(**{k: v[:1] for k, v in tiny_window.items()})
        (p.depth.mean() + p.offsets.square().sum()).backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-7, rtol=1e-5)


def test_bf16_autocast_keeps_float32_outputs(tiny_model, tiny_window):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        p = tiny_model(**tiny_window)
        means = p.means()
    assert p.depth.dtype == torch.float32 and means.dtype == torch.float32
    assert torch.isfinite(p.offsets).all()
    with torch.no_grad():
        reference = tiny_model(**tiny_window)
    assert torch.allclose(p.depth, reference.depth, rtol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cues_are_computed_in_float32_inside_a_bf16_autocast(tiny_window):
    """A bf16 training step on CUDA computes missing cues inside its autocast; the cache and the node compute
    them in fp32, so the network must get the fp32 cues there too. (CPU autocast leaves the cues' ops in
    fp32 anyway, so only CUDA can tell.)"""
    window = {name: value.cuda() for name, value in tiny_window.items()}
    keyframes = torch.arange(0, window["frames"].shape[1], 4, device="cuda")
    args = (window["frames"], window["K"], window["world_T_cam"], keyframes)
    plain = window_cues(*args)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        inside = window_cues(*args)
    assert inside.channels().dtype == torch.float32
    assert torch.allclose(inside.channels(), plain.channels(), atol=1e-5, rtol=0)


def test_timestamps_are_an_input(tiny_model, tiny_window):
    # Same frames, different timing inside the window: the time channel must reach the output.
    stamps = tiny_window["timestamps"].clone()
    stamps[:, 1:-1] = stamps[:, 1:-1] + 0.04
    with torch.no_grad():
        a = tiny_model(**tiny_window)
        b = tiny_model(**{**tiny_window, "timestamps": stamps})
    assert not torch.allclose(a.depth, b.depth)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: {**w, "frames": w["frames"][:, :4]}, r"T=8.*got \(2, 4, 3, 32, 32\)"),
        (lambda w: {**w, "frames": w["frames"][..., :30]}, "W=30 must be multiples of patch_size=8"),
        (lambda w: {**w, "frames": (w["frames"] * 255).to(torch.uint8)}, "divide uint8 by 255"),
        (lambda w: {**w, "K": w["K"][:, :, :2]}, r"K: expected shape \[B=2, T=8, 3, 3\]"),
        (lambda w: {**w, "world_T_cam": w["world_T_cam"][:1]}, r"world_T_cam: expected shape \[B=2"),
        (lambda w: {**w, "timestamps": w["timestamps"].flip(1)}, "strictly increasing"),
        (lambda w: {**w, "frames": w["frames"].tolist()}, "frames: expected a torch.Tensor"),
        (lambda w: {**w, "ref_frames": w["frames"][:, :4]}, r"missing \['ref_K', 'ref_world_T_cam', 'ref_timestamps'\]"),
        (lambda w: {**w, "ref_frames": w["frames"][:, :3], "ref_K": w["K"][:, :3],
                    "ref_world_T_cam": w["world_T_cam"][:, :3], "ref_timestamps": w["timestamps"][:, :3]},
         "R=3 reference frames, expected a multiple of keyframe_stride=4"),
    ],
)
def test_input_errors_say_what_was_expected(tiny_config, tiny_window, change, message):
    model = DGSLRM(dataclasses.replace(tiny_config, num_reference_frames=4))
    with pytest.raises(ModelInputError, match=message):
        model(**change(tiny_window))


def test_reference_frames_refused_by_a_model_without_them(tiny_model, tiny_config, window_factory):
    assert "tokenizer.reference_embedding" not in dict(tiny_model.named_parameters())
    with pytest.raises(ModelInputError, match="configured with num_reference_frames=0"):
        tiny_model(**window_factory(tiny_config, references=4))


def test_untrained_model_renders_a_blurry_copy_of_its_input(tiny_model, tiny_config):
    # GS-LRM-style init: from the keyframe camera the untrained prediction should already look like the
    # input (blurred), far closer than the image's own mean colour. A smooth image, since blur erases noise.
    from dgslrm_ros.render import render

    t, size = tiny_config.window_frames, tiny_config.image_size
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([x, y, 0.5 + 0.4 * torch.sin(6 * x) * torch.cos(4 * y)])  # [3, H, W]
    K = torch.tensor([[32.0, 0.0, 16.0], [0.0, 32.0, 16.0], [0.0, 0.0, 1.0]]).expand(1, t, 3, 3)
    world_T_cam = torch.eye(4).repeat(1, t, 1, 1)
    world_T_cam[0, :, 0, 3] = torch.linspace(0.0, 0.02, t)
    with torch.no_grad():
        p = tiny_model(image.expand(1, t, 3, size, size), K, world_T_cam, 0.1 * torch.arange(t)[None].double())
        out = render(p.gaussians(0).at(0), world_T_cam[0, :1], K[0, :1], size, size, backend="torch")
    # Covered everywhere: the classical opacity is soft (0.35, geometry/classical.py), so coverage comes
    # from overlapping footprints and keyframes; two keyframes of the tiny preset leave the corners ~0.86.
    assert out.alpha.min() > 0.8
    error = (out.rgb[0] - image).abs().mean()
    mean_colour_error = (image - image.mean(dim=(1, 2), keepdim=True)).abs().mean()
    assert error < 0.06 and error < 0.3 * mean_colour_error
