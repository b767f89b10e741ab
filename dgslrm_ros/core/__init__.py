"""Geometry and representation shared by every layer: cameras, poses, rotations, Gaussians, PLY."""
