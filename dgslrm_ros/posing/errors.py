"""Errors of `dgslrm pose`: each says what was expected, what came, and what to do."""
from __future__ import annotations

from dgslrm_ros.core.errors import DgslrmError

INSTALL_HINT = ("install the optional posing extras: pip install 'dgslrm_ros[pose]' "
                "(or: pip install pycolmap opencv-python-headless)")


class PoseError(DgslrmError, RuntimeError):
    """Posing cannot go on; nothing has been written to the output."""


class PoseOptionError(DgslrmError, ValueError):
    """An option of `dgslrm pose` is out of range (refused before the source is read)."""


class MissingDependencyError(PoseError):
    """pycolmap or OpenCV is not installed."""


class SourceError(PoseError):
    """The video / image folder / bag cannot be read or holds no usable images."""


class TooFewFramesError(PoseError):
    """Fewer frames were picked than COLMAP needs."""


class RegistrationError(PoseError):
    """COLMAP registered too few of the frames."""


def require_cv2():
    """Import OpenCV or explain how to install it."""
    try:
        import cv2
    except ImportError as error:
        raise MissingDependencyError(f"OpenCV (cv2) is not installed; {INSTALL_HINT}") from error
    return cv2


def require_pycolmap():
    """Import pycolmap or explain how to install it."""
    try:
        import pycolmap
    except ImportError as error:
        raise MissingDependencyError(f"pycolmap is not installed; {INSTALL_HINT}") from error
    return pycolmap
