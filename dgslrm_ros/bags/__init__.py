"""ROS 2 bags with `rosbags` (never rclpy): writer, typed reader, synthetic scenes with ground truth."""
