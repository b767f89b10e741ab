"""Gaussians / DeformableGaussians: validation, motion, subsets, similarity transforms, files."""

from dataclasses import replace

import pytest
import torch

from dgslrm_ros.core.gaussians import DeformableGaussians, Gaussians, GaussiansFileError
from dgslrm_ros.core.rotations import axis_angle_to_quat, quat_to_matrix, rotation_angle_between

DT = torch.float64


def make_static(n=4, generator=None):
    g = generator or torch.Generator().manual_seed(0)
    return Gaussians(
        means=torch.randn(n, 3, generator=g, dtype=DT),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g, dtype=DT), dim=-1),
        scales=torch.rand(n, 3, generator=g, dtype=DT) + 0.01,
        opacities=torch.rand(n, generator=g, dtype=DT) * 0.98 + 0.01,
        colors=torch.rand(n, 3, generator=g, dtype=DT),
    )


def constant_velocity(n=5, stamps=(0.0, 0.1, 0.25, 0.3, 0.5), seed=0):
    """Gaussian i moves with velocity v_i from means_i at t = stamps[0]; offsets are exact."""
    g = torch.Generator().manual_seed(seed)
    base = make_static(n, g)
    stamps_t = torch.tensor(stamps, dtype=DT)
    velocity = torch.randn(n, 3, generator=g, dtype=DT)
    offsets = velocity[:, None, :] * (stamps_t - stamps_t[0])[None, :, None]  # [N, T, 3]
    gaussians = DeformableGaussians(
        means=base.means, quats=base.quats, scales=base.scales, opacities=base.opacities, colors=base.colors,
        offsets=offsets, timestamps=stamps_t, keyframe_index=torch.arange(n) % 2,
    )
    return gaussians, velocity


def test_gaussians_validation_names_the_field():
    good = make_static(3)
    assert len(good) == 3
    with pytest.raises(ValueError, match=r"Gaussians.quats.*\[N=3, 4\].*\(3, 3\)"):
        Gaussians(means=good.means, quats=good.quats[:, :3], scales=good.scales,
                  opacities=good.opacities, colors=good.colors)
    with pytest.raises(ValueError, match="Gaussians.opacities"):
        Gaussians(means=good.means, quats=good.quats, scales=good.scales,
                  opacities=good.opacities[:2], colors=good.colors)
    with pytest.raises(ValueError, match="share one dtype"):
        Gaussians(means=good.means.float(), quats=good.quats, scales=good.scales,
                  opacities=good.opacities, colors=good.colors)


def test_deformable_validation():
    g, _ = constant_velocity()
    fields = dict(means=g.means, quats=g.quats, scales=g.scales, opacities=g.opacities, colors=g.colors,
                  offsets=g.offsets, timestamps=g.timestamps, keyframe_index=g.keyframe_index)
    with pytest.raises(ValueError, match=r"offsets.*\[N=5, T=5, 3\]"):
        DeformableGaussians(**{**fields, "offsets": g.offsets[:, :4]})
    with pytest.raises(ValueError, match="keyframe_index.*int64"):
        DeformableGaussians(**{**fields, "keyframe_index": g.keyframe_index.int()})
    with pytest.raises(ValueError, match="strictly increasing"):
        DeformableGaussians(**{**fields, "timestamps": g.timestamps.flip(0)})


def test_positions_and_velocities_of_constant_velocity_motion():
    g, velocity = constant_velocity()
    for n in range(g.num_frames):
        expected = g.means + velocity * (g.timestamps[n] - g.timestamps[0])
        torch.testing.assert_close(g.positions(n), expected)
        # Central differences (inside) and one-sided ones (ends) are exact on linear motion,
        # even with uneven frame spacing.
        torch.testing.assert_close(g.velocities(n), velocity)
    assert g.frame_velocities().shape == (5, 5, 3)


