"""Stream a recorded scene as live ROS 2 topics: `image`, `camera_info`, `camera_pose`.

The scene is an .npz written by `save_scene` (frames uint8 [T, H, W, 3], K [3, 3], world_T_cam
[T, 4, 4], timestamps [T] s). Used by `dgslrm demo` and the DDS tests as a separate process, so the
node sees exactly what a camera driver and a localiser would send. `--bad-inputs` first sends what a
misbehaving robot sends (images before any camera_info, an unsupported encoding, a NaN pose, a stamp
jumping seconds backwards, as when a bag loops) to show the node survives it.

    python -m dgslrm_ros.ros.demo_publisher SCENE.npz [--speed 1.0] [--bad-inputs]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

BAD_ENCODING = "bgr16"
BACKWARDS_AFTER = 3  # with --bad-inputs, after this frame an image stamped before frame 0 is sent
# ... this many seconds before frame 0: a stream restart (the node resets its window buffer), well
# beyond the node's IMAGE_RESET_S, under which an older stamp is mere jitter (that image dropped alone)
BACKWARDS_JUMP_S = 5.0


def save_scene(path: str | Path, frames: np.ndarray, K: np.ndarray, world_T_cam: np.ndarray,
               timestamps: np.ndarray) -> Path:
    """frames uint8 [T, H, W, 3], K [3, 3], world_T_cam [T, 4, 4], timestamps [T] -> .npz for this publisher."""
    frames = np.asarray(frames)
    n = frames.shape[0]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames: expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if np.shape(K) != (3, 3) or np.shape(world_T_cam) != (n, 4, 4) or np.shape(timestamps) != (n,):
        raise ValueError(f"expected K [3, 3], world_T_cam [{n}, 4, 4], timestamps [{n}], got "
                         f"{np.shape(K)}, {np.shape(world_T_cam)}, {np.shape(timestamps)}")
    path = Path(path)
    np.savez(path, frames=frames, K=np.asarray(K, np.float64), world_T_cam=np.asarray(world_T_cam, np.float64),
             timestamps=np.asarray(timestamps, np.float64))
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene", type=Path, help=".npz written by save_scene()")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (1 = the scene's frame rate)")
    parser.add_argument("--stamp-origin", type=float, default=-1.0,
                        help="stamp of the first frame in s (default: wall-clock now, so latency is measurable)")
    parser.add_argument("--world-frame", default="world")
    parser.add_argument("--wait-subscriber", type=float, default=20.0,
                        help="seconds to wait for the node's subscriptions before streaming")
    parser.add_argument("--subscribers", type=int, default=1,
                        help="readers each input topic must have before streaming (the node, a recorder, ...)")
    parser.add_argument("--bad-inputs", action="store_true", help="also send malformed inputs first")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import CameraInfo, Image

    from dgslrm_ros.ros import messages
    from dgslrm_ros.ros.qos import INPUT_PUBLISHER_QOS

    scene = np.load(args.scene)
    frames, K, poses, stamps = scene["frames"], scene["K"], scene["world_T_cam"], scene["timestamps"]
    height, width = frames.shape[1:3]
    rclpy.init()
    node = rclpy.create_node("dgslrm_demo_publisher")
    log = node.get_logger()
    pub_image = node.create_publisher(Image, "image", INPUT_PUBLISHER_QOS)
    pub_info = node.create_publisher(CameraInfo, "camera_info", INPUT_PUBLISHER_QOS)
    pub_pose = node.create_publisher(PoseStamped, "camera_pose", INPUT_PUBLISHER_QOS)
    try:
        deadline = time.monotonic() + args.wait_subscriber
        while (min(p.get_subscription_count() for p in (pub_image, pub_info, pub_pose)) < args.subscribers
               and time.monotonic() < deadline):
            time.sleep(0.05)
        time.sleep(0.3)  # let the reliable readers finish matching before the first sample
        origin = time.time() if args.stamp_origin < 0 else args.stamp_origin

        def hdr(i: int, offset: float = 0.0):  # noqa: ANN202
            return messages.header(origin + float(stamps[i]) + offset, args.world_frame)

        if args.bad_inputs:
            # 1. images before any camera_info; 2. an encoding the node does not decode; 3. a NaN pose.
            for _ in range(2):
                pub_image.publish(messages.image_msg(frames[0], hdr(0, -1.0)))
            bad = messages.image_msg(frames[0], hdr(0, -0.9))
            bad.encoding, bad.step = BAD_ENCODING, width * 6
            bad.data = bytes(width * 6 * height)
            pub_image.publish(bad)
            nan_pose = messages.pose_msg(poses[0], hdr(0, -0.8))
            nan_pose.pose.position.x = float("nan")
            pub_pose.publish(nan_pose)
            time.sleep(0.2)

        # Intrinsics first: on separate topics the first image could overtake its camera_info.
        pub_info.publish(messages.camera_info_msg(K, width, height, hdr(0)))
        time.sleep(0.2)
        period = float(np.median(np.diff(stamps))) / args.speed if len(stamps) > 1 else 0.1
        start = time.monotonic()
        for i in range(len(frames)):
            if not rclpy.ok():
                break
            delay = start + i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            h = hdr(i)
            pub_pose.publish(messages.pose_msg(poses[i], h))
            pub_info.publish(messages.camera_info_msg(K, width, height, h))
            pub_image.publish(messages.image_msg(frames[i], h))
            if args.bad_inputs and i == BACKWARDS_AFTER:  # early, so full windows follow it
                pub_image.publish(messages.image_msg(frames[i], hdr(0, -BACKWARDS_JUMP_S)))
        log.info(f"published {len(frames)} frames of {width}x{height} at {1.0 / period:.1f} Hz")
        time.sleep(0.5)  # reliable samples still in flight
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
