"""Child processes of `dgslrm demo` and `dgslrm bench --soak`: the node, publishers, recorders, replays.

They talk over a private ROS domain on loopback (`child_env`), so a demo or a soak neither sees nor
disturbs a robot's traffic, and they import this very package, also when it runs from a source tree.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with a private loopback ROS domain and this package importable, `extra` on top."""
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


@dataclass
class Child:
    """A child process whose output is collected by a thread and mirrored to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], log: Path) -> Child:
        popen = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 bufsize=1, start_new_session=True)
        child = cls(name, popen, log)
        threading.Thread(target=child._read, daemon=True).start()
        return child

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with open(self.log, "w") as stream:
            for line in self.popen.stdout:
                self.lines.append(line.rstrip("\n"))
                stream.write(line)
                stream.flush()

    def count(self, prefix: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(prefix))

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT, then SIGKILL of its own process group if it does not end in `timeout` s."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5.0)
        return self.popen.returncode
