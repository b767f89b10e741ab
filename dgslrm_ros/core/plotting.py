"""matplotlib for figures written to files: one loader, so every figure uses the display-free backend."""
from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on a robot, a server or in CI); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
