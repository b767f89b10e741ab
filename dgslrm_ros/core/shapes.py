"""Broadcasting of batch shapes without torch.broadcast_shapes.

torch.broadcast_shapes imports torch.fx's symbolic shapes, and with them sympy, on its first call: 0.53-0.59 s
and 35 MB of peak RSS on the 2-core dev machine (torch 2.13), in every process that builds camera rays or
poses (the node paid it in its first window). numpy's rule is the same rule, and nothing else the node
runs imports sympy.
"""
from __future__ import annotations

import numpy as np
import torch


def broadcast_shape(*shapes: tuple[int, ...] | torch.Size) -> torch.Size:
    """The shape that `shapes` broadcast to (ValueError where they do not)."""
    return torch.Size(np.broadcast_shapes(*(tuple(shape) for shape in shapes)))
