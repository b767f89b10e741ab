"""The node's std_srvs/Trigger services: `~/save_ply` and `~/reset`.

Both run on the executor thread between callbacks (they take milliseconds): `save_ply` writes the
Gaussians the `gaussians` topic last carried (the newest window, deformed to its newest frame) as a
standard 3DGS PLY; `reset` empties every buffer and restarts tracking, with track ids that keep
counting so a downstream planner never sees an old id on a new point.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from std_srvs.srv import Trigger


class NodeServices:
    """Creates the services on `node`; `latest()` gives (DeformableGaussians, (sec, nanosec) stamp) of the
    newest published window, or None."""

    def __init__(self, node: Any, output_dir: str, latest: Callable[[], Any], reset: Callable[[], None]) -> None:
        self._node = node
        self.output_dir = Path(output_dir).expanduser()
        self._latest = latest
        self._reset = reset
        self._lock = threading.Lock()
        node.create_service(Trigger, "~/save_ply", self._save_ply)
        node.create_service(Trigger, "~/reset", self._on_reset)

    def _save_ply(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        from dgslrm_ros.core.ply import write_ply

        latest = self._latest()
        if latest is None:
            response.success = False
            response.message = "no window reconstructed yet (or since ~/reset); nothing to save"
            return response
        deformable, (sec, nanosec) = latest
        path = self.output_dir / f"gaussians_{sec}_{nanosec:09d}.ply"
        try:
            with self._lock:
                self.output_dir.mkdir(parents=True, exist_ok=True)
                gaussians = deformable.at(deformable.num_frames - 1)  # what `gaussians` carried
                write_ply(path, gaussians)
        except Exception as error:  # noqa: BLE001 - a full disk must not take the node down
            response.success = False
            response.message = (f"could not write {path}: {type(error).__name__}: {error}; check that "
                                "output_dir is writable")
            self._node.get_logger().error(response.message)
            return response
        response.success = True
        response.message = str(path.resolve())
        self._node.get_logger().info(f"~/save_ply: {len(gaussians)} Gaussians -> {response.message}")
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._reset()
        response.success = True
        response.message = "buffers and tracks cleared; the next window starts a new sequence"
        self._node.get_logger().info("~/reset: " + response.message)
        return response