def test_velocities_follow_timestamps_not_frame_indices():
    g, velocity = constant_velocity(stamps=(0.0, 2.0, 4.0))
    # twice slower clock -> same offsets per frame but half the per-second velocity
    slow = DeformableGaussians(**{**g.__dict__, "timestamps": g.timestamps * 2})
    torch.testing.assert_close(slow.velocities(1), velocity / 2)


def test_velocities_with_absolute_float64_stamps_and_float32_offsets():
    g, velocity = constant_velocity(stamps=(0.0, 0.033, 0.066))
    absolute = DeformableGaussians(**{**g.__dict__, "timestamps": g.timestamps + 1.7e9}).to(dtype=torch.float32)
    torch.testing.assert_close(absolute.velocities(1), velocity.float(), rtol=1e-4, atol=1e-4)


def test_accelerating_motion_uses_central_and_one_sided_differences():
    stamps = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=DT)
    positions_x = stamps ** 2  # x = t^2
    offsets = torch.zeros(1, 4, 3, dtype=DT)
    offsets[0, :, 0] = positions_x
    base = make_static(1)
    g = DeformableGaussians(means=base.means, quats=base.quats, scales=base.scales, opacities=base.opacities,
                            colors=base.colors, offsets=offsets, timestamps=stamps,
                            keyframe_index=torch.zeros(1, dtype=torch.long))
    vx = g.frame_velocities()[0, :, 0]
    # central: (x[n+1] - x[n-1]) / 2 = 2n exactly; ends one-sided: 1 and 5
    torch.testing.assert_close(vx, torch.tensor([1.0, 2.0, 4.0, 5.0], dtype=DT))
    assert float(g.velocities(1.5)[0, 0]) == pytest.approx(3.0)  # between frames: linear in the frame
    assert float(g.velocities(3)[0, 0]) == pytest.approx(5.0)


def test_fractional_frame_interpolates_offsets_linearly():
    g, _ = constant_velocity()
    torch.testing.assert_close(g.positions(1.25), 0.75 * g.positions(1) + 0.25 * g.positions(2))
    torch.testing.assert_close(g.positions(torch.tensor(4.0)), g.positions(4))
    at = g.at(2.5)
    assert isinstance(at, Gaussians) and len(at) == len(g)
    torch.testing.assert_close(at.means, g.positions(2.5))
    for bad in (-0.5, 4.01):
        with pytest.raises(ValueError, match=r"frame: expected an index in \[0, 4\]"):
            g.positions(bad)


def test_select_prune_concat():
    g, _ = constant_velocity(n=6)
    keep = g.opacities >= 0.5
    pruned = g.prune(0.5)
    assert len(pruned) == int(keep.sum()) and bool((pruned.opacities >= 0.5).all())
    torch.testing.assert_close(pruned.offsets, g.offsets[keep])
    torch.testing.assert_close(pruned.timestamps, g.timestamps)
    picked = g.select(torch.tensor([4, 1]))
    torch.testing.assert_close(picked.means, g.means[[4, 1]])
    assert picked.keyframe_index.tolist() == g.keyframe_index[[4, 1]].tolist()
    joined = DeformableGaussians.concat([g.select(~keep), g.select(keep)])
    assert len(joined) == len(g)
    torch.testing.assert_close(joined.offsets, torch.cat([g.offsets[~keep], g.offsets[keep]]))
    other_window, _ = constant_velocity(stamps=(0.0, 0.1, 0.2, 0.3, 0.4))
    with pytest.raises(ValueError, match="same window"):
        DeformableGaussians.concat([g, other_window])
    with pytest.raises(ValueError, match="bool mask must have shape"):
        g.select(torch.ones(3, dtype=torch.bool))


