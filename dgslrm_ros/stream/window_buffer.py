"""Cutting the stream of admitted frames into overlapping windows (paper.md: chained windows).

A window of `window_frames` frames is emitted every `window_stride` admitted frames, so consecutive
windows share `window_frames - window_stride` instants; the track registry chains them there. A big
forward gap in the stamps (the camera was off, a bag was paused) ends the sequence: frames on both
sides of a gap cannot share one window. When a sequence ends (gap, stamps going backwards, end of a
bag), the frames after its last window are not thrown away: a *tail* window of the newest
`window_frames` frames is emitted, so every accepted frame is reconstructed when the sequence had at
least one full window.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from dgslrm_ros.stream.frames import Frame

# A gap larger than this many frame periods between admitted frames starts a new window sequence.
JUMP_PERIODS = 5.0


@dataclass(frozen=True)
class Window:
    """One live window handed to the worker: camera frames oldest first, no ground truth (not data.WindowSample)."""

    frames: tuple[Frame, ...]
    sequence: int  # increments when the stream restarts (gap, backwards stamps); tracks do not cross it
    index: int  # window number inside its sequence
    tail: bool = False  # emitted at the end of a sequence (overlaps its predecessor more than usual)

    @property
    def stamps(self) -> np.ndarray:
        """[T] float64 seconds."""
        return np.array([f.stamp for f in self.frames], dtype=np.float64)

    @property
    def stamp(self) -> float:
        """The newest frame's stamp: the instant the window's outputs describe."""
        return self.frames[-1].stamp


@dataclass(frozen=True)
class SequenceEnd:
    """What ending a sequence produced: an optional tail window and the frames never reconstructed."""

    window: Window | None
    lost_frames: int  # admitted frames of a sequence too short for one window


class WindowBuffer:
    """Holds at most `window_frames` frames; not thread-safe (the pipeline's lock guards it)."""

    def __init__(self, window_frames: int, window_stride: int, frame_period: float) -> None:
        if not 1 <= window_stride <= window_frames:
            raise ValueError(f"window_stride: expected 1..window_frames={window_frames}, got {window_stride}")
        self.window_frames = window_frames
        self.window_stride = window_stride
        self.jump_seconds = JUMP_PERIODS * frame_period
        self._frames: deque[Frame] = deque(maxlen=window_frames)
        self._since_emit = 0  # frames appended since the last window (or the sequence start)
        self._emitted = 0  # windows emitted in this sequence
        self.sequence = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def last_stamp(self) -> float | None:
        return self._frames[-1].stamp if self._frames else None

    def add(self, frame: Frame) -> tuple[list[Window], SequenceEnd | None]:
        """Append a frame (stamps increasing); returns the windows it completes and, when its stamp
        jumped forward by more than JUMP_PERIODS frame periods, how the previous sequence ended."""
        ended = None
        windows: list[Window] = []
        last = self.last_stamp
        if last is not None and frame.stamp <= last:
            raise ValueError(f"WindowBuffer.add: stamps must increase, got {frame.stamp} after {last}")
        if last is not None and frame.stamp - last > self.jump_seconds:
            ended = self.end_sequence()
            if ended.window is not None:
                windows.append(ended.window)
        self._frames.append(frame)
        self._since_emit += 1
        full = len(self._frames) == self.window_frames
        if full and (self._emitted == 0 or self._since_emit >= self.window_stride):
            windows.append(self._emit(tail=False))
        return windows, ended

    def _emit(self, tail: bool) -> Window:
        window = Window(frames=tuple(self._frames), sequence=self.sequence, index=self._emitted, tail=tail)
        self._emitted += 1
        self._since_emit = 0
        return window

    def end_sequence(self) -> SequenceEnd:
        """Close the current sequence (tail window if frames are left over) and start a new one."""
        window, lost = None, 0
        if self._since_emit > 0:
            if self._emitted > 0 and len(self._frames) == self.window_frames:
                window = self._emit(tail=True)
            elif self._emitted == 0:
                lost = len(self._frames)
        had_frames = bool(self._frames) or self._emitted > 0
        self._frames.clear()
        self._since_emit = 0
        self._emitted = 0
        if had_frames:
            self.sequence += 1
        return SequenceEnd(window=window, lost_frames=lost)
