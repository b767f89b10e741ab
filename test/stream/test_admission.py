"""The callback side of StreamingReconstructor: rate, pose sync, windows, resets, bad input, bursts."""
import numpy as np
import pytest

from dgslrm_ros.stream.pipeline import DROP_REASONS, FRAME_DROP_REASONS, IMAGE_RESET_S, MAX_WAITING_IMAGES, POSE_WAIT_S


def feed(pipeline, kit, stamps, with_pose=True):
    """Pose then image at every stamp; returns the add_image results."""
    out = []
    for t in stamps:
        if with_pose:
            pipeline.add_pose(t, kit.pose_at(t), "world")
        out.append(pipeline.add_image(t, kit.image()))
    return out


def drain(pipeline):
    windows = []
    while (w := pipeline.pop_window()) is not None:
        windows.append(w)
    return windows


def test_admission_rate_and_window_cadence(make_pipeline, kit):
    pipeline = make_pipeline(max_pending_windows=64)
    stamps = 100.0 + np.arange(90) / 30.0  # 3 s of a 30 Hz camera, frame_rate 10
    results = feed(pipeline, kit, stamps)
    d = pipeline.diagnostics()
    assert results.count(None) == 30 and results.count("rate") == 60
    assert d["dropped_rate"] == 60 and d["frames_admitted"] == 30
    windows = drain(pipeline)
    # 8-frame windows every 4 admitted frames: after frames 8, 12, ..., 28 -> 6 windows
    assert len(windows) == 6
    assert [w.index for w in windows] == list(range(6))
    for a, b in zip(windows, windows[1:]):
        assert b.frames[0] is a.frames[4]  # stride 4: 4 shared frames, the same objects
    first = windows[0].stamps
    assert len(first) == 8 and np.allclose(np.diff(first), 0.1)
    assert windows[-1].stamp == windows[-1].frames[-1].stamp


def test_poses_faster_than_images_are_interpolated(make_pipeline, kit):
    pipeline = make_pipeline()
    for t in 10.0 + np.arange(0, 1.0, 0.01):  # 100 Hz poses
        pipeline.add_pose(t, kit.pose_at(t), "world")
    for t in 10.005 + np.arange(8) * 0.1:  # images between pose samples
        assert pipeline.add_image(t, kit.image()) is None
    (window,) = drain(pipeline)
    for frame in window.frames:
        np.testing.assert_allclose(frame.world_T_cam, kit.pose_at(frame.stamp), atol=1e-9)


def test_late_pose_is_waited_for_then_missing_pose_dropped(make_pipeline, kit):
    pipeline = make_pipeline()
    assert pipeline.add_image(5.0, kit.image()) is None  # held: its pose has not come yet
    assert pipeline.diagnostics()["waiting_for_pose"] == 1
    pipeline.add_pose(5.01, kit.pose_at(5.01), "world")  # late, within sync_tolerance
    d = pipeline.diagnostics()
    assert d["waiting_for_pose"] == 0 and d["frames_admitted"] == 1
    # now an image whose pose never comes: held for POSE_WAIT_S of stream time, then dropped
    assert pipeline.add_image(5.2, kit.image()) is None
    t = 5.3
    while t < 5.2 + POSE_WAIT_S + 0.2:
        pipeline.add_image(t, kit.image())
        t += 0.1
    d = pipeline.diagnostics()
    assert d["dropped_no_pose"] >= 1 and d["frames_admitted"] == 1
    assert d["waiting_for_pose"] <= int(POSE_WAIT_S / 0.1) + 1
    # a pose far from the image (> sync_tolerance on both sides) -> no_pose at once
    pipeline.add_pose(7.0, kit.pose_at(7.0), "world")
    pipeline.add_pose(7.5, kit.pose_at(7.5), "world")
    assert pipeline.add_image(7.25, kit.image()) == "no_pose"