def test_similarity_transform_round_trip_and_semantics():
    g, velocity = constant_velocity()
    rotation_q = axis_angle_to_quat(torch.tensor([0.3, -1.1, 0.4], dtype=DT))
    rotation = quat_to_matrix(rotation_q)
    translation = torch.tensor([1.0, -2.0, 0.5], dtype=DT)
    scale = 2.5
    moved = g.transformed(scale, rotation, translation)
    # positions at every frame follow the similarity; velocities rotate and scale
    torch.testing.assert_close(moved.positions(3), scale * g.positions(3) @ rotation.T + translation)
    torch.testing.assert_close(moved.velocities(2), scale * velocity @ rotation.T)
    torch.testing.assert_close(moved.scales, g.scales * scale)
    # each Gaussian's orientation matrix is R @ its own
    torch.testing.assert_close(quat_to_matrix(moved.quats), rotation @ quat_to_matrix(g.quats))
    back = moved.transformed(1 / scale, rotation.T, -(rotation.T @ translation) / scale)
    for name in ("means", "offsets", "scales"):
        torch.testing.assert_close(getattr(back, name), getattr(g, name))
    assert float(rotation_angle_between(back.quats, g.quats).max()) < 1e-7
    with pytest.raises(ValueError, match="positive scalar"):
        g.transformed(-1.0, rotation, translation)


def test_to_detach_keep_dtypes():
    g, _ = constant_velocity()
    g32 = g.to("cpu", torch.float32)
    assert g32.means.dtype == torch.float32 and g32.keyframe_index.dtype == torch.long
    assert g32.timestamps.dtype == torch.float64  # seconds keep their precision
    leaf = g.means.clone().requires_grad_(True)
    with_grad = DeformableGaussians(**{**g.__dict__, "means": leaf})
    assert with_grad.detach().means.requires_grad is False


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    g, _ = constant_velocity()
    g = replace(g, keyframe_support=1.5, keyframe_floor=0.3, back_scale=2.5)
    path = g.save(tmp_path / "sub" / "window.safetensors")
    loaded = DeformableGaussians.load(path)
    tensors = [name for name, value in g.__dict__.items() if isinstance(value, torch.Tensor)]
    assert len(tensors) == 8
    for name in tensors:
        assert torch.equal(getattr(loaded, name), getattr(g, name)), name
    assert (loaded.keyframe_support, loaded.keyframe_floor, loaded.back_scale) == (1.5, 0.3, 2.5)
    older = tmp_path / "older.safetensors"  # written before keyframe_support existed: every keyframe drawn
    save_file({name: getattr(g, name).contiguous() for name in tensors}, str(older))
    assert DeformableGaussians.load(older).drawing() == {"keyframe_support": 0, "keyframe_floor": 0, "back_scale": 1}
    # written with the fade but before back_scale: the back layer at its own scales
    faded = tmp_path / "faded.safetensors"
    save_file({name: getattr(g, name).contiguous() for name in tensors}, str(faded),
              metadata={"keyframe_support": "1.5", "keyframe_floor": "0.3"})
    assert DeformableGaussians.load(faded).drawing() == {"keyframe_support": 1.5, "keyframe_floor": 0.3,
                                                          "back_scale": 1.0}


def _three_keyframes(support: float) -> DeformableGaussians:
    """One Gaussian per keyframe at window frames 0, 4, 8 of a 10-frame window."""
    stamps = torch.arange(10, dtype=torch.float64) / 10
    g = Gaussians(means=torch.zeros(3, 3), quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(3, 1),
                  scales=torch.full((3, 3), 0.1), opacities=torch.full((3,), 0.8), colors=torch.full((3, 3), 0.5))
    return replace(DeformableGaussians.static(g, stamps, torch.tensor([0, 4, 8])), keyframe_support=support)


