"""Web viewer (viser) of a window's Gaussians as splats, their motion over the window and the tracks.

SOURCE is a window file (`dgslrm replay BAG --save-windows` writes OUT/windows/window_<n>.safetensors),
a folder of them, a 3DGS PLY, a `dgslrm replay` or `dgslrm demo` output folder, or a bag holding the
node's `gaussians` topic; or, with --live, the topics of a running dgslrm_node over DDS (gaussians,
trajectories, /diagnostics, and image, camera_info, camera_pose for the camera frusta).

Open the printed URL in a browser: a time slider scrubs the deformation, toggles show the splats,
their centres, the tracks (coloured by speed like the RViz markers) and the input cameras; the side
panel holds the window's figures. Serves on localhost only unless --host says otherwise; Ctrl-C stops.

The viewer needs the optional extra viser (the node does not):
    pip install 'viser==1.1.1'        (or: pip install -e '.[viewer]' in this package's folder)
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from dgslrm_ros.bags import topics

# --live reads these (the names dgslrm_node uses, from bags/topics.py; a namespaced or remapped node
# needs them given). Not imported from ros/view_listener.py so that `dgslrm --help` loads no rclpy.
LIVE_TOPICS = {"gaussians": topics.GAUSSIANS, "trajectories": topics.TRAJECTORIES, "diagnostics": topics.DIAGNOSTICS,
               "image": topics.IMAGE, "camera_info": topics.CAMERA_INFO, "camera_pose": topics.CAMERA_POSE}
VISER_HINT = "pip install 'viser==1.1.1' (or pip install -e '.[viewer]' in the dgslrm_ros folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", type=Path, metavar="SOURCE",
                        help="window .safetensors, folder of them, .ply, replay/demo output folder, or bag")
    parser.add_argument("--live", action="store_true",
                        help="follow a running dgslrm_node over DDS instead of reading SOURCE")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if taken)")
    for name, default in LIVE_TOPICS.items():
        parser.add_argument(f"--{name.replace('_', '-')}-topic", dest=f"{name}_topic", default=default,
                            help=f"--live: the {name} topic (default: {default})")


def run(args: argparse.Namespace) -> int:
    if args.live == (args.source is not None):
        print("dgslrm view: give either SOURCE or --live (not both, not neither)", file=sys.stderr)
        return 2
    try:
        import viser  # noqa: F401  (checked first: the error must say how to install it)
    except ImportError:
        print(f"dgslrm view: the viewer needs the optional package viser, which is not installed; {VISER_HINT}",
              file=sys.stderr)
        return 2
    from dgslrm_ros.viewer.app import ViewerApp, start_server

    windows = []
    if not args.live:
        from dgslrm_ros.viewer.sources import load_source

        windows = load_source(args.source)  # a ViewerError names the source and what was expected
    try:
        server, url = start_server(args.host, args.port)
    except OSError as error:
        print(f"dgslrm view: cannot serve on {args.host}:{args.port} ({error}); choose another --host/--port",
              file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM only set this: the main loop then stops the listener and the server in order
    # (rclpy's own handlers are turned off in _start_live; a shell may also start us with SIGINT ignored)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    app = ViewerApp(server, title="dgslrm view: live" if args.live else f"dgslrm view: {args.source.name}",
                    follow_newest=args.live)
    listener = None
    try:
        if args.live:
            listener = _start_live(app, {name: getattr(args, f"{name}_topic") for name in LIVE_TOPICS})
            print(f"dgslrm view: waiting for dgslrm_node's windows; open {url} (Ctrl-C to stop)", flush=True)
        else:
            app.set_windows(windows)
            total = sum(len(w) for w in windows)
            print(f"dgslrm view: {len(windows)} window(s), {total:,} Gaussians from {args.source}; "
                  f"open {url} (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        if listener is not None:
            listener()
        server.stop()
        print("dgslrm view: stopped", flush=True)
    return 0


def _start_live(app, topic_names: dict[str, str]) -> callable:
    """Spin a ViewListener in a thread; returns the function that stops it."""
    from dgslrm_ros.ros.spin import spin_in_background
    from dgslrm_ros.ros.view_listener import ViewListener

    def on_window(live) -> None:
        window = live_window(live)
        app.add_window(window)
        print(f"dgslrm view: {window.label}: {len(window):,} Gaussians, "
              f"{len(window.tracks) if window.tracks is not None else 0} tracks, {len(window.cameras)} cameras "
              f"({sum(c.image is not None for c in window.cameras)} with images)",
              flush=True)

    return spin_in_background(lambda: ViewListener(on_window, topic_names=topic_names), "view-listener")[1]


def live_window(live):
    """ros.view_listener.LiveWindow -> viewer.scene.ViewerWindow (the wiring of the two layers)."""
    import numpy as np

    from dgslrm_ros.convert.camera_info import opencv_to_library_K
    from dgslrm_ros.viewer.scene import CameraView, window_from_cloud
    from dgslrm_ros.viewer.sources import tracks_from_cloud, window_figures

    stamp = live.stamp_ns / 1e9
    tracks = tracks_from_cloud(live.trajectories, stamp) if live.trajectories is not None else None
    cameras = tuple(CameraView(world_T_cam=c.world_T_cam, K=opencv_to_library_K(np.asarray(c.K)), width=c.width,
                               height=c.height, stamp=c.stamp_ns / 1e9, image=c.rgb) for c in live.cameras)
    g = live.gaussians
    return window_from_cloud(g.means, g.quats, g.scales, g.opacities, g.colors, g.velocities, stamp,
                             label=f"window at t = {stamp:.3f} s", tracks=tracks, cameras=cameras,
                             figures=window_figures(latency_s=live.latency_s, diagnostics=live.diagnostics))
