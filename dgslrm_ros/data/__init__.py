"""Synthetic dynamic scenes with exact multi-view ground truth (depth, dense 3D scene flow, tracks).

Independent of the Gaussian renderer: scenes are analytic primitives, ray cast in closed form.
  scenes.py        SceneConfig, random scenes, continuous-time object motion (rigid and squash/stretch)
  camera_paths.py  hand-held / robot camera rigs (REP 103 optical world_T_cam), intrinsics, blur
  raycast.py       vectorised ray casting, textures, shading, visibility
  sequence.py      SyntheticSequence / generate_sequence (whole multi-camera videos, for bags and demos)
  sample.py        WindowSample: one window + ground truth (or a batch of them), normalised frame, GT scene flow
  dataset.py       WindowSamples from seeds, seed split, loader, cached split
  benchmark.py     samples/s for `dgslrm bench --data`
"""
