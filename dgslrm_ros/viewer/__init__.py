"""`dgslrm view`: a browser viewer (viser) of a window's Gaussians as splats, their motion and the tracks.

Split so the scene is testable without a browser or viser:
* `scene.py`: what is drawn, as numpy (a `ViewerWindow` and pure functions: positions at an instant,
  covariances, track segments coloured by speed, the side panel's figures);
* `sources.py`: files -> `ViewerWindow`s (window safetensors, 3DGS PLY, output bags, replay folders);
* `app.py`: the viser wiring (layers, time slider, controls); the only module that imports viser.

Layer: beside `bags`/`cli` at the top (it reads bags through `bags/`); it never imports `ros/`: the
live mode's subscriber lives in `ros/view_listener.py` and `cli/view.py` joins the two.
"""
