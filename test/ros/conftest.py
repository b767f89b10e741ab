"""Process helpers for the DDS tests: every ROS participant runs in its own process on loopback, in a
ROS domain of its own, with bounded timeouts, and is killed in `finally` whatever happens."""
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# Tiny settings: 32 px, window 8 (the `tiny` model preset), CPU.
TINY_PARAMS: dict[str, object] = {
    "device": "cpu", "renderer": "torch", "window_frames": 8, "window_stride": 4, "keyframe_stride": 4,
    "frame_rate": 10.0, "image_width": 32, "image_height": 32, "track_grid": 8, "max_pending_windows": 4,
    # 8-frame 32 px windows resolve almost no depth: seed every pixel, so that tracks flow (the default's
    # seeding is held by test/stream/test_track_seeds.py)
    "min_track_confidence": -1.0,
}
SCENE_FRAMES = 16
SCENE_SIZE = 32


def ros_env() -> dict[str, str]:
    """A private ROS domain on loopback for one test."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(random.randint(100, 200)),
        ROS_LOCALHOST_ONLY="1",
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
        RCUTILS_LOGGING_BUFFERED_STREAM="0",
        OMP_NUM_THREADS="1",  # two cores shared by three processes
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("ROS_LOCALHOST_ONLY")  # deprecated since Jazzy: the discovery range above replaces it
    return env


class Proc:
    """A child process whose combined output is collected by a thread (so pipes never fill up)."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, bufsize=1, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.popen.poll() is not None and not predicate():
                break
            time.sleep(0.1)
        if not predicate():
            raise AssertionError(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}\n{self.output[-4000:]}")

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> tuple[int, float]:
        """Send `sig`, wait; returns (exit status, seconds it took)."""
        start = time.monotonic()
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        rc = self.popen.wait(timeout)
        self._reader.join(2.0)
        return rc, time.monotonic() - start

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: only its own children
            except ProcessLookupError:
                pass
            self.popen.wait(5.0)


@contextlib.contextmanager
def _session() -> Iterator[SimpleNamespace]:
    """What a DDS test needs (test modules cannot import conftest under --import-mode=importlib);
    every process spawned through it is killed on exit."""
    procs: list[Proc] = []
    env = ros_env()

    def spawn(args: list[str], name: str, env: dict[str, str] = env) -> Proc:
        proc = Proc(args, env, name)
        procs.append(proc)
        return proc

    try:
        yield SimpleNamespace(env=env, spawn=spawn, node_args=node_args, read_bag=read_bag, stamp_ns=stamp_ns,
                              tiny_params=dict(TINY_PARAMS), python=PYTHON, root=ROOT)
    finally:
        for proc in procs:
            proc.kill()


@pytest.fixture
def dds() -> Iterator[SimpleNamespace]:
    with _session() as session:
        yield session


@pytest.fixture(scope="module")
def dds_module() -> Iterator[SimpleNamespace]:
    with _session() as session:
        yield session


def node_args(params: dict[str, object], extra: list[str] | None = None) -> list[str]:
    args = [PYTHON, "-m", "dgslrm_ros.ros.main", "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    return args + (extra or [])


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised `tiny` model checkpoint (the shipped one is trained elsewhere)."""
    torch = pytest.importorskip("torch")
    from dgslrm_ros.model.checkpoint import save_checkpoint
    from dgslrm_ros.model.config import ModelConfig
    from dgslrm_ros.model.dgslrm import DGSLRM

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", DGSLRM(ModelConfig.preset("tiny")))


@pytest.fixture(scope="session")
def scene_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short synthetic dynamic scene as the publisher's .npz (16 frames, 32 px, 10 fps)."""
    from dgslrm_ros.convert.image import frames_to_rgb8
    from dgslrm_ros.data.sequence import generate_sequence
    from dgslrm_ros.ros.demo_publisher import save_scene

    seq = generate_sequence(seed=3, num_frames=SCENE_FRAMES, height=SCENE_SIZE, width=SCENE_SIZE, fps=10.0,
                            num_views=1, track_grid=8)
    return save_scene(tmp_path_factory.mktemp("scene") / "scene.npz", frames_to_rgb8(seq.frames[0].numpy()),
                      seq.K[0].numpy(), seq.world_T_cam[0].numpy(), seq.timestamps.numpy())


def read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(log_time_ns, deserialised message)] with rosbags (no rclpy)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    out: dict[str, list[tuple[int, object]]] = {}
    with Reader(path) as reader:
        for connection, log_time, raw in reader.messages():
            msg = typestore.deserialize_cdr(raw, connection.msgtype)
            out.setdefault(connection.topic, []).append((log_time, msg))
    return out


def stamp_ns(msg: object) -> int:
    """Header stamp as exact integer nanoseconds (floats blur at epoch magnitudes)."""
    stamp = msg.header.stamp  # type: ignore[attr-defined]
    return stamp.sec * 1_000_000_000 + stamp.nanosec
