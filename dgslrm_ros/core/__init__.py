"""Shared by every layer: cameras, poses, rotations, Gaussians, PLY; errors, parameter rows, device, JSON."""
