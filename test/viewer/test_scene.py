"""The viewer's scene, without a browser: the time slider's positions against DeformableGaussians at the
same instant (through the real viser app), velocity-built windows, covariances, track colours, and
every source the CLI accepts, including bad ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslrm_ros.convert.tracks import speed_colormap, tracks_to_strips
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.ply import write_ply
from dgslrm_ros.viewer import scene as sc
from dgslrm_ros.viewer.sources import load_source



@pytest.fixture
def app():
    from dgslrm_ros.viewer.app import ViewerApp, start_server

    server, url = start_server("127.0.0.1", 0)
    try:
        yield ViewerApp(server)
    finally:
        server.stop()


def test_time_slider_moves_splats_to_the_deformable_positions_at_that_instant(app, synthetic_window):
    window = sc.window_from_deformable(synthetic_window, "synthetic")
    app.set_windows([window])
    assert app.time_slider.value == pytest.approx(window.span)  # opens at the newest frame
    start = float(synthetic_window.timestamps[0])
    for seconds in (0.0, 0.1, 0.137, 0.25, 0.4):  # on frames and between them (0.1 s apart)
        app.time_slider.value = seconds
        frame = seconds / 0.1  # the synthetic window's frames are 0.1 s apart
        expected = synthetic_window.positions(frame).numpy()
        assert np.allclose(app._splats.centers, expected, atol=1e-5), seconds
        assert np.allclose(sc.positions_at(window, start + seconds), expected, atol=1e-5)
    moved = synthetic_window.positions(4.0) - synthetic_window.positions(0.0)
    assert float(moved[:, 0].max()) > 0.29  # the check above ran on a window that moves


def test_keyframes_fade_in_and_out_with_the_time_slider_as_the_renderer_draws_them(app, synthetic_window):
    """With a keyframe_support the splats at an instant are DeformableGaussians.at(instant): the same set and
    opacities the renderer and the `gaussians` topic use (the red cluster is keyframe 0, green keyframe 4)."""
    from dataclasses import replace

    n = len(synthetic_window)
    g = replace(synthetic_window, keyframe_index=torch.tensor([0] * (n // 2) + [4] * (n // 2)), keyframe_support=1.0)
    window = sc.window_from_deformable(g, "fading")
    app.set_windows([window])
    for seconds, frame in ((0.0, 0), (0.1, 1), (0.25, 2.5), (0.4, 4)):
        app.time_slider.value = seconds
        drawn = g.at(frame)
        assert len(app._splats.centers) == len(drawn), seconds
        assert np.allclose(app._splats.centers, drawn.means.numpy(), atol=1e-5)
        np.testing.assert_allclose(sc.opacities_at(window, 100.0 + seconds)[g.instant_weights(frame) > 0],
                                   drawn.opacities.numpy(), atol=1e-6)
    assert len(g.at(0)) == n // 2 and len(g.at(2.5)) == n  # a keyframe alone at its instant, both between


def test_serves_on_localhost_only_by_default():
    import argparse
    import inspect

    from dgslrm_ros.cli import view
    from dgslrm_ros.viewer.app import start_server

    parser = argparse.ArgumentParser()
    view.add_arguments(parser)
    assert parser.parse_args(["x.ply"]).host == "127.0.0.1"
    assert inspect.signature(start_server).parameters["host"].default == "127.0.0.1"
    server, url = start_server(port=0)
    try:
        assert server.get_host() == "127.0.0.1" and url.startswith("http://localhost:")
    finally:
        server.stop()


def test_opacity_threshold_and_splat_size_reach_the_splat_node(app, synthetic_window):
    opacities = torch.linspace(0.05, 0.95, len(synthetic_window))
    g = DeformableGaussians(**{**{f: getattr(synthetic_window, f) for f in (
        "means", "quats", "scales", "colors", "offsets", "timestamps", "keyframe_index")}, "opacities": opacities})
    app.set_windows([sc.window_from_deformable(g, "w")])
    app.min_opacity.value = 0.5
    kept = int((opacities >= 0.5).sum())
    assert len(app._splats.centers) == kept < len(g)
    assert f"{kept:,} of {len(g):,} shown" in app.figures.content
    before = np.linalg.eigvalsh(app._splats.covariances.astype(np.float64))
    app.splat_size.value = 2.0
    after = np.linalg.eigvalsh(app._splats.covariances.astype(np.float64))
    assert np.allclose(after, 4.0 * before, rtol=0.02, atol=1e-6)  # std devs doubled: variances x4


def test_covariances_have_the_scales_squared_as_eigenvalues(synthetic_window):
    cov = sc.covariances(synthetic_window.quats.numpy(), synthetic_window.scales.numpy())
    eig = np.linalg.eigvalsh(cov.astype(np.float64))
    assert np.allclose(eig, np.sort(synthetic_window.scales.numpy().astype(np.float64) ** 2, axis=1), rtol=1e-4)
    assert np.allclose(cov, cov.transpose(0, 2, 1))


def test_window_from_cloud_moves_linearly_with_the_published_velocity():
    rng = np.random.default_rng(1)
    n = 50
    means, velocities = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    frames = np.array([10.0, 10.1, 10.2, 10.3])
    window = sc.window_from_cloud(means, np.tile([1.0, 0, 0, 0], (n, 1)), np.full((n, 3), 0.1), np.full(n, 0.5),
                                  rng.random((n, 3)), velocities, stamp=10.3, label="cloud", timestamps=frames)
    assert window.motion == sc.MOTION_VELOCITY
    for t in (10.0, 10.15, 10.3):
        assert np.allclose(sc.positions_at(window, t), means + velocities * (t - 10.3), atol=1e-5)
    with pytest.raises(sc.ViewerError, match="not one of the window's frames"):
        sc.window_from_cloud(means, np.tile([1.0, 0, 0, 0], (n, 1)), np.full((n, 3), 0.1), np.full(n, 0.5),
                             rng.random((n, 3)), velocities, stamp=11.0, label="cloud", timestamps=frames)


def test_track_segments_are_coloured_like_the_markers():
    stamps = np.array([5.0, 5.1, 5.2])
    slow = [[0, 0, 0], [0.01, 0, 0], [0.02, 0, 0]]  # 0.1 m/s
    fast = [[0, 1, 0], [0.1, 1, 0], [0.2, 1, 0]]  # 1 m/s
    tracks = sc.Tracks(points=np.array([slow, fast], np.float32), timestamps=stamps,
                       track_ids=np.array([7, 9], np.uint32), visible=np.ones((2, 3), np.float32))
    points, colors = sc.track_segments(tracks)
    assert points.shape == (4, 2, 3) and colors.shape == (4, 2, 3)
    strips = tracks_to_strips(tracks.points, stamps - stamps[0], tracks.track_ids, tracks.visible)
    assert np.allclose(colors[2:, 1], strips[1].colors[1:, :3])  # the marker scheme, vertex for vertex
    assert np.allclose(colors[2, 1], speed_colormap(np.float32(1.0)))  # fastest: red
    assert np.allclose(colors[0, 1], speed_colormap(np.float32(0.1)))
    heads, rows = sc.track_heads(tracks, 5.05)
    assert np.allclose(heads, [[0.005, 0, 0], [0.05, 1, 0]], atol=1e-6) and rows.tolist() == [0, 1]


def test_sources_window_file_folder_and_ply(tmp_path, synthetic_window):
    path = synthetic_window.save(tmp_path / "windows" / "window_0000.safetensors")
    synthetic_window.save(tmp_path / "windows" / "window_0001.safetensors")
    [window] = load_source(path)
    assert len(window) == len(synthetic_window) and window.motion == sc.MOTION_OFFSETS
    assert len(load_source(tmp_path / "windows")) == 2
    ply = write_ply(tmp_path / "g.ply", synthetic_window.at(2))
    [static] = load_source(ply)
    assert static.motion == sc.MOTION_STATIC and np.allclose(static.means, synthetic_window.positions(2), atol=1e-5)


def test_bad_sources_get_errors_naming_the_problem(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(sc.ViewerError, match="junk.safetensors.*not a readable safetensors"):
        load_source(tmp_path / "junk.safetensors")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(sc.ViewerError, match=r"unknown file type '\.txt'"):
        load_source(tmp_path / "notes.txt")
    with pytest.raises(sc.ViewerError, match="no such file"):
        load_source(tmp_path / "missing.ply")
    (tmp_path / "bad.ply").write_text("ply\nformat ascii 1.0\nend_header\n")
    with pytest.raises(sc.ViewerError, match="bad.ply: not a readable 3DGS PLY"):
        load_source(tmp_path / "bad.ply")
    (tmp_path / "empty").mkdir()
    with pytest.raises(sc.ViewerError, match="a folder with none of"):
        load_source(tmp_path / "empty")
    from dgslrm_ros.bags.writer import BagWriter

    with BagWriter(tmp_path / "inputs_only") as writer:
        writer.write_camera_info("camera_info", 1, np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]]), 64, 48)
    with pytest.raises(sc.ViewerError, match=r"none of the topics.*gaussians.*replay BAG --out DIR --save-windows"):
        load_source(tmp_path / "inputs_only")


def _write_bag(path, synthetic_window):
    """A bag as the demo records it: inputs and the node's outputs on the contract's topics, for the
    window's frames; returns the tracks written."""
    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.convert.pointcloud import pack_gaussians, pack_trajectories

    stamps_ns = [int(round(float(s) * 1e9)) for s in synthetic_window.timestamps]
    newest = len(stamps_ns) - 1
    at = synthetic_window.at(newest)
    velocities = synthetic_window.velocities(newest)
    K = np.array([[40.0, 0, 31.5], [0, 40.0, 23.5], [0, 0, 1]])
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 200
    tracks = synthetic_window.offsets[:3].numpy() + synthetic_window.means[:3, None].numpy()
    t_rel = (synthetic_window.timestamps - synthetic_window.timestamps[-1]).numpy()
    with BagWriter(path) as writer:
        writer.write_camera_info("camera_info", stamps_ns[0], K, 64, 48)
        for n, stamp in enumerate(stamps_ns):
            pose = np.eye(4)
            pose[:3, 3] = [0.1 * n, -3.0, 0.0]
            writer.write_pose("camera_pose", stamp, pose)
            writer.write_image("image", stamp, rgb)
        writer.write_pointcloud("gaussians", stamps_ns[-1], pack_gaussians(
            at.means.numpy(), at.colors.numpy(), at.opacities.numpy(), at.scales.numpy(), at.quats.numpy(),
            velocities.numpy()))
        writer.write_pointcloud("trajectories", stamps_ns[-1],
                                pack_trajectories(tracks, t_rel, np.array([1, 2, 3]), np.ones((3, len(stamps_ns)))))
    return tracks


