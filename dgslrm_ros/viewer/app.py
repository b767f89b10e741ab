"""The viser wiring of `dgslrm view`: scene nodes for one `ViewerWindow` and the side panel's controls.

Layers (each with a toggle): the Gaussians as splats (viser's anisotropic, alpha-blended Gaussian
splat node), their centres as points, the tracks as polylines coloured by speed with a dot where each
track is at the slider's instant, and the input cameras as frusta textured with their images (the
one nearest the slider's instant in red). Controls: window (when there are several), time in the
window, minimum opacity, splat size, point size. Arrays come from `scene.py`; this module only
places them. Callbacks run on viser's threads and the live mode adds windows from a ROS thread, so
every redraw holds one lock.
"""
from __future__ import annotations

import threading

import numpy as np

from dgslrm_ros.core.rotations_np import matrix_to_quat_wxyz
from dgslrm_ros.viewer import scene as sc

FRUSTUM_RGB = (90, 90, 90)
CURRENT_FRUSTUM_RGB = (220, 30, 30)
TRACK_LINE_PX = 2.0
HEAD_RGB = (20, 20, 20)
# Live mode keeps the newest windows only: a 24k-Gaussian, 24-frame window holds ~7 MB of offsets.
MAX_LIVE_WINDOWS = 20


class ViewerApp:
    """One viser server showing one window at a time, out of a list that may grow (live mode)."""

    def __init__(self, server, title: str = "dgslrm view", follow_newest: bool = False) -> None:
        self.server = server
        self.windows: list[sc.ViewerWindow] = []
        self.index = -1
        self._lock = threading.RLock()
        self._framed = False
        self._splats = None
        self._frusta: list = []
        gui = server.gui
        gui.configure_theme(control_width="medium", show_share_button=False)
        gui.add_markdown(f"**{title}**")
        with gui.add_folder("Figures"):
            self.figures = gui.add_markdown("waiting for a window ...")
        with gui.add_folder("Window"):
            self.window_slider = gui.add_slider("window", min=0, max=1, step=1, initial_value=0, disabled=True)
            self.follow = gui.add_checkbox("follow newest", initial_value=follow_newest,
                                           hint="show each new window as it arrives (live mode)")
            self.time_slider = gui.add_slider("time [s]", min=0.0, max=1.0, step=0.001, initial_value=0.0,
                                              hint="seconds since the window's first frame: scrubs the deformation")
            self.time_label = gui.add_markdown("")
        with gui.add_folder("Layers"):
            self.show_splats = gui.add_checkbox("Gaussians (splats)", initial_value=True)
            self.show_points = gui.add_checkbox("Gaussian centres (points)", initial_value=False)
            self.show_tracks = gui.add_checkbox("tracks", initial_value=True)
            self.show_cameras = gui.add_checkbox("input cameras", initial_value=True)
        with gui.add_folder("Display"):
            self.min_opacity = gui.add_slider("min opacity", min=0.0, max=1.0, step=0.01, initial_value=0.0,
                                              hint="hide Gaussians less opaque than this")
            self.splat_size = gui.add_slider("splat size", min=0.1, max=3.0, step=0.05, initial_value=1.0,
                                             hint="multiplies every Gaussian's standard deviations")
            self.point_size = gui.add_slider("point size", min=0.0005, max=0.05, step=0.0005, initial_value=0.005,
                                             hint="size of the centre points and track dots (scene units)")

        self.window_slider.on_update(lambda _: self._show(int(self.window_slider.value))
                                     if int(self.window_slider.value) != self.index else None)
        self.time_slider.on_update(lambda _: self._update_time())
        for handle in (self.min_opacity, self.splat_size):
            handle.on_update(lambda _: self._redraw_gaussians())
        self.point_size.on_update(lambda _: self._update_time())
        self.show_splats.on_update(lambda _: self._set_visible("/gaussians", self.show_splats.value))
        self.show_points.on_update(lambda _: self._update_time())
        self.show_tracks.on_update(lambda _: self._set_visible("/tracks", self.show_tracks.value))
        self.show_cameras.on_update(lambda _: self._set_visible("/cameras", self.show_cameras.value))

    # ------------------------------------------------------------------ windows
    @property
    def window(self) -> sc.ViewerWindow | None:
        return self.windows[self.index] if 0 <= self.index < len(self.windows) else None

    def set_windows(self, windows: list[sc.ViewerWindow]) -> None:
        """Show a fixed list (files): the newest first, the others a slider away."""
        with self._lock:
            self.windows = list(windows)
            self._update_window_slider()
            self._show(len(self.windows) - 1)

    def add_window(self, window: sc.ViewerWindow) -> None:
        """Append a window (live mode); shown at once when 'follow newest' is on or nothing is shown."""
        with self._lock:
            self.windows.append(window)
            if len(self.windows) > MAX_LIVE_WINDOWS:
                del self.windows[0]
                self.index -= 1
            self._update_window_slider()
            if self.index >= 0:
                self.window_slider.value = self.index  # same window, one place lower after the drop
            if self.follow.value or self.index < 0:
                self._show(len(self.windows) - 1)

    def _update_window_slider(self) -> None:
        count = len(self.windows)
        self.window_slider.max = max(count - 1, 1)
        self.window_slider.disabled = count < 2

    def _show(self, index: int) -> None:
        with self._lock:
            if not 0 <= index < len(self.windows):
                return
            self.index = index
            if int(self.window_slider.value) != index:
                self.window_slider.value = index  # its callback sees index already set: no redraw
            window = self.windows[index]
            self.time_slider.max = max(window.span, 1e-3)
            self.time_slider.step = max(window.span / 200.0, 1e-4)
            self.time_slider.disabled = window.num_frames < 2
            self.time_slider.value = window.span  # newest frame: what the node publishes
            self._frame_once(window)
            self._draw_tracks(window)
            self._draw_cameras(window)
            self._redraw_gaussians()

    def _frame_once(self, window: sc.ViewerWindow) -> None:
        """Point the browser at the first window shown (later windows keep the user's view)."""
        if self._framed or len(window) == 0:
            return
        position, look_at, up = sc.initial_view(window)
        self.server.scene.set_up_direction(tuple(float(v) for v in up))
        self.server.initial_camera.position = tuple(float(v) for v in position)
        self.server.initial_camera.look_at = tuple(float(v) for v in look_at)
        self.server.initial_camera.up = tuple(float(v) for v in up)
        self.server.initial_camera.fov = sc.INITIAL_FOV
        for client in self.server.get_clients().values():
            client.camera.position = tuple(float(v) for v in position)
            client.camera.look_at = tuple(float(v) for v in look_at)
            client.camera.fov = sc.INITIAL_FOV
        self._framed = True

    # ------------------------------------------------------------------ time
    @property
    def time(self) -> float:
        """The slider's absolute time (seconds, the window's clock)."""
        window = self.window
        return float(window.timestamps[0]) + float(self.time_slider.value) if window is not None else 0.0

    def _update_time(self) -> None:
        with self._lock:
            window = self.window
            if window is None:
                return
            time, min_opacity = self.time, float(self.min_opacity.value)
            _, keep = sc.drawn_at(window, time, min_opacity)
            centres = sc.positions_at(window, time)[keep]
            if window.frame_opacities is not None and self._splats is not None and len(centres):
                # keyframes fade in and out over time: the drawn set itself changes with the instant
                self._splats.set_gaussians(**sc.splat_arrays(window, time, min_opacity, float(self.splat_size.value)))
            elif self._splats is not None and len(self._splats.centers) == len(centres):
                # while a new window is being drawn the splat node still holds the old one's set
                self._splats.centers = centres
            self._draw_points(window, centres, keep)
            self._draw_heads(window, time)
            if window.cameras:
                nearest = min(window.cameras, key=lambda c: abs(c.stamp - time))
                for frustum, camera in zip(self._frusta, window.cameras):
                    frustum.color = CURRENT_FRUSTUM_RGB if camera is nearest else FRUSTUM_RGB
            self.time_label.content = (f"frame {sc.frame_at(window, time):.2f} of {window.num_frames - 1} "
                                       f"(stamp {time:.3f} s)")

    # ------------------------------------------------------------------ layers
    def _redraw_gaussians(self) -> None:
        with self._lock:
            window = self.window
            if window is None:
                return
            arrays = sc.splat_arrays(window, self.time, float(self.min_opacity.value), float(self.splat_size.value))
            shown = len(arrays["centers"])
            if shown == 0:
                self.server.scene.remove_by_name("/gaussians")
                self._splats = None
            elif self._splats is None:
                self._splats = self.server.scene.add_gaussian_splats("/gaussians", **arrays,
                                                                     visible=bool(self.show_splats.value))
            else:
                self._splats.set_gaussians(**arrays)
            rows = sc.panel_figures(window, shown)
            self.figures.content = f"**{window.label}**\n\n" + "\n".join(f"- {k}: **{v}**" for k, v in rows)
            self._update_time()

    def _draw_points(self, window: sc.ViewerWindow, centres: np.ndarray, keep: np.ndarray) -> None:
        if not self.show_points.value or len(centres) == 0:
            self.server.scene.remove_by_name("/points")
            return
        self.server.scene.add_point_cloud("/points", centres, np.clip(window.colors[keep], 0, 1),
                                          point_size=float(self.point_size.value), point_shape="circle",
                                          precision="float32")

    def _draw_tracks(self, window: sc.ViewerWindow) -> None:
        self.server.scene.remove_by_name("/tracks")
        if window.tracks is None or len(window.tracks) == 0:
            return
        self.server.scene.add_frame("/tracks", show_axes=False, visible=bool(self.show_tracks.value))
        points, colors = sc.track_segments(window.tracks)
        if len(points):
            self.server.scene.add_line_segments("/tracks/lines", points, colors, thickness=TRACK_LINE_PX,
                                                thickness_units="screen")

    def _draw_heads(self, window: sc.ViewerWindow, time: float) -> None:
        if window.tracks is None or len(window.tracks) == 0:
            return
        heads, _ = sc.track_heads(window.tracks, time)
        if len(heads):
            self.server.scene.add_point_cloud("/tracks/heads", heads, HEAD_RGB, point_size=float(self.point_size.value),
                                              point_shape="circle", precision="float32")

    def _draw_cameras(self, window: sc.ViewerWindow) -> None:
        self.server.scene.remove_by_name("/cameras")
        self._frusta = []
        if not window.cameras:
            return
        self.server.scene.add_frame("/cameras", show_axes=False, visible=bool(self.show_cameras.value))
        size = sc.frustum_size(window)
        for n, camera in enumerate(window.cameras):
            self._frusta.append(self.server.scene.add_camera_frustum(
                f"/cameras/frame_{n:03d}", fov=camera.vertical_fov, aspect=camera.width / camera.height,
                scale=size, color=FRUSTUM_RGB, image=camera.image, format="jpeg",
                wxyz=matrix_to_quat_wxyz(camera.world_T_cam[:3, :3]), position=camera.world_T_cam[:3, 3],
                thickness=1.5, thickness_units="screen",
            ))

    def _set_visible(self, name: str, visible: bool) -> None:
        with self._lock:
            handle = self._splats if name == "/gaussians" else self.server.scene.get_handle_by_name(name)
            if handle is not None:
                handle.visible = bool(visible)


def start_server(host: str = "127.0.0.1", port: int = 8080):
    """A viser server on host:port (the next free port if taken); returns (server, URL)."""
    import viser

    server = viser.ViserServer(host=host, port=port, verbose=False)
    shown_host = "localhost" if host in ("127.0.0.1", "localhost") else host
    return server, f"http://{shown_host}:{server.get_port()}"