def test_stamp_backwards_resets_cleanly(make_pipeline, kit):
    pipeline = make_pipeline(max_pending_windows=64)
    feed(pipeline, kit, 50.0 + np.arange(10) * 0.1)  # 10 frames: one window + 2 frames
    assert pipeline.add_image(40.0, kit.image()) == "stamp_backwards"
    d = pipeline.diagnostics()
    assert d["dropped_stamp_backwards"] == 1 and d["buffered_frames"] == 0 and d["sequence_restarts"] == 1
    windows = drain(pipeline)
    # the leftover frames were not lost: a tail window covers them
    assert [w.tail for w in windows] == [False, True] and windows[1].stamp == pytest.approx(windows[0].stamp + 0.2)
    # the loop plays again: new windows in a new sequence, matched to the new poses
    feed(pipeline, kit, 40.1 + np.arange(8) * 0.1)
    (again,) = drain(pipeline)
    assert again.sequence == windows[0].sequence + 1 and again.index == 0
    np.testing.assert_allclose(again.frames[0].world_T_cam, kit.pose_at(40.1))


def test_out_of_order_image_is_dropped_alone_and_the_window_completes(make_pipeline, kit):
    logs = []
    pipeline = make_pipeline(max_pending_windows=64, logs=logs)
    stamps = 60.0 + np.arange(12) * 0.1
    feed(pipeline, kit, stamps[:5])  # frames 0..4 buffered, no window yet
    late = stamps[4] - 0.03  # 30 ms older than the last image: transport jitter, not a bag loop
    pipeline.add_pose(late, kit.pose_at(late), "world")
    assert pipeline.add_image(late, kit.image()) == "out_of_order"
    d = pipeline.diagnostics()
    assert d["dropped_out_of_order"] == 1 and d["dropped_stamp_backwards"] == 0
    assert d["sequence_restarts"] == 0 and d["buffered_frames"] == 5 and d["frames_admitted"] == 5
    assert d["dropped_frames_total"] == 1  # an out-of-order image is a lost frame
    assert any("out_of_order" in m and "0.030 s older" in m for _, m in logs)
    # the window in progress is not thrown away: it completes with the frames on both sides
    assert feed(pipeline, kit, stamps[5:]) == [None] * 7
    windows = drain(pipeline)
    assert [w.sequence for w in windows] == [0, 0] and [w.index for w in windows] == [0, 1]
    np.testing.assert_allclose(windows[0].stamps, stamps[:8])
    assert late not in windows[0].stamps
    assert windows[1].frames[0] is windows[0].frames[4]  # chained windows: track ids carry over


def test_image_reset_threshold_is_the_boundary(make_pipeline, kit):
    pipeline = make_pipeline(max_pending_windows=64)
    stamps = 70.0 + np.arange(3) * 0.1
    feed(pipeline, kit, stamps)
    last = float(stamps[-1])
    just_under = last - IMAGE_RESET_S + 0.05
    assert pipeline.add_image(just_under, kit.image()) == "out_of_order"
    assert pipeline.diagnostics()["sequence_restarts"] == 0
    assert pipeline.add_image(last - IMAGE_RESET_S, kit.image()) == "stamp_backwards"
    assert pipeline.diagnostics()["sequence_restarts"] == 1


def test_every_drop_reason_is_reported(make_pipeline):
    assert "out_of_order" in DROP_REASONS and "out_of_order" in FRAME_DROP_REASONS
    assert set(FRAME_DROP_REASONS) <= set(DROP_REASONS)
    d = make_pipeline().diagnostics()
    assert all(d[f"dropped_{reason}"] == 0 for reason in DROP_REASONS)  # present before anything happens


def test_forward_jump_starts_new_sequence(make_pipeline, kit):
    pipeline = make_pipeline(max_pending_windows=64)
    feed(pipeline, kit, 1.0 + np.arange(5) * 0.1)  # 5 frames, never a full window
    feed(pipeline, kit, 20.0 + np.arange(8) * 0.1)  # 19 s later
    d = pipeline.diagnostics()
    assert d["sequence_restarts"] == 1 and d["dropped_short_sequence"] == 5
    (window,) = drain(pipeline)
    assert window.frames[0].stamp == 20.0  # no window mixes both sides of the gap


