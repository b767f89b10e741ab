"""`image_transport: compressed`: CompressedImage payloads decoded on a thread of their own.

Decoding a 640x480 JPEG costs milliseconds, a 1080p PNG tens of them; done in the subscription
callback it would stall the executor (poses, camera_info, services). The callback only enqueues into
a small bounded queue that drops the oldest (counted as `decode_overflow`): a robot wants the newest
frame. One thread keeps the frames in arrival order, which the windows need.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

import numpy as np

from dgslrm_ros.convert.compressed import compressed_to_rgb
from dgslrm_ros.convert.errors import CompressedImageError

DECODE_QUEUE = 8  # frames waiting for the decoder; older ones are dropped first

Deliver = Callable[[Any, np.ndarray], None]  # (the message's header stamp, RGB uint8 [H, W, 3])
Reject = Callable[[str, Exception | str], None]  # (kind, error): counted and logged throttled by the node


class CompressedDecoder:
    """Bounded queue + one decoding thread; `submit` never blocks and never raises."""

    def __init__(self, deliver: Deliver, reject: Reject, depth: int = DECODE_QUEUE) -> None:
        self._deliver = deliver
        self._reject = reject
        self._queue: deque[Any] = deque()
        self._depth = depth
        self._ready = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dgslrm-decoder", daemon=True)
        self._thread.start()

    def submit(self, msg: Any) -> None:
        with self._ready:
            if len(self._queue) >= self._depth:
                self._queue.popleft()
                self._reject("decode_overflow", f"more than {self._depth} compressed images waiting to be decoded; "
                                                "oldest dropped (the CPU cannot decode at the input rate)")
            self._queue.append(msg)
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopped:
                    self._ready.wait()
                if self._stopped:
                    return
                msg = self._queue.popleft()
            try:
                rgb = compressed_to_rgb(msg)
            except CompressedImageError as error:
                self._reject(f"{error.reason}_compressed_image", error)
                continue
            try:
                self._deliver(msg.header.stamp, rgb)
            except Exception as error:  # noqa: BLE001 - the decoder thread must outlive any one frame
                self._reject("callback_error_image", f"{type(error).__name__}: {error}")

    def stop(self, timeout: float = 2.0) -> None:
        with self._ready:
            self._stopped = True
            self._ready.notify()
        self._thread.join(timeout)
