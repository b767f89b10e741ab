"""Which keyframe pixels' positions deserve a published 3D track (the node's seed rule, and `dgslrm eval`'s
`published_*` scores of the same pixels).

A still point's depth comes from the plane sweep; where the sweep resolved no depth (confidence 0: no
distinct cost minimum, or too little parallax) it is a guess, metres off. A point that shows motion takes
its depth from its moving region (geometry.moving_depth) instead, and a still camera resolves no depth
at all, so its moving objects must keep their tracks. Torch-free at import: stream/config.py reads the
default without loading torch.
"""
from __future__ import annotations

DEFAULT_MIN_TRACK_CONFIDENCE = 0.0  # the node's `min_track_confidence` and `dgslrm eval`'s default
MOVING_GATE = 0.0  # a keyframe pixel whose motion gate (geometry.lifting.motion_gate) exceeds this shows motion:
# any opening (on the training windows > 0 kept 90 % of the moving pixels, > 0.5 88 %, at the same error)


def trusted_seed_pixels(sweep_confidence, gate, min_confidence: float = DEFAULT_MIN_TRACK_CONFIDENCE):
    """bool [Kf, H, W] (torch): the sweep's confidence exceeds `min_confidence`, or the point shows motion.

    sweep_confidence, gate [Kf, 1, H, W] (GeometryCues of one window). At -1 (the parameters' sentinel) every
    pixel passes, as the confidence is never negative. At 0 (the default) the pixels left
    out are those where the sweep resolved no depth and the tracks show no motion. On 8 training-split
    `dynamic` windows they were 17 % of the keyframe pixels (10 % of the moving ones), with a mean track
    error of 10.2 m (network) / 11.1 m (`classical`) against 1.0 / 1.7 m on the rest
    (docs/results/track_seeds.md). Untextured surfaces seen by a translating camera still pass: their
    tracks stand still where the static fit expects parallax, so the gate opens there."""
    return ((sweep_confidence > min_confidence) | (gate > MOVING_GATE))[:, 0]