def test_burst_far_above_frame_rate_is_bounded(make_pipeline, kit):
    pipeline = make_pipeline()
    shared = kit.image()
    for i in range(3000):  # 3 s at 1 kHz, 10x the pose rate
        t = 200.0 + i * 0.001
        if i % 10 == 0:
            pipeline.add_pose(t, kit.pose_at(t), "world")
        pipeline.add_image(t, shared)
    d = pipeline.diagnostics()
    assert d["frames_received"] == 3000
    assert d["dropped_rate"] >= 2960 and d["frames_admitted"] <= 31
    assert d["buffered_frames"] <= 8 and d["pending_windows"] <= 2 and d["waiting_for_pose"] <= MAX_WAITING_IMAGES
    assert d["dropped_window_overflow"] >= 1  # nobody pops: windows beyond max_pending_windows dropped
    assert d["windows_emitted"] - d["dropped_window_overflow"] == d["pending_windows"]


def test_bad_input_is_counted_and_survived(make_pipeline, kit):
    logs = []
    pipeline = make_pipeline(camera_info=False, logs=logs)
    assert pipeline.add_image(1.0, kit.image()) == "no_camera_info"
    pipeline.add_camera_info(np.zeros((3, 3)), np.zeros(5), "plumb_bob", kit.W, kit.H)  # uncalibrated
    pipeline.add_camera_info(kit.K_INFO, [0.1, 0, 0, 0], "equidistant", kit.W, kit.H)  # unsupported (log throttled)
    assert pipeline.add_image(1.05, kit.image()) == "no_camera_info"
    pipeline.add_camera_info(kit.K_INFO, np.zeros(5), "plumb_bob", kit.W, kit.H)
    nan_pose = kit.pose_at(1.1)
    nan_pose[0, 3] = np.nan
    pipeline.add_pose(1.1, nan_pose, "world")
    skewed = kit.pose_at(1.1)
    skewed[:3, :3] *= 2.0
    pipeline.add_pose(1.1, skewed, "world")
    pipeline.add_pose(1.1, kit.pose_at(1.1), "odom")  # wrong frame
    assert pipeline.add_image(1.1, kit.image().astype(np.float32)) == "bad_image"
    assert pipeline.add_image(1.11, kit.image()[:, :, :2].copy()) == "bad_image"
    assert pipeline.add_image(1.12, np.zeros((10, 10, 3), np.uint8)) == "bad_image"  # size != camera_info
    assert pipeline.add_image(float("nan"), kit.image()) == "bad_stamp"
    assert pipeline.add_image(None, kit.image()) == "bad_stamp"
    assert pipeline.add_image("1.2", kit.image()) == "bad_stamp"
    d = pipeline.diagnostics()
    assert d["dropped_bad_camera_info"] == 2 and d["dropped_no_camera_info"] == 2
    assert d["dropped_bad_pose"] == 2 and d["dropped_pose_frame_mismatch"] == 1
    assert d["dropped_bad_image"] == 3 and d["dropped_bad_stamp"] == 3
    assert any("uncalibrated" in m for _, m in logs) and any("odom" in m for _, m in logs)
    # the log says what happens to the images and where to look (they are dropped, not kept waiting)
    assert any("no_camera_info" in m and "dropped until" in m and "camera_info topic" in m for _, m in logs)
    # and the pipeline still works
    results = feed(pipeline, kit, np.float32(2.0) + np.arange(8, dtype=np.float32) * np.float32(0.1))
    assert results == [None] * 8 and len(drain(pipeline)) == 1  # numpy float32 stamps are fine
    assert pipeline.add_image(float(np.float32(2.0) + np.float32(0.7)), kit.image()) == "duplicate_stamp"


def test_pose_stream_restart_discards_old_poses(make_pipeline, kit):
    pipeline = make_pipeline()
    pipeline.add_pose(100.0, kit.pose_at(100.0), "world")
    pipeline.add_pose(10.0, kit.pose_at(10.0), "world")  # 90 s back: the pose source restarted
    assert pipeline.diagnostics()["dropped_pose_stamp_backwards"] == 1
    assert pipeline.add_image(10.0, kit.image()) is None
    assert pipeline.diagnostics()["frames_admitted"] == 1


def test_gsplat_renderer_without_cuda_is_refused_by_name_at_start(make_pipeline):
    from dgslrm_ros.stream.config import ConfigError

    # not once per window at run time: the node would run and never publish
    with pytest.raises(ConfigError, match="parameter 'renderer'.*CUDA"):
        make_pipeline(renderer="gsplat", device="cpu")
