"""dgslrm_ros: feed-forward deformable 3D Gaussian reconstruction (DGS-LRM) for ROS 2.

The core library (everything but `dgslrm_ros.ros`) never imports rclpy, so it runs and is tested
without ROS.
"""

__version__ = "0.1.0"