def test_bag_of_node_outputs_and_inputs_becomes_windows_with_tracks_and_cameras(tmp_path, synthetic_window):
    tracks = _write_bag(tmp_path / "bag", synthetic_window)
    stamps_ns = synthetic_window.timestamps.numpy()
    at = synthetic_window.at(synthetic_window.num_frames - 1)
    [window] = load_source(tmp_path / "bag")
    assert window.motion == sc.MOTION_VELOCITY and len(window) == len(synthetic_window)
    assert np.allclose(window.timestamps, synthetic_window.timestamps.numpy(), atol=1e-6)
    assert np.allclose(sc.positions_at(window, window.timestamps[-1]), at.means.numpy(), atol=1e-5)
    assert window.tracks is not None and len(window.tracks) == 3
    assert np.allclose(window.tracks.points, tracks, atol=1e-6)
    assert len(window.cameras) == len(stamps_ns)
    assert window.cameras[2].world_T_cam[0, 3] == pytest.approx(0.2)
    assert window.cameras[0].image is not None and window.cameras[0].image[0, 0, 0] == 200
    assert window.cameras[0].K[0, 2] == pytest.approx(32.0)  # CameraInfo's OpenCV K -> the library's
    [same] = load_source(tmp_path)  # a demo output folder: bag/ inside
    assert np.array_equal(same.means, window.means) and len(same.cameras) == len(window.cameras)


