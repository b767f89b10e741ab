"""`dgslrm demo` with tiny settings (16 frames, 32 px, a tiny random checkpoint): three processes over
real DDS, then the bag, PLY files, PNGs and metrics.json it promises."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_TOPICS = {"/gaussians", "/trajectories", "/tracks_markers", "/rendered", "/diagnostics"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run_demo(tmp: Path, *options: str) -> tuple[Path, subprocess.CompletedProcess]:
    """`dgslrm demo` on a tiny random checkpoint (32 px, 8-frame windows) with `options`, in a subprocess."""
    torch = pytest.importorskip("torch")
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM

    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp / "tiny", DGSLRM(ModelConfig.preset("tiny")))
    out = tmp / "out"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "dgslrm_ros.cli.main", "demo", "--out", str(out), "--size", "32", "--seed", "1",
         "--timeout", "150", "--checkpoint", str(checkpoint), *options],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=240,
    )
    return out, proc


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    return _run_demo(tmp_path_factory.mktemp("demo"), "--frames", "16")


@pytest.mark.ros
def test_demo_runs_and_prints_where_everything_is(demo: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, proc = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(out.resolve()) in proc.stdout and "metrics.json" in proc.stdout
    assert "windows received 3/3" in proc.stdout  # 16 frames, window 8, stride 4


@pytest.mark.ros
def test_demo_bag_holds_every_output_received_over_dds(demo: tuple[Path, subprocess.CompletedProcess]) -> None:
    from rosbags.rosbag2 import Reader

    out, _ = demo
    assert list((out / "bag").glob("*.mcap"))
    with Reader(out / "bag") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        types = {c.topic: c.msgtype for c in reader.connections}
    assert OUTPUT_TOPICS <= set(counts)
    assert counts["/gaussians"] == counts["/trajectories"] == counts["/rendered"] == 3
    assert counts["/image"] == 16 and counts["/diagnostics"] >= 2
    assert types["/gaussians"] == "sensor_msgs/msg/PointCloud2"
    assert types["/tracks_markers"] == "visualization_msgs/msg/MarkerArray"


@pytest.mark.ros
def test_demo_writes_ply_png_and_metrics(demo: tuple[Path, subprocess.CompletedProcess]) -> None:
    from dgslrm_ros.core.ply import read_ply

    out, _ = demo
    plys = sorted(out.glob("gaussians_*.ply"))
    assert len(plys) == 3
    gaussians = read_ply(plys[-1])
    assert len(gaussians) > 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"rendered_02.png", "novel_view_02.png", "tracks.png"} <= set(pngs)
    assert all((out / name).read_bytes()[:8] == PNG_MAGIC for name in pngs)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["windows_received"] == metrics["windows_expected"] == 3
    assert 0 < metrics["latency_s_mean"] < 60
    assert 0 < metrics["psnr_rendered_vs_input_db"] < 100 and 0 < metrics["psnr_novel_view_db"] < 100
    assert metrics["track_epe_m"] >= 0 and metrics["track_epe_still_m"] >= 0
    assert metrics["moving_tracks"] > 0  # the default 'dynamic' family: every object moves
    # every window's tracks scored against the ground truth seeded on its own first frame
    assert all(window["tracks_evaluated"] > 0 for window in metrics["windows"])
    assert metrics["moving_flow_epe_still_m"] > 0.05  # standing still misses their whole motion
    assert metrics["weights"].startswith("classical") and metrics["weights_untrained"] is False  # the default method
    assert metrics["node_diagnostics"]["device"] == "cpu"
    assert metrics["processes"]["dgslrm_node_exit"] == 0  # clean SIGINT shutdown


@pytest.mark.ros
def test_demo_publishes_opencv_intrinsics_in_camera_info(demo: tuple[Path, subprocess.CompletedProcess]) -> None:
    # The generator's K puts pixel centres at +0.5; CameraInfo's (OpenCV) at integers. A missing
    # conversion shifts every reprojection in the node by half a pixel.
    from dgslrm_ros.bags.reader import CameraInfoRecord, read_bag
    from dgslrm_ros.data.sequence import generate_sequence

    out, _ = demo
    infos = [r for r in read_bag(out / "bag") if isinstance(r, CameraInfoRecord)]
    assert infos
    from dgslrm_ros.data.scenes import scene_preset

    expected = generate_sequence(seed=1, num_frames=16, height=32, width=32, num_views=2, track_grid=4,
                                 config=scene_preset("dynamic")).K[0]
    expected = expected.double().numpy().copy()
    expected[:2, 2] -= 0.5
    for record in infos:
        assert abs(record.intrinsics.K - expected).max() < 1e-6


@pytest.mark.ros
def test_demo_output_opens_in_the_viewer(demo: tuple[Path, subprocess.CompletedProcess]) -> None:
    """The summary's `dgslrm view OUT` line works on what the demo wrote: 3 windows, each with its tracks
    and the 8 input cameras of its frames (the bag records the inputs too)."""
    from dgslrm_ros.viewer.sources import load_source

    out, proc = demo
    assert f"dgslrm view {out}" in proc.stdout
    windows = load_source(out)
    assert len(windows) == 3
    for window in windows:
        assert len(window) > 0 and window.num_frames == 8 and window.tracks is not None
        assert len(window.cameras) == 8 and all(c.image is not None for c in window.cameras)


@pytest.mark.ros
def test_demo_method_network_runs_the_checkpoint_in_the_node(tmp_path: Path) -> None:
    """`--method network` reaches the node: its diagnostics name the checkpoint it ran (the default runs
    `classical`, test above), and the tracks are scored as for the default."""
    out, proc = _run_demo(tmp_path, "--frames", "8", "--method", "network")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["windows_received"] == 1
    assert metrics["weights"] == f"checkpoint {tmp_path / 'tiny'}"
    assert metrics["windows"][0]["tracks_evaluated"] > 0
