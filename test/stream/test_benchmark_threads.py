"""`dgslrm bench --node` rows, and the callback/worker threads sharing one pipeline."""
import threading

import numpy as np

from dgslrm_ros.model.checkpoint import save_checkpoint
from dgslrm_ros.stream.benchmark import STAGES, run_pipeline_benchmark


def test_pipeline_benchmark_reports_every_stage(tmp_path, tiny_model, kit):
    checkpoint = save_checkpoint(tmp_path / "tiny", tiny_model)
    rows = run_pipeline_benchmark("cpu", quick=True, config=kit.config(checkpoint=str(checkpoint), method="network"),
                                  input_size=(48, 64))
    by_stage = {row["stage"]: row for row in rows}
    for stage in STAGES:
        assert by_stage[stage]["ms_per_window"] > 0 and by_stage[stage]["windows"] == 1
    parts = sum(by_stage[s]["ms_per_window"] for s in STAGES if s != "total")
    assert parts <= by_stage["total"]["ms_per_window"] * 1.01
    summary = by_stage["summary"]
    assert summary["device"] == "cpu" and summary["weights"].startswith("checkpoint")
    assert summary["gaussians"] > 0 and summary["tracks"] > 0 and summary["window_frames"] == 8
    assert by_stage["callbacks (add_pose + add_image)"]["ms_min"] < 50


def test_callbacks_and_worker_in_parallel_lose_nothing(make_pipeline, kit):
    """One thread feeds 30 Hz images and 100 Hz poses, another pops windows; every emitted window
    is either popped or counted as overflow, and frames in windows stay in time order."""
    pipeline = make_pipeline(max_pending_windows=2)
    popped = []
    done = threading.Event()

    def worker():
        while not done.is_set() or pipeline.pending_windows():
            window = pipeline.pop_window()
            if window is not None:
                popped.append(window)

    thread = threading.Thread(target=worker)
    thread.start()
    shared = kit.image()
    for i in range(600):  # 6 s of 100 Hz poses, images on every third
        t = 30.0 + i * 0.01
        pipeline.add_pose(t, kit.pose_at(t), "world")
        if i % 3 == 0:
            pipeline.add_image(t, shared)
    done.set()
    thread.join(10)
    d = pipeline.diagnostics()
    assert not thread.is_alive()
    assert d["frames_admitted"] == 60 and d["dropped_rate"] == 140
    assert len(popped) + d["dropped_window_overflow"] == d["windows_emitted"] == 14
    for window in popped:
        assert np.all(np.diff(window.stamps) > 0)
