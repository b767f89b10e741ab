"""The one root of every exception dgslrm_ros raises on purpose.

Each class keeps its builtin base too (ValueError, RuntimeError, ...), so `except ValueError` callers
still work; a command line catches `DgslrmError` alone, prints the message and exits with status 2.
"""
from __future__ import annotations


class DgslrmError(Exception):
    """Something the user can fix: the message says what was expected, what came and what to do."""
