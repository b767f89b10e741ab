"""`dgslrm view --live` over real DDS: a publisher process sends one window on the node's topics (inputs
and outputs, the contract's QoS), and the viewer must assemble it: Gaussians, tracks paired by stamp,
the input cameras of the window's frames; then Ctrl-C stops it cleanly (also one started with SIGINT ignored)."""
from __future__ import annotations

import re
import socket

import pytest

pytestmark = pytest.mark.ros

PUBLISHER = r'''
import time, numpy as np, rclpy
from dgslrm_ros.convert.pointcloud import array_to_pointcloud_fields, gaussians_to_array, trajectories_to_array
from dgslrm_ros.ros import messages
from dgslrm_ros.ros.qos import INPUT_PUBLISHER_QOS, OUTPUT_QOS
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from geometry_msgs.msg import PoseStamped
rclpy.init()
node = rclpy.create_node("fake_dgslrm")
pubs = {name: node.create_publisher(kind, name, qos) for name, kind, qos in (
    ("cam/image_raw", Image, INPUT_PUBLISHER_QOS), ("camera_info", CameraInfo, INPUT_PUBLISHER_QOS),
    ("camera_pose", PoseStamped, INPUT_PUBLISHER_QOS), ("gaussians", PointCloud2, OUTPUT_QOS),
    ("trajectories", PointCloud2, OUTPUT_QOS))}
rng = np.random.default_rng(0)
stamps = 50.0 + 0.1 * np.arange(4)
n, m = 120, 7
K = np.array([[30.0, 0, 16.0], [0, 30.0, 12.0], [0, 0, 1]])
gaussians = gaussians_to_array(rng.normal(size=(n, 3)), rng.random((n, 3)), np.full(n, 0.8), np.full((n, 3), 0.05),
                               np.tile([1.0, 0, 0, 0], (n, 1)), rng.normal(size=(n, 3)))
tracks = trajectories_to_array(rng.normal(size=(m, 4, 3)), stamps - stamps[-1], np.arange(m), np.ones((m, 4)))
print("PUBLISHING", flush=True)
while rclpy.ok():
    for s in stamps:
        hdr = messages.header(s, "camera_optical")
        pubs["camera_info"].publish(messages.camera_info_msg(K, 32, 24, hdr))
        pose = np.eye(4); pose[0, 3] = s - stamps[0]
        pubs["camera_pose"].publish(messages.pose_msg(pose, messages.header(s, "world")))
        pubs["cam/image_raw"].publish(messages.image_msg(np.full((24, 32, 3), 90, np.uint8), hdr))
    time.sleep(0.2)
    hdr = messages.header(stamps[-1], "world")
    pubs["gaussians"].publish(messages.cloud_msg(array_to_pointcloud_fields(gaussians), hdr))
    pubs["trajectories"].publish(messages.cloud_msg(array_to_pointcloud_fields(tracks), hdr))
    rclpy.spin_once(node, timeout_sec=0.5)
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_viewer_assembles_windows_from_the_node_topics(dds):
    viewer = dds.spawn([dds.python, "-m", "dgslrm_ros.cli.main", "view", "--live", "--port", str(_free_port()),
                        "--image-topic", "cam/image_raw"], "viewer")  # a remapped camera, as on a robot
    # A second viewer, started as a shell starts a background job (SIGINT ignored), must still stop on
    # SIGINT, also before any window came: it once ignored it.
    ignored = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
               f"sys.argv = ['dgslrm', 'view', '--live', '--port', '{_free_port()}']; "
               "runpy.run_module('dgslrm_ros.cli.main', run_name='__main__')")
    idle = dds.spawn([dds.python, "-c", ignored], "idle viewer")
    viewer.wait_for(lambda: "waiting for dgslrm_node's windows" in viewer.output, 90, "the viewer to start")
    idle.wait_for(lambda: "waiting for dgslrm_node's windows" in idle.output, 90, "the idle viewer to start")
    rc, _ = idle.interrupt()
    assert rc == 0 and "dgslrm view: stopped" in idle.output, idle.output[-2000:]
    publisher = dds.spawn([dds.python, "-c", PUBLISHER], "publisher")
    publisher.wait_for(lambda: "PUBLISHING" in publisher.output, 60, "the publisher")
    complete = re.compile(r"window at t = 50\.300 s: 120 Gaussians, 7 tracks, 4 cameras \(4 with images\)")
    viewer.wait_for(lambda: complete.search(viewer.output) is not None, 90,
                    "a window with its Gaussians, tracks and the 4 input cameras with their images")
    rc, _ = viewer.interrupt()
    assert rc == 0 and "dgslrm view: stopped" in viewer.output, viewer.output[-2000:]
