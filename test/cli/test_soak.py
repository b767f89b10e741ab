"""`dgslrm bench --soak`: a short live soak of a real dgslrm_node over DDS (tiny random checkpoint,
32 px) prints its table and summary and writes soak.json and soak.png; the summary arithmetic and the
ping-pong playback order are checked on known numbers."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"renderer": "torch", "window_frames": 8, "window_stride": 4, "keyframe_stride": 4, "image_width": 32,
        "image_height": 32, "track_grid": 8}


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    torch = pytest.importorskip("torch")
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM

    tmp = tmp_path_factory.mktemp("soak")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp / "tiny", DGSLRM(ModelConfig.preset("tiny")))
    out = tmp / "out"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    params = [f"--param={k}={v}" for k, v in {**TINY, "checkpoint": checkpoint}.items()]
    proc = subprocess.run(
        [sys.executable, "-m", "dgslrm_ros.cli.main", "bench", "--soak", "0.3", "--sample-every", "3",
         "--warmup", "0.1", "--compare-minutes", "0.1", "--size", "32x32", "--scene-frames", "12", "--device", "cpu",
         "--out", str(out), *params],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=240,
    )
    return out, proc


@pytest.mark.ros
def test_soak_prints_a_table_and_a_summary(soak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = soak
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "RSS MB" in proc.stdout and "lat p50" in proc.stdout and "win/s" in proc.stdout
    assert "== soak summary" in proc.stdout and "growth" in proc.stdout
    assert str(out / "soak.json") in proc.stdout


@pytest.mark.ros
def test_soak_json_holds_node_memory_latency_and_drops(soak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = soak
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((out / "soak.json").read_text())
    samples = data["samples"]
    assert len(samples) >= 5  # 18 s, one every 3 s
    assert all(s["rss_mb"] > 50 for s in samples)  # the node's own resident memory (torch alone is more)
    assert all(0.0 <= s["node_cpu_cores"] <= (os.cpu_count() or 1) + 0.5 for s in samples)
    # the node's own figures came over /diagnostics
    with_diagnostics = [s for s in samples if "python_allocated_blocks" in s]
    assert len(with_diagnostics) >= len(samples) - 1
    assert all(abs(s["memory_rss_mb"] - s["rss_mb"]) < 0.5 * s["rss_mb"] for s in with_diagnostics)
    assert all("dropped_frames_total" in s and isinstance(s["drops"], dict) for s in with_diagnostics)
    assert "window_overflow" in with_diagnostics[-1]["drops"]
    # windows arrived, each with a latency from its newest frame's stamp
    assert sum(s["windows"] for s in samples) >= 5
    latencies = [lat for _, lat in data["latencies"]]
    assert latencies and all(0.0 < lat < 60.0 for lat in latencies)
    summary = data["summary"]
    assert summary["samples"] == len(samples)
    assert math.isfinite(summary["rss_growth_after_warmup_mb"])
    assert summary["latency_p50_first_s"] > 0 and summary["windows_per_s_last"] > 0
    assert summary["pending_windows_max"] <= 2  # the default max_pending_windows
    assert data["node_env"] == {} and "ready:" in data["node_ready"]


@pytest.mark.ros
def test_soak_png_is_written(soak: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = soak
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    png = (out / "soak.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000


def test_summary_measures_growth_after_warmup_and_compares_first_and_last_latency() -> None:
    from dgslrm_ros.cli.soak import summarize

    # 30 min, a sample a minute: +50 MB/min for 2 min of warm-up, then +1 MB every minute
    samples = [{"t": 60.0 * m, "rss_mb": 500.0 + 50.0 * min(m, 2) + 1.0 * max(m - 2, 0),
                "pending_windows": m % 3, "drops": {"rate": 0, "window_overflow": 2}} for m in range(31)]
    # latency 1 s in the first 10 min, 1.2 s in the last 10; one window a second... every 2 s at the end
    latencies = [(float(t), 1.0) for t in range(0, 600)] + [(float(t), 1.2) for t in range(1200, 1800, 2)]
    summary = summarize(samples, latencies, warmup_s=120.0, compare_s=600.0)
    assert summary["rss_warmup_mb"] == 600.0 and summary["rss_end_mb"] == 628.0
    assert summary["rss_growth_after_warmup_mb"] == pytest.approx(28.0)
    assert summary["rss_slope_mb_per_min"] == pytest.approx(1.0)
    assert summary["latency_p50_first_s"] == 1.0 and summary["latency_p95_last_s"] == pytest.approx(1.2)
    assert summary["latency_p50_change"] == pytest.approx(0.2)
    assert summary["windows_per_s_change"] == pytest.approx(-0.5, abs=0.01)
    assert summary["pending_windows_max"] == 2
    assert summary["drops"] == {"window_overflow": 2}


def test_ping_pong_playback_has_no_jump() -> None:
    from dgslrm_ros.ros.soak_driver import ping_pong_index

    order = [ping_pong_index(i, 4) for i in range(13)]
    assert order == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert all(abs(a - b) == 1 for a, b in zip(order, order[1:]))
    assert ping_pong_index(5, 1) == 0


def test_replay_soak_reads_per_window_memory_back_from_the_replayed_bag(tmp_path: Path) -> None:
    """The --replay data path: a looping bag in, `dgslrm replay`'s pipeline, per-window RSS read back."""
    import numpy as np
    import torch

    from dgslrm_ros.cli.replay import replay_bag
    from dgslrm_ros.cli.soak import replay_window_memory, write_looping_bag
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM
    from dgslrm_ros.stream.config import PipelineConfig

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    poses = np.repeat(np.eye(4)[None], 6, axis=0)
    poses[:, 0, 3] = np.linspace(0.0, 0.1, 6)
    K = np.array([[30.0, 0.0, 15.5], [0.0, 30.0, 15.5], [0.0, 0.0, 1.0]])
    bag = write_looping_bag(tmp_path / "bag", (frames, K, poses), count=40, rate=10.0)
    torch.manual_seed(0)
    config = PipelineConfig(device="cpu", **{k: v for k, v in TINY.items()})
    replay_bag(bag, tmp_path / "out", config, progress=False, model=DGSLRM(ModelConfig.preset("tiny")))
    rows = replay_window_memory(tmp_path / "out" / "output_bag")
    assert [n for n, _ in rows] == list(range(1, 10))  # 40 frames, window 8, stride 4: 9 windows
    assert all(50.0 < mb < 64 * 1024.0 for _, mb in rows)
