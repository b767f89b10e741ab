"""Suite-wide settings that must be in place before torch is imported by any test module."""
import os

# torch's OpenMP workers busy-wait by default; with 2 cores shared by subprocesses (ROS nodes, data
# workers) that makes CPU rendering 4-30x slower. libgomp reads this once, at load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
