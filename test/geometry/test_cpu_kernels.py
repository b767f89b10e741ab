"""The C kernels of the geometry layer (geometry/cpu_kernels.py) give their torch formulations' results:
the plane sweep's costs, cost-curve medians and depths, the static fit's sums and fit, the chained 2D tracks
and their lifting (the lifting's agreement with its reference: test_lifting_reference.py)."""
from __future__ import annotations

import pytest
import torch

from dgslrm_ros.geometry import cpu_kernels, flow_tracks, lifting
from dgslrm_ros.geometry import plane_sweep as sweep_module
from dgslrm_ros.geometry.benchmark import benchmark_window
from dgslrm_ros.geometry.flow_tracks import FlowConfig, Tracks2D, chain_tracks
from dgslrm_ros.geometry.plane_sweep import SweepConfig, plane_sweep

pytestmark = pytest.mark.skipif(cpu_kernels.KERNELS is None, reason="the C kernels were not built (no C compiler, "
                                "or DGSLRM_NO_GEOMETRY_KERNELS set); the torch paths are what runs then")


def _reference_inputs(window: dict, reference: int, sources: list[int], config: SweepConfig):
    """The arguments plane_sweep hands to _aggregated_cost for one reference frame."""
    frames, K, world_T_cam = window["frames"], window["K"], window["world_T_cam"]
    height, width = frames.shape[-2:]
    directions, offsets = sweep_module._source_homographies(sweep_module._homogeneous_pixels(height, width), K,
                                                            world_T_cam, torch.linalg.inv(world_T_cam), reference,
                                                            sources)
    depths = 1.0 / config.inverse_depths()
    count = sweep_module._in_image_count(height, width, config.box)
    return frames[reference], frames[sources], directions, offsets, depths, count


def _strong_parallax_window(size: int = 48) -> dict:
    """The benchmark window with a camera that also moves forward and turns: points leave the source
    images and the nearest planes fall behind some cameras, so every masking branch is exercised."""
    window = benchmark_window(size)
    poses = window["world_T_cam"].clone()
    t = poses.shape[0]
    poses[:, 2, 3] = torch.linspace(0.0, 1.5, t)
    angle = torch.linspace(-0.4, 0.4, t)
    poses[:, 0, 0], poses[:, 0, 2], poses[:, 2, 0], poses[:, 2, 2] = angle.cos(), angle.sin(), -angle.sin(), angle.cos()
    window["world_T_cam"] = poses
    return window


@pytest.mark.parametrize("box,best_fraction,num_sources", [(3, 0.5, 6), (1, 1.0, 1), (5, 0.3, 9)])
def test_kernel_costs_match_the_torch_costs(box: int, best_fraction: float, num_sources: int) -> None:
    window = _strong_parallax_window()
    config = SweepConfig(box=box, best_fraction=best_fraction, max_sources=num_sources)
    sources = sweep_module.select_sources(24, 7, num_sources)
    inputs = _reference_inputs(window, 7, sources, config)
    keep = config.sources_kept(len(sources))
    torch_cost = sweep_module._aggregated_cost_torch(*inputs, keep, box)
    kernel_cost = sweep_module._aggregated_cost_kernel(*inputs, keep, box)
    assert kernel_cost.shape == torch_cost.shape == (config.num_planes, 48 * 48)
    unseen = torch_cost == 1.0  # no source sees the point at that plane
    assert 0 < int(unseen.sum()) < unseen.numel() or num_sources == 1  # the masking was exercised
    assert torch.equal(kernel_cost == 1.0, unseen)
    # The same arithmetic in the same order: at most float rounding apart (equal where the CPU has FMA).
    assert torch.allclose(kernel_cost, torch_cost, rtol=0.0, atol=1e-6)


def test_plane_sweep_depths_match_with_and_without_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    window = _strong_parallax_window(64)
    keyframes = [0, 6, 12, 18]
    with_kernel = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    monkeypatch.setattr(cpu_kernels, "KERNELS", None)
    with_torch = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes)
    same_depth = (with_kernel.depth == with_torch.depth).float().mean()
    assert same_depth >= 0.999  # a winner may flip only where two planes tie to the last bit
    assert torch.allclose(with_kernel.cost_min, with_torch.cost_min, rtol=0.0, atol=1e-6)
    assert torch.allclose(with_kernel.confidence, with_torch.confidence, rtol=0.0, atol=1e-4)


