"""Message <-> numpy conversions: pure functions over message fields, no ROS import.

They accept any object carrying a message's attributes (rosbags or rclpy messages) and return numpy
arrays or NamedTuples of fields that `ros/` and `bags/` copy into their message classes; window.py
packs one reconstructed window for both. Import the module you need: nothing is re-exported here.
"""
