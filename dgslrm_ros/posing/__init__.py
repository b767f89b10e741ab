"""Camera poses for real footage: video / image folder / camera-only bag -> COLMAP -> a posed bag.

`frames` decodes and picks frames, `colmap` runs pycolmap (SIFT, matching, incremental mapping,
undistortion), `scale` fixes the metric scale, `report` summarises the registration. OpenCV and
pycolmap are optional extras imported inside functions, so the node never needs them.
"""