def test_kernel_splits_planes_over_threads_without_changing_them() -> None:
    window = _strong_parallax_window()
    config = SweepConfig()
    sources = sweep_module.select_sources(24, 3, config.max_sources)
    inputs = [x.contiguous().numpy() for x in _reference_inputs(window, 3, sources, config)]
    outputs = []
    for threads in (1, 3, 100):  # 100: more threads than planes, capped
        out = torch.empty(config.num_planes, 48 * 48)
        cpu_kernels.KERNELS.aggregated_cost(*inputs, len(sources), config.num_planes, 48, 48, config.box, 3,
                                             out.numpy(), threads)
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_kernel_refuses_buffers_of_the_wrong_size() -> None:
    window = _strong_parallax_window()
    config = SweepConfig()
    sources = sweep_module.select_sources(24, 3, config.max_sources)
    inputs = [x.contiguous().numpy() for x in _reference_inputs(window, 3, sources, config)]
    too_small = torch.empty(config.num_planes - 1, 48 * 48).numpy()
    with pytest.raises(ValueError, match="out must hold"):
        cpu_kernels.KERNELS.aggregated_cost(*inputs, len(sources), config.num_planes, 48, 48, config.box, 3,
                                             too_small, 1)
    with pytest.raises(ValueError, match="bad sizes"):
        cpu_kernels.KERNELS.aggregated_cost(*inputs, len(sources), config.num_planes, 48, 48, 2, 3,
                                             torch.empty(config.num_planes, 48 * 48).numpy(), 1)
    doubles = [x.astype("float64") for x in inputs]
    with pytest.raises(ValueError, match="float32"):
        cpu_kernels.KERNELS.aggregated_cost(*doubles, len(sources), config.num_planes, 48, 48, config.box, 3,
                                             torch.empty(config.num_planes, 48 * 48).numpy(), 1)