def test_demo_summary_says_how_to_view_its_output(tmp_path, capsys):
    from dgslrm_ros.cli.demo import _print_summary

    nan = float("nan")
    metrics = {"topics_recorded": [], "windows_received": 1, "windows_expected": 1, "latency_s_mean": nan,
               "psnr_rendered_vs_input_db": nan, "psnr_novel_view_db": nan, "track_epe_m": nan,
               "track_epe_still_m": nan, "moving_tracks": 0, "moving_flow_epe_m": nan,
               "moving_flow_epe_still_m": nan, "weights_untrained": False, "weights": "w"}
    _print_summary(tmp_path / "demo", metrics)
    assert f"dgslrm view {tmp_path / 'demo'}" in capsys.readouterr().out  # the folder load_source reads (above)


def test_live_windows_follow_the_newest_unless_told_not_to(app, synthetic_window):
    from dgslrm_ros.viewer.app import MAX_LIVE_WINDOWS

    windows = [sc.window_from_deformable(synthetic_window, f"w{k}") for k in range(MAX_LIVE_WINDOWS + 3)]
    app.follow.value = True
    for window in windows[:3]:
        app.add_window(window)
    assert app.window.label == "w2" and app.window_slider.max == 2
    app.follow.value = False
    app.window_slider.value = 1  # the user goes back one window
    assert app.window.label == "w1"
    for window in windows[3:]:
        app.add_window(window)
    assert len(app.windows) == MAX_LIVE_WINDOWS  # bounded memory: the oldest are dropped
    # w1 was dropped when w21 came: the view moved to w21 then, and stays there (follow is off)
    assert app.window.label == f"w{MAX_LIVE_WINDOWS + 1}"
    assert app.windows[int(app.window_slider.value)] is app.window