def test_keyframe_support_draws_an_instant_from_the_keyframes_around_it():
    every = _three_keyframes(0.0)
    assert torch.equal(every.instant_weights(6), torch.ones(3))
    assert len(every.at(6)) == 3  # DGS-LRM: every keyframe at every instant
    g = _three_keyframes(1.5)  # fades over 1.5 spacings = 6 frames
    assert torch.allclose(g.instant_weights(4), torch.tensor([1 - 4 / 6, 1.0, 1 - 4 / 6]).float())
    assert torch.allclose(g.instant_weights(6), torch.tensor([0.0, 1 - 2 / 6, 1 - 2 / 6]).float())
    assert torch.allclose(g.instant_weights(9), g.instant_weights(8))  # after the last keyframe: as at it
    drawn = g.at(6)
    assert len(drawn) == 2  # the keyframe 6 frames away is not drawn at all
    assert torch.allclose(drawn.opacities, 0.8 * torch.tensor([4 / 6, 4 / 6]))
    with pytest.raises(ValueError, match="keyframe_support"):
        _three_keyframes(-1.0)
    with pytest.raises(ValueError, match="drawn differently"):
        DeformableGaussians.concat([g, every])
    assert DeformableGaussians.concat([g, g]).keyframe_support == 1.5
    assert g.select(torch.tensor([True, False, True])).to(dtype=torch.float64).keyframe_support == 1.5
    # with a floor every keyframe stays drawn, faintly, to fill what the keyframes around the instant miss
    floored = replace(g, keyframe_floor=0.25)
    assert torch.allclose(floored.instant_weights(6), torch.tensor([0.25, 1 - 2 / 6, 1 - 2 / 6]).float())
    assert torch.allclose(floored.at(6).opacities, 0.8 * torch.tensor([0.25, 4 / 6, 4 / 6]))
    with pytest.raises(ValueError, match="keyframe_floor"):
        replace(g, keyframe_floor=1.5)
    with pytest.raises(ValueError, match="drawn differently"):
        DeformableGaussians.concat([g, floored])


def test_back_scale_widens_only_the_back_layer():
    g = replace(_three_keyframes(1.5), keyframe_floor=0.25)
    front, back = g.layers_at(6)
    wide = replace(g, back_scale=3.0)
    wide_front, wide_back = wide.layers_at(6)
    assert torch.equal(wide_front.scales, front.scales) and torch.equal(wide_front.opacities, front.opacities)
    assert torch.allclose(wide_back.scales, 3.0 * back.scales)
    assert torch.equal(wide_back.opacities, back.opacities) and torch.equal(wide_back.means, back.means)
    # One set for a single-pass viewer: the keyframe only the floor keeps (frame 0, six frames away) stands
    # in for the back layer and is drawn wide; the two around the instant keep their size.
    assert torch.allclose(wide.at(6).scales[:, 0], torch.tensor([0.3, 0.1, 0.1]))
    assert torch.equal(wide.at(6).opacities, g.at(6).opacities) and torch.equal(g.at(6).scales, g.scales)
    assert torch.equal(replace(wide, keyframe_support=0.0).at(6).scales, g.scales)  # no fade: no back layer
    assert wide.select(torch.tensor([True, False, True])).to(dtype=torch.float64).back_scale == 3.0
    assert DeformableGaussians.concat([wide, wide]).back_scale == 3.0
    with pytest.raises(ValueError, match="drawn differently"):
        DeformableGaussians.concat([g, wide])
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="back_scale"):
            replace(g, back_scale=bad)


def test_load_errors_are_clear(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(GaussiansFileError, match="no such file"):
        DeformableGaussians.load(tmp_path / "absent.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(GaussiansFileError, match="not a readable safetensors file"):
        DeformableGaussians.load(corrupt)
    g, _ = constant_velocity()
    partial = tmp_path / "partial.safetensors"
    save_file({"means": g.means, "quats": g.quats}, str(partial))
    with pytest.raises(GaussiansFileError, match=r"missing tensors \['scales'"):
        DeformableGaussians.load(partial)
    # truncating a valid file must also be reported, not crash
    good = g.save(tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(GaussiansFileError):
        DeformableGaussians.load(truncated)


def test_static_set_does_not_move_and_repr_is_short():
    base = make_static(3)
    stamps = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
    still = DeformableGaussians.static(base, stamps)
    torch.testing.assert_close(still.positions(1.7), base.means)
    torch.testing.assert_close(still.velocities(2), torch.zeros(3, 3, dtype=DT))
    assert repr(still) == "DeformableGaussians(N=3, T=3, span=1.000 s, dtype=torch.float64, device=cpu)"
    assert repr(base) == "Gaussians(N=3, dtype=torch.float64, device=cpu)"
