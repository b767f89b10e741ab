"""The ROS 2 shell: the only package that imports rclpy and message classes.

params.py (the parameter table), qos.py, messages.py (message objects <-> convert/), node.py
(DgslrmNode), main.py (the `dgslrm_node` entry point), and the demo's separate processes
demo_publisher.py and recorder.py.
"""
