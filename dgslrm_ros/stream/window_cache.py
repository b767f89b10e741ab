"""The bookkeeping the node's per-window caches share (flow_cache.py, sweep_cache.py).

Each keeps only what the previous window computed, keyed by frame stamps, forgets it when the sequence
changes (a stamp jump or a reset: nothing of the last window applies), and counts what it reused and
what it computed since construction (for benchmarks and tests). One worker thread uses each.
"""
from __future__ import annotations

from typing import Generic, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


class PreviousWindowCache(Generic[Key, Value]):
    """Entries of the previous window of one sequence, and the reused / computed counts."""

    def __init__(self) -> None:
        self._entries: dict[Key, Value] = {}
        self._sequence: int | None = None
        self.reused = 0
        self.computed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def _start_window(self, sequence: int) -> None:
        """Called first for every window: a new sequence clears what the last one left."""
        if sequence != self._sequence:
            self.clear()
            self._sequence = sequence