def test_replay_folder_takes_exact_offsets_from_windows_and_cameras_from_the_input_bag(tmp_path, synthetic_window):
    """replay's layout: output_bag/, windows/window_<n>.safetensors (times relative to the first frame),
    metrics.json naming the input bag."""
    import json
    from dataclasses import replace

    _write_bag(tmp_path / "input_bag", synthetic_window)
    _write_bag(tmp_path / "replay" / "output_bag", synthetic_window)
    relative = replace(synthetic_window, timestamps=synthetic_window.timestamps - synthetic_window.timestamps[0])
    relative.save(tmp_path / "replay" / "windows" / "window_0000.safetensors")
    (tmp_path / "replay" / "metrics.json").write_text(json.dumps(
        {"bag": str(tmp_path / "input_bag"), "input_psnr": 21.5, "seconds_per_window": 0.4}))
    [window] = load_source(tmp_path / "replay")
    assert window.motion == sc.MOTION_OFFSETS and window.figures["offsets from"] == "window_0000.safetensors"
    assert np.allclose(window.timestamps, synthetic_window.timestamps.numpy())  # absolute, from the bag
    middle = float(synthetic_window.timestamps[1])
    exact = synthetic_window.positions(1).numpy()
    assert np.allclose(sc.positions_at(window, middle), exact, atol=1e-5)  # not the velocity's straight line
    assert len(window.cameras) == synthetic_window.num_frames and len(window.tracks) == 3
    assert window.figures["PSNR vs input, mean of the run"] == "21.50 dB"


