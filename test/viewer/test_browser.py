"""`dgslrm view` in a real browser: the CLI serves a small synthetic window, headless Chromium (software
WebGL) loads the page and takes a screenshot, and the splats' colours must be where the scene
projects. Chromium is a test-time dependency: installed here with apt-get where missing, and the
test is skipped, with the reason printed, only if that is impossible."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dgslrm_ros.viewer import scene as sc

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1200, 800
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
    # software WebGL: no GPU on CI
    "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
    f"--window-size={WIDTH},{HEIGHT}",
]  # plus --virtual-time-budget: the page's scripts run that much (virtual) time before the screenshot


def _skip(reason: str) -> None:
    print(f"\n[test_browser] SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary, apt-installing the Debian package `chromium` if none is found."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if shutil.which("apt-get") is None:
        _skip("Chromium is not installed and apt-get is not available to install it")
    if os.geteuid() != 0:
        _skip("Chromium is not installed and installing it with apt-get needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("\n[test_browser] installing chromium with apt-get (one-off) ...", file=sys.stderr)
    for command, limit in ((["apt-get", "update", "-q"], 300),
                           (["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"], 900)):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            _skip(f"`{' '.join(command)}` did not finish in {limit} s")
        if done.returncode != 0:
            _skip(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    found = shutil.which("chromium")
    if not found:
        _skip("apt-get installed chromium but no `chromium` binary is on PATH")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Viewer:
    """`dgslrm view` as a child process; output collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.popen = subprocess.Popen([sys.executable, "-m", "dgslrm_ros.cli.main", "view", *args], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"`dgslrm view` never printed {text!r}:\n{self.output}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def _project(points: np.ndarray, position: np.ndarray, look_at: np.ndarray, up: np.ndarray) -> np.ndarray:
    """World points [K, 3] -> pixels [K, 2] of the browser's first view (pinhole, vertical fov)."""
    forward = (look_at - position) / np.linalg.norm(look_at - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    d = points - position
    x, y, z = d @ right, d @ true_up, d @ forward
    focal = 0.5 * HEIGHT / np.tan(0.5 * sc.INITIAL_FOV)
    return np.stack([0.5 * WIDTH + focal * x / z, 0.5 * HEIGHT - focal * y / z], axis=-1)


def test_viewer_page_shows_the_splats_where_the_scene_is(chromium, synthetic_window, tmp_path):
    from matplotlib.image import imread

    path = synthetic_window.save(tmp_path / "window_0000.safetensors")
    port = _free_port()
    viewer = _Viewer([str(path), "--port", str(port)])
    try:
        viewer.wait_for("Ctrl-C to stop", timeout=90)
        assert f"http://localhost:{port}" in viewer.output
        for budget_ms in (20_000, 60_000):  # a second, longer look only if the page was still loading
            shot = tmp_path / f"viewer_{budget_ms}.png"
            done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--virtual-time-budget={budget_ms}",
                                   f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                                   f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=240)
            assert shot.is_file(), f"chromium wrote no screenshot ({done.returncode}): {done.stderr[-2000:]}"
            image = imread(shot)[..., :3]  # [H, W, 3] float in [0, 1]
            if (image.min(axis=-1) < 0.9).mean() > 0.03:
                break
        # Ctrl-C (SIGINT to the process) stops the server cleanly
        viewer.popen.send_signal(signal.SIGINT)
        assert viewer.popen.wait(30) == 0, viewer.output
        assert "dgslrm view: stopped" in viewer.output
    finally:
        viewer.kill()
    shutil.copy(shot, Path(os.environ.get("DGSLRM_VIEW_SHOT", tmp_path / "copy.png")))
    assert image.shape[:2] == (HEIGHT, WIDTH)
    not_white = (image.min(axis=-1) < 0.9).mean()
    assert not_white > 0.03, f"the page looks blank: {not_white:.1%} of pixels are not white"

    window = sc.window_from_deformable(synthetic_window, "w")
    position, look_at, up = sc.initial_view(window)
    newest = synthetic_window.positions(synthetic_window.num_frames - 1).numpy()  # the slider opens there
    half = len(newest) // 2
    red_centre, green_centre = np.median(newest[:half], axis=0), np.median(newest[half:], axis=0)
    for centre, channel, other, name in ((red_centre, 0, 1, "red"), (green_centre, 1, 0, "green")):
        u, v = _project(centre[None], position, look_at, up)[0]
        assert 20 <= u < WIDTH - 20 and 20 <= v < HEIGHT - 20, (name, u, v)
        patch = image[int(v) - 12:int(v) + 13, int(u) - 12:int(u) + 13].reshape(-1, 3)
        dominant = (patch[:, channel] - patch[:, other] > 0.25).mean()
        assert dominant > 0.6, f"the {name} cluster projects to ({u:.0f}, {v:.0f}) but only {dominant:.0%} of " \
                               f"the pixels there are {name}; mean colour {patch.mean(axis=0)}"


def test_bad_file_is_refused_with_a_clear_error(tmp_path, capsys):
    from dgslrm_ros.cli.main import main

    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 64)
    assert main(["view", str(tmp_path / "broken.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "broken.safetensors" in err and "not a readable safetensors file" in err


def test_help_says_how_to_install_viser(capsys):
    from dgslrm_ros.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["view", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "pip install 'viser==" in out and "--host" in out