@pytest.mark.parametrize("planes", [1, 2, 47, 48])
def test_plane_median_kernel_gives_torchs_median(planes: int) -> None:
    generator = torch.Generator().manual_seed(planes)
    costs = torch.rand(planes, 20, 30, generator=generator)
    costs[:, 0, :5] = 0.5  # a flat curve: every plane ties
    costs[: (planes + 1) // 2, 1, :5] = 1.0  # the worst cost (no source sees) on half the curve
    costs[planes // 2, 2, 0] = float("inf")
    costs[0, 3, 3] = float("nan")
    kernel = sweep_module._plane_median(costs)
    expected = costs.median(dim=0).values
    assert kernel.shape == (20, 30) and bool(kernel[3, 3].isnan()) and bool(expected[3, 3].isnan())
    assert torch.equal(kernel.nan_to_num(-1.0), expected.nan_to_num(-1.0))


@pytest.mark.parametrize("planes, k", [(48, 1), (48, 30), (48, 44), (48, 48), (7, 5)])
def test_plane_order_statistic_kernel_gives_torchs_kthvalue(planes: int, k: int) -> None:
    # The sweep's distinctness with planes from the window's near reads a higher order statistic of the curve.
    costs = torch.rand(planes, 20, 30, generator=torch.Generator().manual_seed(k))
    costs[:, 0, :5] = 0.5  # ties
    costs[: planes // 2, 1, :5] = 1.0
    kernel = sweep_module._plane_order_statistic(costs, k)
    assert torch.equal(kernel, costs.kthvalue(k, dim=0).values)
    with pytest.raises(ValueError, match="bad sizes"):
        cpu_kernels.KERNELS.plane_median(costs.reshape(planes, -1).numpy(), planes, 600, torch.empty(600).numpy(), 1,
                                         planes)


def test_plane_median_kernel_splits_pixels_over_threads_and_refuses_bad_buffers() -> None:
    costs = torch.rand(48, 17 * 13, generator=torch.Generator().manual_seed(1)).numpy()
    outputs = []
    for threads in (1, 3, 1000):  # 1000: more threads than pixels, capped
        out = torch.empty(17 * 13)
        cpu_kernels.KERNELS.plane_median(costs, 48, 17 * 13, out.numpy(), threads)
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    with pytest.raises(ValueError, match="out must hold"):
        cpu_kernels.KERNELS.plane_median(costs, 48, 17 * 13, torch.empty(17 * 13 - 1).numpy(), 1)
    with pytest.raises(ValueError, match="bad sizes"):
        cpu_kernels.KERNELS.plane_median(costs, 0, 17 * 13, torch.empty(17 * 13).numpy(), 1)


def _random_fit_inputs(seed: int = 0):
    """Static-fit inputs that reach every branch: points behind some cameras, a denominator near zero,
    lost tracks (NaN positions), residuals above the cap."""
    generator = torch.Generator().manual_seed(seed)
    d, kf, t, height, width = 9, 3, 7, 20, 30
    hypotheses = 0.2 + 3.0 * torch.rand(d, kf, height, width, generator=generator)
    a = torch.randn(t, 3, kf, generator=generator) * 5.0
    b = torch.randn(t, 3, kf * height * width, generator=generator) * 20.0
    b[:, 2] = b[:, 2].abs() * 0.05 + 0.2 * torch.randn(t, kf * height * width, generator=generator)  # some z < 0
    a[2, 2] = 0.0
    b[2, 2, :50] = 0.0  # z exactly 0 in frame 2
    positions = torch.rand(kf, t, height, width, 2, generator=generator) * 40.0
    valid = torch.rand(kf, t, height, width, generator=generator) > 0.2
    positions[~valid] = float("nan")
    tracks = Tracks2D(positions=positions, valid=valid, error=torch.zeros(kf, t, height, width))
    return hypotheses, a, b, tracks


def test_static_fit_sums_kernel_matches_the_torch_sums() -> None:
    hypotheses, a, b, tracks = _random_fit_inputs()
    torch_sums = lifting._static_fit_sums_torch(hypotheses, a, b, tracks, 8.0)
    kernel_sums = lifting._static_fit_sums_kernel(hypotheses, a, b, tracks, 8.0)
    total, seen, spread = torch_sums
    assert 0 < int((seen == 0).sum()) and int((total / seen.clamp_min(1) >= 8.0).sum()) > 0  # branches reached
    assert 0 < int((spread == 0).sum()) < spread.numel()
    for mine, theirs in zip(kernel_sums, torch_sums):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert torch.allclose(mine.double(), theirs.double(), rtol=1e-6, atol=1e-5)
    threads = torch.get_num_threads()
    try:  # the pixels split over more threads than there are chunks: the same sums
        torch.set_num_threads(5)
        split = lifting._static_fit_sums_kernel(hypotheses, a, b, tracks, 8.0)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(x, y) for x, y in zip(split, kernel_sums))


def test_static_fit_is_the_same_with_and_without_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    window = _strong_parallax_window(48)
    keyframes = torch.tensor([0, 8, 16])
    depth = plane_sweep(window["frames"], window["K"], window["world_T_cam"], keyframes).depth
    tracks = chain_tracks(window["frames"], keyframes)
    with_kernel = lifting.static_fit(tracks, window["K"], window["world_T_cam"], keyframes, depth)
    monkeypatch.setattr(cpu_kernels, "KERNELS", None)
    with_torch = lifting.static_fit(tracks, window["K"], window["world_T_cam"], keyframes, depth)
    assert float(with_torch.residual.max()) > 0  # the tracks disagree with a still scene somewhere
    assert (with_kernel.depth == with_torch.depth).float().mean() >= 0.999  # a tie may flip a hypothesis
    assert torch.allclose(with_kernel.residual, with_torch.residual, rtol=1e-5, atol=1e-4)
    assert torch.allclose(with_kernel.parallax, with_torch.parallax, rtol=1e-5, atol=1e-4)


def _random_flows(seed: int = 0, t: int = 9, height: int = 20, width: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Consecutive-pair flows [T-1, 2, H, W] whose chains reach every branch: a drift that carries tracks off
    the image, backward flows that undo the forward ones in places and disagree elsewhere. A width and height
    that are no powers of two (the grid coordinate's division rounds) and chunks that cross keyframes."""
    generator = torch.Generator().manual_seed(seed)
    forward = 1.5 * torch.randn(t - 1, 2, height, width, generator=generator)
    forward[:, 0] += 2.0  # drift to the right: tracks leave the image
    backward = -forward + 0.3 * torch.randn(t - 1, 2, height, width, generator=generator)
    backward[:, :, : height // 3] += 3.0 * torch.randn(t - 1, 2, 1, width, generator=generator)  # occlusion-like
    return forward, backward


def test_chain_kernel_matches_the_torch_chains() -> None:
    forward, backward = _random_flows()
    keyframes = [0, 4, 8]  # the first and the last frame: chains of one direction only
    config = FlowConfig()
    theirs = flow_tracks._chain_tracks_torch(forward, backward, keyframes, 9, 20, 30, config)
    mine = flow_tracks._chain_tracks_kernel(forward, backward, keyframes, 20, 30, config)
    left = (theirs.positions[..., 0] > 30).any(1)  # [Kf, H, W] went off the image somewhere
    failed = ~theirs.valid[:, -1] & ~left  # lost for another reason (the forward-backward check)
    assert int(left.sum()) > 0 and int(failed.sum()) > 0 and int(theirs.valid[:, -1].sum()) > 0  # branches reached
    assert mine.positions.shape == theirs.positions.shape and mine.valid.dtype == torch.bool
    assert bool(mine.positions.isfinite().all()) and bool(mine.valid[[0, 1, 2], keyframes].all())
    # The same arithmetic in the same order (equal to the bit where the CPU has FMA, as this machine's).
    assert torch.allclose(mine.positions, theirs.positions, rtol=1e-6, atol=1e-5)
    assert torch.allclose(mine.error, theirs.error, rtol=1e-6, atol=1e-5)
    assert float((mine.valid == theirs.valid).float().mean()) >= 0.999  # a check may flip only on a rounding tie
    threads = torch.get_num_threads()
    try:  # the pixels split over more threads than chunks, chunk ends inside a keyframe: the same tracks
        torch.set_num_threads(7)
        split = flow_tracks._chain_tracks_kernel(forward, backward, keyframes, 20, 30, config)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(getattr(split, f), getattr(mine, f)) for f in ("positions", "valid", "error"))


def test_chain_tracks_are_the_same_with_and_without_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    window = _strong_parallax_window(48)
    keyframes = torch.tensor([0, 8, 16, 23])
    flows = flow_tracks.pairwise_flow(window["frames"])
    with_kernel = chain_tracks(window["frames"], keyframes, flows=flows)
    monkeypatch.setattr(cpu_kernels, "KERNELS", None)
    with_torch = chain_tracks(window["frames"], keyframes, flows=flows)
    assert 0 < float(with_torch.valid.float().mean()) < 1  # some tracks are lost in this window
    assert torch.allclose(with_kernel.positions, with_torch.positions, rtol=1e-6, atol=1e-5)
    assert float((with_kernel.valid == with_torch.valid).float().mean()) >= 0.999


def test_chain_kernel_refuses_bad_keyframes_and_buffers() -> None:
    forward, backward = _random_flows()
    outputs = (torch.empty(1, 9, 20, 30, 2).numpy(), torch.empty(1, 9, 20, 30, dtype=torch.bool).numpy(),
               torch.empty(1, 9, 20, 30).numpy())
    arrays = (forward.numpy(), backward.numpy())
    with pytest.raises(ValueError, match="keyframe 9 outside"):
        cpu_kernels.KERNELS.chain_tracks(*arrays, torch.tensor([9], dtype=torch.int32).numpy(), 1, 9, 20, 30, 0.75,
                                         0.1, *outputs, 1)
    with pytest.raises(ValueError, match="positions must hold"):
        cpu_kernels.KERNELS.chain_tracks(*arrays, torch.tensor([2], dtype=torch.int32).numpy(), 1, 9, 20, 30, 0.75,
                                         0.1, torch.empty(1, 8, 20, 30, 2).numpy(), *outputs[1:], 1)


def test_lift_kernel_splits_pixels_over_threads_and_refuses_bad_keyframes() -> None:
    window = _strong_parallax_window(20)
    keyframes = torch.tensor([0, 11, 23])
    tracks = chain_tracks(window["frames"], keyframes)
    anchor = torch.randn(3, 3 * 400, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    results = []
    try:  # chunks end inside a keyframe (400 pixels each), more threads than chunks
        for count in (1, 7):
            torch.set_num_threads(count)
            results.append(lifting._lift_tracks_kernel(anchor, tracks, window["K"], window["world_T_cam"], keyframes))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0], results[1]) and bool(results[0][torch.arange(3), keyframes].eq(0).all())
    assert float(results[0].abs().max()) > 0.01  # displacements away from the keyframes
    with pytest.raises(ValueError, match="keyframe 24 outside"):
        lifting._lift_tracks_kernel(anchor, tracks, window["K"], window["world_T_cam"], torch.tensor([0, 11, 24]))


def test_geometry_benchmark_says_which_code_it_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    from dgslrm_ros.geometry.benchmark import run_geometry_benchmark

    (row,) = run_geometry_benchmark(quick=True)
    assert row["kernels"] == "C" and row["sweep_ms"] > 0 and row["total_ms"] >= row["sweep_ms"] + row["fit_ms"]
    monkeypatch.setattr(cpu_kernels, "KERNELS", None)
    (row,) = run_geometry_benchmark(quick=True)
    assert row["kernels"] == "torch"
