"""Stream a recorded scene as live ROS 2 topics: `image`, `camera_info`, `camera_pose`.

The scene is an .npz written by `save_scene` (frames uint8 [T, H, W, 3], K [3, 3], world_T_cam
[T, 4, 4], timestamps [T] s). Used by `dgslrm demo` and the DDS tests as a separate process, so the
node sees exactly what a camera driver and a localiser would send. `--bad-inputs` first sends what a
misbehaving robot sends (images before any camera_info, an unsupported encoding, a NaN pose, a stamp
jumping seconds backwards, as when a bag loops) to show the node survives it.

    python -m dgslrm_ros.ros.demo_publisher SCENE.npz [--speed 1.0] [--bad-inputs]
        [--pose-type odometry --camera-from-body X Y Z QX QY QZ QW] [--image-transport compressed --format png]
        [--qos reliable|best_effort]

The pose and image options publish what other robots send (a VIO's Odometry of its IMU frame, a
TF-bridge TransformStamped, image_transport's compressed stream) so the node's sources can be
checked against the plain PoseStamped + Image run of the same scene.
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
    parser.add_argument("--pose-type", default="pose_stamped", choices=["pose_stamped", "odometry", "transform_stamped"],
                        help="message type on camera_pose (the node's pose_type)")
    parser.add_argument("--camera-from-body", type=float, nargs=7, default=None, metavar="V",
                        help="x y z qx qy qz qw: publish the pose of a body frame with this camera_T_body instead "
                             "of the camera's own pose (the node's camera_from_body undoes it)")
    parser.add_argument("--image-transport", default="raw", choices=["raw", "compressed"],
                        help="raw: Image on `image`; compressed: CompressedImage on `image/compressed`")
    parser.add_argument("--format", default="jpeg", choices=["jpeg", "png"], help="compression of --image-transport compressed")
    parser.add_argument("--qos", default="reliable", choices=["reliable", "best_effort"],
                        help="reliability of the input publishers")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from dgslrm_ros.convert.pose import extrinsic_to_matrix
    from dgslrm_ros.ros import messages
    from dgslrm_ros.ros.pose_sources import POSE_SOURCES
    from dgslrm_ros.ros.qos import INPUT_PUBLISHER_QOS

    scene = np.load(args.scene)
    frames, K, poses, stamps = scene["frames"], scene["K"], scene["world_T_cam"], scene["timestamps"]
    height, width = frames.shape[1:3]
    rclpy.init()
    node = rclpy.create_node("dgslrm_demo_publisher")
    log = node.get_logger()
    profile = INPUT_PUBLISHER_QOS if args.qos == "reliable" else QoSProfile(
        depth=INPUT_PUBLISHER_QOS.depth, reliability=ReliabilityPolicy.BEST_EFFORT)
    compressed = args.image_transport == "compressed"
    pub_image = (node.create_publisher(CompressedImage, "image/compressed", profile) if compressed
                 else node.create_publisher(Image, "image", profile))
    pub_info = node.create_publisher(CameraInfo, "camera_info", profile)
    pub_pose = node.create_publisher(POSE_SOURCES[args.pose_type][0], "camera_pose", profile)
    camera_T_body = None if args.camera_from_body is None else extrinsic_to_matrix(args.camera_from_body)

    def image(rgb: np.ndarray, h):  # noqa: ANN001, ANN202
        return messages.compressed_image_msg(rgb, h, args.format) if compressed else messages.image_msg(rgb, h)

    def pose(world_T_cam: np.ndarray, h):  # noqa: ANN001, ANN202
        world_T_frame = world_T_cam if camera_T_body is None else world_T_cam @ camera_T_body  # world_T_body
        if args.pose_type == "odometry":
            return messages.odometry_msg(world_T_frame, h)
        if args.pose_type == "transform_stamped":
            return messages.transform_msg(world_T_frame, h)
        return messages.pose_msg(world_T_frame, h)

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
                pub_image.publish(image(frames[0], hdr(0, -1.0)))
            if compressed:  # a payload cut in half: corrupt, not a crash
                bad = image(frames[0], hdr(0, -0.9))
                bad.data = bytes(bad.data)[: len(bad.data) // 2]
            else:
                bad = messages.image_msg(frames[0], hdr(0, -0.9))
                bad.encoding, bad.step = BAD_ENCODING, width * 6
                bad.data = bytes(width * 6 * height)
            pub_image.publish(bad)
            nan_pose = pose(poses[0], hdr(0, -0.8))
            inner = nan_pose.transform.translation if args.pose_type == "transform_stamped" else (
                nan_pose.pose.pose.position if args.pose_type == "odometry" else nan_pose.pose.position)
            inner.x = float("nan")
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
            pub_pose.publish(pose(poses[i], h))
            pub_info.publish(messages.camera_info_msg(K, width, height, h))
            pub_image.publish(image(frames[i], h))
            if args.bad_inputs and i == BACKWARDS_AFTER:  # early, so full windows follow it
                pub_image.publish(image(frames[i], hdr(0, -BACKWARDS_JUMP_S)))
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
