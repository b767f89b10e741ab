"""matplotlib for figures written to files: one loader, so every figure uses the display-free backend."""
from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on a robot, a server or in CI); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 100):
    """Lay the figure out, write it to `path` (folders made) and free it -> the path (a pathlib.Path)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
