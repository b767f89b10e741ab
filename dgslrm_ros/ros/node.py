"""`dgslrm` node: the ROS shell around the stream layer's StreamingReconstructor.

Callbacks only convert a message and hand it to the reconstructor (which buffers into bounded
queues that drop the oldest and count why); one worker thread pops complete windows, runs the model
and publishes, so a slow window never blocks the executor. Every bad input is counted, logged
(throttled) and survived; one failed window is logged and the next proceeds.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import Counter, OrderedDict
from typing import Any, Callable

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from dgslrm_ros.convert.errors import UnsupportedEncodingError
from dgslrm_ros.convert.window import window_messages
from dgslrm_ros.ros import messages, qos
from dgslrm_ros.ros.image_sources import CompressedDecoder
from dgslrm_ros.ros.params import PARAMETERS, ParameterError, ParamSpec, node_options, pipeline_config
from dgslrm_ros.ros.pose_sources import PoseSource
from dgslrm_ros.ros.qos import DIAGNOSTICS_QOS, OUTPUT_QOS
from dgslrm_ros.ros.services import NodeServices
from dgslrm_ros.stream.health import StreamHealth, gpu_memory
from dgslrm_ros.stream.memory import memory_status

NODE_NAME = "dgslrm"
THROTTLE_S = 5.0  # one log line per bad-input kind per this many seconds
DIAGNOSTICS_PERIOD_S = 1.0
SHUTDOWN_JOIN_S = 5.0  # a CPU window can take tens of seconds; stop within a few seconds regardless
# Exact (sec, nanosec) of the images taken, by their float-seconds stamp: a float64 at epoch
# magnitudes holds ~240 ns, so outputs re-stamped from floats would miss the input stamp (ExactTime
# matching, TF lookups). Bounded: far more than max_pending_windows x window_frames can ever need.
STAMP_MEMORY = 1 << 16

_PARAM_TYPES = {str: ParameterType.PARAMETER_STRING, int: ParameterType.PARAMETER_INTEGER,
                float: ParameterType.PARAMETER_DOUBLE, tuple: ParameterType.PARAMETER_DOUBLE_ARRAY}


def descriptor(spec: ParamSpec, *, dynamic: bool = False) -> ParameterDescriptor:
    """The ParameterDescriptor `ros2 param describe` shows: description, range, read-only.

    Read-only because the model and buffers are built from the values at start-up. `dynamic` gives the
    first-pass descriptor of a float parameter: dynamically typed and writable, so an integer override
    (`-p frame_rate:=30`, YAML `frame_rate: 30`) gets past rclpy's type check to the table's own check,
    after which the parameter is declared again with this static, read-only descriptor.
    """
    desc = ParameterDescriptor(
        name=spec.name, type=_PARAM_TYPES[spec.type], description=spec.description,
        additional_constraints=spec.constraints(), read_only=not dynamic, dynamic_typing=dynamic,
    )
    if dynamic:
        desc.type = ParameterType.PARAMETER_NOT_SET
    if spec.type is int and (spec.minimum is not None or spec.maximum is not None):
        low = spec.minimum if spec.minimum is not None else -(2**63)
        # one range only: it reaches down to the sentinel, and spec.check refuses the values in between by name
        desc.integer_range = [IntegerRange(
            from_value=int(low if spec.sentinel is None else min(low, spec.sentinel)),
            to_value=int(spec.maximum if spec.maximum is not None else 2**63 - 1), step=0)]
    if spec.type is float and (spec.minimum is not None or spec.maximum is not None):
        low = spec.minimum if spec.minimum is not None else -1e308
        desc.floating_point_range = [FloatingPointRange(  # down to the sentinel too, as for integers
            from_value=float(low if spec.sentinel is None else min(low, spec.sentinel)),
            to_value=float(spec.maximum if spec.maximum is not None else 1e308), step=0.0)]
    return desc


class DgslrmNode(Node):
    """Posed monocular video in; deformable Gaussians, trajectories, markers, renders, diagnostics out."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None  # started last, once everything else is up
        self._decoder: CompressedDecoder | None = None
        values = self._declare_parameters()
        self.config = pipeline_config(values)  # raises ParameterError by name
        self.options = node_options(values)
        # Heavy (torch, model weights): imported only once the parameters are known to be good.
        from dgslrm_ros.stream.pipeline import StreamingReconstructor
        from dgslrm_ros.stream.reconstruction import ReconstructionError

        self._reconstruction_error = ReconstructionError
        # the checkpoint must fit window_frames/keyframe_stride/image size: a ConfigError names the parameter
        self._reconstructor = StreamingReconstructor(self.config, logger=self._pipeline_log)
        self.config = self._reconstructor.config  # the values left to the checkpoint (-1) filled in
        self._rejected: Counter[str] = Counter()  # messages that could not be converted, by kind
        self._reject_lock = threading.Lock()
        self._received: Counter[str] = Counter()
        self._windows_done = 0
        self._windows_failed = 0
        self._last_result: dict[str, Any] = {}
        self._last_error = ""
        self._last_reject_log: dict[str, float] = {}
        self._exact_stamps: OrderedDict[float, tuple[int, int]] = OrderedDict()
        self._stamps_lock = threading.Lock()
        self._latest: tuple[Any, tuple[int, int]] | None = None  # (deformable, exact stamp) for ~/save_ply
        self._health = StreamHealth(("image", "camera_info", "camera_pose"))

        self._pose_source = PoseSource(self.options.pose_type, self.options.camera_from_body)
        image_qos, calibration_qos = qos.input_profiles(self.options.input_qos)
        if self.options.image_transport == "compressed":
            self._decoder = CompressedDecoder(self._take_image, self._reject)
            self._subscribe(CompressedImage, "image/compressed", self._on_compressed, image_qos)
        else:
            self._subscribe(Image, "image", self._on_image, image_qos)
        self._subscribe(CameraInfo, "camera_info", self._on_camera_info, calibration_qos)
        self._subscribe(self._pose_source.message_type, "camera_pose", self._on_pose, calibration_qos)
        self._pub_path = self.create_publisher(Path, "camera_path", OUTPUT_QOS)
        self._trigger_services = NodeServices(self, self.options.output_dir, lambda: self._latest, self.reset)
        self._pub_gaussians = self.create_publisher(PointCloud2, "gaussians", OUTPUT_QOS)
        self._pub_trajectories = self.create_publisher(PointCloud2, "trajectories", OUTPUT_QOS)
        self._pub_markers = self.create_publisher(MarkerArray, "tracks_markers", OUTPUT_QOS)
        self._pub_rendered = self.create_publisher(Image, "rendered", OUTPUT_QOS)
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

        self._worker = threading.Thread(target=self._work, name="dgslrm-worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: window {self.config.window_frames} frames every {self.config.window_stride}, "
            f"{self.config.image_width}x{self.config.image_height} px, device {self._reconstructor.device}, "
            f"weights: {self._reconstructor.weights}, outputs in '{self.config.world_frame}'; "
            f"camera_pose: {self.options.pose_type}, image: {self.options.image_transport}, "
            f"input_qos: {self.options.input_qos}"
        )

    def _subscribe(self, msg_type: type, topic: str, callback: Callable[[Any], None], profile: Any) -> None:
        """A guarded subscription that logs a QoS mismatch with the topic and both profiles (else silent)."""
        subscription = None

        def incompatible(event: Any) -> None:
            name = subscription.topic_name if subscription is not None else topic
            try:
                theirs = "; ".join(qos.describe(info.qos_profile) for info in self.get_publishers_info_by_topic(name))
            except Exception:  # noqa: BLE001 - the log line matters more than the detail
                theirs = "unknown"
            policy = getattr(getattr(event, "last_policy_kind", None), "name", str(getattr(event, "last_policy_kind", "")))
            self.get_logger().error(
                f"QoS incompatible on {name} ({event.total_count} publisher(s) so far, policy {policy}): this node "
                f"subscribes with [{qos.describe(profile)}] (input_qos: {self.options.input_qos}), publisher(s) "
                f"offer [{theirs}]; set input_qos to sensor_data (best effort matches every publisher) or "
                "change the publisher", throttle_duration_sec=THROTTLE_S)

        subscription = self.create_subscription(
            msg_type, topic, self._survive(callback), profile,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=incompatible))

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in PARAMETERS:
            try:
                if spec.type in (float, tuple):
                    values[spec.name] = self._declare_float(spec)
                    continue
                parameter = self.declare_parameter(spec.name, spec.default, descriptor(spec))
            except ParameterException as error:  # wrong type or out of the descriptor's range
                raise ParameterError(
                    f"parameter '{spec.name}': {error} (expected {spec.type.__name__} {spec.constraints()})"
                ) from error
            values[spec.name] = parameter.value
        return values

    def _declare_float(self, spec: ParamSpec) -> float | tuple[float, ...]:
        """A double (array) parameter that also takes an integer override (`frame_rate:=30`,
        `camera_from_body:=[0,0,0,0,0,0,1]`), as params.py promises.

        rclpy types `-p x:=30` as an integer and refuses it for a statically typed double, so the value
        is first read through a dynamically typed declaration, checked and coerced by the table (a
        string, a bool or a value out of range is refused naming the parameter), and the parameter is
        declared again as a read-only double holding the coerced value: `ros2 param get` shows 30.0.
        """
        value = self.declare_parameter(spec.name, spec.default, descriptor(spec, dynamic=True)).value
        self.undeclare_parameter(spec.name)
        checked = spec.check(value if spec.type is float else list(value))  # ParameterError naming the parameter
        checked = float(checked) if spec.type is float else list(checked)
        declared = self.declare_parameter(spec.name, checked, descriptor(spec), ignore_override=True).value
        return declared if spec.type is float else tuple(float(v) for v in declared)

    # ------------------------------------------------------------------ callbacks: convert + enqueue
    def _reject(self, kind: str, error: Exception | str) -> None:
        """Count a message that could not be converted; log once per kind per THROTTLE_S.

        Called from the executor and from the compressed-image decoder thread, hence the lock."""
        with self._reject_lock:
            self._rejected[kind] += 1
            count = self._rejected[kind]
            now = time.monotonic()
            due = now - self._last_reject_log.get(kind, -THROTTLE_S) >= THROTTLE_S
            if due:
                self._last_reject_log[kind] = now
        if due:
            self.get_logger().warning(f"rejected {kind} ({count} so far): {error}")

    def _survive(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """An exception in a callback would end the executor's spin, i.e. the node: count it instead."""

        def guarded(msg: Any) -> None:
            try:
                callback(msg)
            except Exception as error:  # noqa: BLE001 - input must never take the node down
                self._reject(f"callback_error_{callback.__name__.removeprefix('_on_')}",
                             f"{type(error).__name__}: {error}\n{traceback.format_exc()}")

        return guarded

    def _pipeline_log(self, level: str, message: str) -> None:
        """The stream layer's logger (it throttles per drop reason itself)."""
        logger = self.get_logger()
        # one call site per severity: rclpy refuses a call site whose severity changes between calls
        if level == "error":
            logger.error(message)
        elif level == "info":
            logger.info(message)
        elif level == "debug":
            logger.debug(message)
        else:
            logger.warning(message)

    def _on_image(self, msg: Image) -> None:
        self._received["image"] += 1
        self._health.arrived("image", time.monotonic())
        try:
            rgb = messages.image_to_rgb(msg)
        except ValueError as error:  # ConversionError and its kin
            kind = "unsupported_encoding" if isinstance(error, UnsupportedEncodingError) else "bad_image"
            self._reject(kind, error)
            return
        self._take_image(msg.header.stamp, rgb)

    def _on_compressed(self, msg: CompressedImage) -> None:
        """Enqueue only: the decoder thread calls _take_image (or _reject) once the payload is decoded."""
        self._received["image"] += 1
        self._health.arrived("image", time.monotonic())
        assert self._decoder is not None
        self._decoder.submit(msg)

    def _take_image(self, stamp_msg: Time, rgb: Any) -> None:
        """A decoded frame (executor or decoder thread) into the pipeline, its exact stamp remembered."""
        try:
            stamp = messages.stamp_seconds(stamp_msg)
        except ValueError as error:
            self._reject("bad_image", error)
            return
        with self._stamps_lock:  # before add_image: the worker may publish this frame's window at once
            self._exact_stamps[stamp] = (int(stamp_msg.sec), int(stamp_msg.nanosec))
            self._exact_stamps.move_to_end(stamp)
            while len(self._exact_stamps) > STAMP_MEMORY:
                self._exact_stamps.popitem(last=False)
        if self._reconstructor.add_image(stamp, rgb) is None:  # refusals are counted + logged there
            self._wake.set()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._received["camera_info"] += 1
        self._health.arrived("camera_info", time.monotonic())
        try:
            intrinsics = messages.camera_info_to_intrinsics(msg)
        except ValueError as error:
            self._reject("bad_camera_info", error)
            return
        self._reconstructor.add_camera_info(
            intrinsics.K, intrinsics.D, intrinsics.distortion_model, intrinsics.width, intrinsics.height
        )

    def _on_pose(self, msg: Any) -> None:
        """PoseStamped, Odometry or TransformStamped (pose_type), mapped to the camera by camera_from_body."""
        self._received["camera_pose"] += 1
        self._health.arrived("camera_pose", time.monotonic())
        try:
            stamp, world_T_cam, frame_id = self._pose_source.convert(msg)
        except ValueError as error:  # NaN, non-unit quaternion, bad stamp
            self._reject("bad_pose", error)
            return
        self._reconstructor.add_pose(stamp, world_T_cam, frame_id)

    def reset(self) -> None:
        """~/reset: empty the pipeline's buffers, restart tracks (ids keep counting), forget the last window."""
        self._reconstructor.reset()
        self._latest = None
        self._health.reset_latency()

    # ------------------------------------------------------------------ worker: reconstruct + publish
    def _work(self) -> None:
        while not self._stop.is_set():
            window = self._reconstructor.pop_window()
            if window is None:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            try:
                result = self._reconstructor.reconstruct(window)
            except Exception as error:  # one failed window must not end the stream
                self._windows_failed += 1
                self._last_error = f"{type(error).__name__}: {error}"
                detail = "" if isinstance(error, self._reconstruction_error) else "\n" + traceback.format_exc()
                self.get_logger().error(
                    f"window failed ({self._windows_failed} so far), continuing with the next: "
                    f"{self._last_error}{detail}", throttle_duration_sec=THROTTLE_S,
                )
                continue
            if self._stop.is_set():
                return
            try:
                self._publish_result(result)
            except Exception as error:  # context shut down under us, or a malformed result
                if self._stop.is_set() or not rclpy.ok(context=self.context):
                    return
                self._windows_failed += 1
                self._last_error = f"publishing: {type(error).__name__}: {error}"
                self.get_logger().error(f"{self._last_error}\n{traceback.format_exc()}",
                                        throttle_duration_sec=THROTTLE_S)

    def _publish_result(self, result: Any) -> None:
        header = messages.header(result.stamp, result.frame_id or self.config.world_frame)
        with self._stamps_lock:
            exact = self._exact_stamps.get(result.stamp)
        if exact is not None:  # the newest frame's own stamp, to the nanosecond
            header.stamp = Time(sec=exact[0], nanosec=exact[1])
        packed = window_messages(result)
        self._pub_gaussians.publish(messages.cloud_msg(packed.gaussians, header))
        self._pub_trajectories.publish(messages.cloud_msg(packed.trajectories, header))
        self._pub_markers.publish(messages.marker_array(packed.strips, header))
        self._pub_rendered.publish(messages.image_msg(packed.rendered, header))
        self._pub_path.publish(messages.path_msg(result.world_T_cam, result.stamps, header))
        self._latest = (result.deformable, (int(header.stamp.sec), int(header.stamp.nanosec)))
        now_ros = self.get_clock().now().nanoseconds * 1e-9
        self._health.published(time.monotonic(), now_ros - messages.stamp_seconds(header.stamp))
        self._windows_done += 1
        gaussians, tracks = packed.gaussians.width, packed.trajectories.height
        self._last_result = {"stamp": result.stamp, "seconds": float(result.seconds), "psnr": float(result.psnr),
                             "gaussians": gaussians, "tracks": tracks, "published_at": time.time()}
        self.get_logger().info(f"window at {result.stamp:.3f} s: {gaussians} Gaussians, {tracks} tracks, "
                               f"{result.seconds:.2f} s, PSNR {result.psnr:.1f} dB")

    # ------------------------------------------------------------------ diagnostics
    def status(self) -> dict[str, Any]:
        """Everything /diagnostics reports, as plain values: the pipeline's own figures (buffer fill,
        drops by reason, last reconstruction time and PSNR, device, weights) plus the node's."""
        values: dict[str, Any] = dict(self._reconstructor.diagnostics())
        values.update({f"received_{k}": v for k, v in sorted(self._received.items())})
        with self._reject_lock:  # the decoder thread may add a kind meanwhile
            rejected = dict(self._rejected)
        values.update({f"rejected_{k}": v for k, v in sorted(rejected.items())})
        values["windows_published"] = self._windows_done
        values["windows_failed"] = self._windows_failed
        values["last_error"] = self._last_error
        for key, value in self._last_result.items():
            values[f"last_window_{key}"] = value
        values.update(self._health.values(time.monotonic()))
        values.update(gpu_memory(self._reconstructor.device))
        values.update(memory_status())  # own RSS, malloc heap in use / kept free, Python heap
        return values

    def _publish_diagnostics(self) -> None:
        try:
            with self._reject_lock:
                image_rejections = sum(count for kind, count in self._rejected.items()
                                       if "image" in kind or kind in ("unsupported_encoding", "decode_overflow"))
            level, message = self._health.judge(
                time.monotonic(), self._reconstructor.diagnostics(), frames=self._received["image"],
                rejected_images=image_rejections, windows_failed=self._windows_failed,
                windows_done=self._windows_done, last_error=self._last_error)
            values = self.status()
            msg = messages.diagnostics(
                values, stamp_msg=self.get_clock().now().to_msg(), name=f"{NODE_NAME}: pipeline",
                hardware_id=str(values.get("device", "")), level=level, message=message,
            )
            self._pub_diagnostics.publish(msg)
        except Exception as error:  # diagnostics must never take the node down
            self.get_logger().error(f"diagnostics: {type(error).__name__}: {error}",
                                    throttle_duration_sec=THROTTLE_S)

    # ------------------------------------------------------------------ shutdown
    @property
    def worker_busy(self) -> bool:
        """True while the worker thread still runs (e.g. a long CPU window after stop())."""
        return self._worker is not None and self._worker.is_alive()

    def stop(self) -> None:
        """Stop the decoder and the worker (finishing at most the window in flight) and wait for them."""
        if self._decoder is not None:
            self._decoder.stop()
        self._stop.set()
        self._wake.set()
        worker = self._worker
        if worker is not None and worker.is_alive() and threading.current_thread() is not worker:
            worker.join(SHUTDOWN_JOIN_S)
            if worker.is_alive():
                self.get_logger().warning(
                    f"worker still inside a window after {SHUTDOWN_JOIN_S:.0f} s; abandoning that window")

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()
