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


def test_node_benchmark_takes_pipeline_parameters_and_counts_reused_sweeps(tmp_path, capsys):
    """`dgslrm bench --node --param NAME=VALUE` measures that configuration (refused by name if it is not a
    pipeline parameter), and the summary says how many keyframe sweeps the windows took from the one before."""
    import json

    import pytest

    from dgslrm_ros.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--node", "--device", "cpu", "--param", "keyframe_stride=2", "--param", "image_width=32",
                 "--param", "image_height=32", "--param", "track_grid=8", "--json", str(out)]) == 0
    summary = next(row for row in json.loads(out.read_text())["results"]["node"] if row["stage"] == "summary")
    assert summary["keyframe_stride"] == 2 and summary["image"] == "32x32"
    reused, swept = map(int, summary["sweeps_reused"].split("/"))
    # 4 overlapping windows of 12 keyframes: the 3 after the first each take the 6 they share
    assert (reused, swept) == (18, 48)
    for bad in ("output_dir=/tmp/x", "keyframe_strid=2"):
        with pytest.raises(SystemExit, match="takes the pipeline's parameters"):
            main(["bench", "--node", "--param", bad])