def test_overlapping_windows_each_get_every_camera(tmp_path):
    """Windows share frames and their times come from float32 offsets to the stamp, so the same frame is
    a few hundred ns apart in two windows: each must still find its camera (once only one did)."""
    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.convert.pointcloud import pack_gaussians, pack_trajectories

    frames_ns = [1_795_623_046_312_345_678 + k * 99_876_543 for k in range(12)]  # wall-clock-like, ~10 fps
    n = 10
    cloud = pack_gaussians(np.zeros((n, 3)), np.full((n, 3), 0.5), np.full(n, 0.9), np.full((n, 3), 0.1),
                           np.tile([1.0, 0, 0, 0], (n, 1)), np.zeros((n, 3)))
    with BagWriter(tmp_path / "bag") as writer:
        writer.write_camera_info("camera_info", frames_ns[0], np.array([[40.0, 0, 31.5], [0, 40, 23.5], [0, 0, 1]]),
                                 64, 48)
        for stamp in frames_ns:
            writer.write_pose("camera_pose", stamp, np.eye(4))
            writer.write_image("image", stamp, np.zeros((48, 64, 3), np.uint8))
        for last in (7, 9, 11):  # windows of 8 frames, stride 2
            window = frames_ns[last - 7:last + 1]
            t = (np.array(window) - window[-1]) / 1e9
            writer.write_pointcloud("gaussians", window[-1], cloud)
            writer.write_pointcloud("trajectories", window[-1], pack_trajectories(
                np.zeros((1, 8, 3)), t, np.array([0]), np.ones((1, 8))))
    windows = load_source(tmp_path / "bag")
    assert [len(w.cameras) for w in windows] == [8, 8, 8]
    assert all(c.image is not None for w in windows for c in w.cameras)


def test_switching_between_windows_of_different_sizes_redraws_everything(app, synthetic_window):
    small = synthetic_window.select(torch.arange(100))
    windows = [sc.window_from_deformable(small, "small"), sc.window_from_deformable(synthetic_window, "big")]
    app.set_windows(windows)
    assert len(app._splats.centers) == len(synthetic_window)
    app.window_slider.value = 0
    assert app.window.label == "small" and len(app._splats.centers) == 100
    assert np.allclose(app._splats.centers, small.positions(small.num_frames - 1).numpy(), atol=1e-5)
    assert "**small**" in app.figures.content


def test_keyframes_only_the_floor_keeps_are_drawn_as_wide_as_the_core_draws_them(app, synthetic_window):
    """With a back_scale the one-set drawing widens the keyframes outside the hat (the back layer's role);
    the viewer's splats at an instant have the covariances of DeformableGaussians.at(instant)."""
    from dataclasses import replace

    n = len(synthetic_window)
    g = replace(synthetic_window, keyframe_index=torch.tensor([0] * (n // 2) + [4] * (n // 2)), keyframe_support=1.0,
                keyframe_floor=0.3, back_scale=3.0)
    window = sc.window_from_deformable(g, "wide back")
    app.set_windows([window])
    for seconds, frame in ((0.0, 0), (0.4, 4)):
        app.time_slider.value = seconds
        drawn = g.at(frame)
        assert len(app._splats.centers) == n
        np.testing.assert_allclose(app._splats.covariances, sc.covariances(drawn.quats.numpy(), drawn.scales.numpy()),
                                   rtol=0.02, atol=2e-5)  # viser keeps them at half precision
    behind = slice(n // 2, None)  # keyframe 4 at frame 0: kept by the floor only, three times as wide
    assert np.allclose(sc.scales_at(window, 100.0)[behind], 3.0 * g.scales[behind].numpy())
    assert np.allclose(sc.scales_at(window, 100.0)[: n // 2], g.scales[: n // 2].numpy())
