"""Record dgslrm_node's outputs, as received over DDS, into an mcap bag.

Subscriptions are raw (serialised CDR), so the bag holds byte-for-byte what the node published; the
log time is the receive time (wall clock), so `log_time - header.stamp` is the end-to-end latency.
Prints one line per message (`RECEIVED <topic> <count>`) so a parent process can follow progress,
and closes the bag cleanly on SIGINT/SIGTERM.

    python -m dgslrm_ros.ros.recorder OUT_BAG_DIR [--inputs]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dgslrm_ros.bags import topics

# topic -> ROS 2 message type; relative names resolve like the node's (same namespace).
OUTPUT_TOPICS: dict[str, str] = {
    topics.GAUSSIANS: topics.POINTCLOUD2_TYPE,
    topics.TRAJECTORIES: topics.POINTCLOUD2_TYPE,
    topics.TRACKS_MARKERS: topics.MARKER_ARRAY_TYPE,
    topics.RENDERED: topics.IMAGE_TYPE,
    topics.CAMERA_PATH: topics.PATH_TYPE,
    topics.DIAGNOSTICS: topics.DIAGNOSTIC_ARRAY_TYPE,
}
INPUT_TOPICS: dict[str, str] = {
    topics.IMAGE: topics.IMAGE_TYPE,
    topics.CAMERA_INFO: topics.CAMERA_INFO_TYPE,
    topics.CAMERA_POSE: topics.POSE_STAMPED_TYPE,
}


def _message_class(msgtype: str) -> type:
    import importlib

    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="output bag folder (must not exist)")
    parser.add_argument("--inputs", action="store_true", help="also record image, camera_info, camera_pose")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    import rclpy
    from rclpy.executors import ExternalShutdownException

    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.ros.qos import DIAGNOSTICS_QOS, INPUT_PUBLISHER_QOS, RECORDER_QOS

    wanted = dict(OUTPUT_TOPICS)
    if args.inputs:
        wanted.update(INPUT_TOPICS)
    writer = BagWriter(args.bag, storage="mcap").open()
    rclpy.init()
    node = rclpy.create_node("dgslrm_recorder")
    counts: dict[str, int] = {}
    try:
        for topic, msgtype in wanted.items():
            qos = (DIAGNOSTICS_QOS if topic == topics.DIAGNOSTICS
                   else INPUT_PUBLISHER_QOS if topic in INPUT_TOPICS else RECORDER_QOS)

            def on_message(data: bytes, topic: str = topic, msgtype: str = msgtype) -> None:
                writer.write_raw(topic, msgtype, data, time.time_ns())
                counts[topic] = counts.get(topic, 0) + 1
                print(f"RECEIVED {topic} {counts[topic]}", flush=True)

            node.create_subscription(_message_class(msgtype), topic, on_message, qos, raw=True)
        print("READY", flush=True)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
        print(f"CLOSED {args.bag} {counts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
