"""The compressed-image decoder thread: order kept, corrupt payloads counted by reason, bounded queue."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from dgslrm_ros.convert.compressed import rgb_to_compressed_fields
from dgslrm_ros.ros.image_sources import CompressedDecoder


def _msg(k: int, data: bytes | None = None) -> SimpleNamespace:
    rgb = np.full((4, 4, 3), k, np.uint8)
    fields = rgb_to_compressed_fields(rgb, "png")
    return SimpleNamespace(format=fields.format, data=fields.data if data is None else data,
                           header=SimpleNamespace(stamp=k))


def _wait(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert predicate()


def test_frames_come_out_in_order_and_corrupt_ones_are_rejected_by_reason() -> None:
    delivered, rejected = [], []
    decoder = CompressedDecoder(lambda stamp, rgb: delivered.append((stamp, int(rgb[0, 0, 0]))),
                                lambda kind, error: rejected.append(kind), depth=64)
    try:
        for k in range(10):
            decoder.submit(_msg(k, b"garbage" if k == 4 else None))
        _wait(lambda: len(delivered) + len(rejected) == 10)
        assert delivered == [(k, k) for k in range(10) if k != 4]
        assert rejected == ["corrupt_compressed_image"]
    finally:
        decoder.stop()


def test_a_slow_consumer_drops_the_oldest_and_counts_it() -> None:
    gate = threading.Event()
    delivered, rejected = [], []

    def deliver(stamp: int, rgb: np.ndarray) -> None:
        gate.wait(10)
        delivered.append(stamp)

    decoder = CompressedDecoder(deliver, lambda kind, error: rejected.append(kind), depth=2)
    try:
        decoder.submit(_msg(0))
        _wait(lambda: not decoder._queue)  # frame 0 is inside deliver, blocked on the gate
        for k in range(1, 6):
            decoder.submit(_msg(k))  # 1..5 into a queue of 2: 1, 2, 3 dropped
        gate.set()
        _wait(lambda: len(delivered) == 3)
        assert delivered == [0, 4, 5] and rejected == ["decode_overflow"] * 3
    finally:
        decoder.stop()
