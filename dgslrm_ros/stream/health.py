"""What /diagnostics tells a user at a glance: input rates, window rate, latency, losses, and a level.

The one severity rule of the node and `dgslrm replay` (no ROS here): both feed it arrivals and published
windows as they happen (the node on its monotonic clock, replay on the bag's log time) and the pipeline's
counters (`judge`: node once a period, replay per window); levels are judged over recent history, not
since the first image, so a node that recovered from a bad minute goes back to OK:

* ERROR: frames keep arriving but no window was reconstructed for `STALL_S` (or none ever, after a
  window failed);
* WARN: in the last `RECENT_S`, more than `DROP_FRACTION` of the frames, or any window, was dropped
  (or the weights are untrained);
* OK otherwise.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

RECENT_S = 10.0  # the "last 10 s" of the WARN rule and of the rates
STALL_S = 30.0  # no window for this long while frames arrive: ERROR
DROP_FRACTION = 0.10
OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


class RateMeter:
    """Arrivals per second over the last RECENT_S (0 when nothing came)."""

    def __init__(self, span_s: float = RECENT_S) -> None:
        self.span_s = span_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.span_s:
            self._times.popleft()

    def hz(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        # over the span actually covered, so a stream that started 2 s ago is not under-reported
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self._times)


@dataclass
class _Sample:
    time: float
    frames: int  # images received (decoded or not)
    dropped: int  # images lost (any reason)
    windows_lost: int  # windows dropped (overflow) or failed


class StreamHealth:
    """Running figures of one stream; `now`: seconds on one steady clock (monotonic, or a bag's log time)."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.rates = {topic: RateMeter() for topic in topics}
        self.windows = RateMeter()
        self.start: float | None = None  # the first image: counters are zero and the stall clock starts there
        self.last_window_at: float | None = None
        self.latency_last = math.nan
        self.latency_sum = 0.0
        self.latency_max = math.nan
        self.latency_count = 0
        self._samples: deque[_Sample] = deque()

    def arrived(self, topic: str, now: float) -> None:
        if self.start is None and topic == "image":
            self.start = now
            self._samples.append(_Sample(now, 0, 0, 0))
        self.rates[topic].tick(now)

    def published(self, now: float, latency_s: float) -> None:
        """A window went out; latency = publish time - newest frame stamp (s)."""
        self.windows.tick(now)
        self.last_window_at = now
        self.latency_last = latency_s
        self.latency_sum += latency_s
        self.latency_count += 1
        self.latency_max = latency_s if math.isnan(self.latency_max) else max(self.latency_max, latency_s)

    def reset_latency(self) -> None:
        self.latency_last = self.latency_max = math.nan
        self.latency_sum, self.latency_count = 0.0, 0

    def sample(self, now: float, frames: int, dropped: int, windows_lost: int) -> None:
        """Cumulative counters at `now` (called once per diagnostics period)."""
        self._samples.append(_Sample(now, frames, dropped, windows_lost))
        while len(self._samples) > 1 and self._samples[1].time <= now - RECENT_S:
            self._samples.popleft()

    def recent(self) -> tuple[int, int, int]:
        """(frames, dropped frames, lost windows) over the last RECENT_S (since the oldest sample kept)."""
        if not self._samples:
            return 0, 0, 0
        first, last = self._samples[0], self._samples[-1]
        return last.frames - first.frames, last.dropped - first.dropped, last.windows_lost - first.windows_lost

    def values(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {f"rate_{topic.replace('/', '_')}_hz": meter.hz(now) for topic, meter in self.rates.items()}
        out["windows_per_s"] = self.windows.count(now) / RECENT_S
        out["latency_last_s"] = self.latency_last
        out["latency_mean_s"] = self.latency_sum / self.latency_count if self.latency_count else math.nan
        out["latency_max_s"] = self.latency_max
        frames, dropped, windows_lost = self.recent()
        out["recent_frames"] = frames
        out["recent_frames_dropped"] = dropped
        out["recent_windows_lost"] = windows_lost
        return out

    def judge(self, now: float, pipeline: Mapping[str, Any], *, frames: int, rejected_images: int = 0,
              windows_failed: int = 0, windows_done: int, last_error: str = "") -> tuple[int, str]:
        """Sample the counters of StreamingReconstructor.diagnostics() at `now`, judge the level. `frames`:
        images received (rejected ones too); frames the frame_rate gate skips are skipped on purpose."""
        lost = int(pipeline["dropped_frames_total"]) - int(pipeline["dropped_rate"]) + rejected_images
        self.sample(now, frames, lost, int(pipeline["dropped_window_overflow"]) + windows_failed)
        return self.level(now, "image", failed_before_any=bool(last_error) and windows_done == 0,
                          untrained=pipeline.get("weights") == "untrained", last_error=last_error)

    def level(self, now: float, image_topic: str, *, failed_before_any: bool, untrained: bool,
              last_error: str = "") -> tuple[int, str]:
        """(OK|WARN|ERROR, one-line reason) by the rules of the module docstring."""
        frames_arriving = self.rates[image_topic].count(now) > 0
        since = now - (self.last_window_at if self.last_window_at is not None else self.start or 0.0)
        if frames_arriving and since >= STALL_S:
            return ERROR, f"no window reconstructed for {since:.0f} s while frames arrive" + (
                f": {last_error}" if last_error else "")
        if failed_before_any:
            return ERROR, f"no window reconstructed yet: {last_error}"
        reasons = []
        frames, dropped, windows_lost = self.recent()
        if frames and dropped > DROP_FRACTION * frames:
            reasons.append(f"{dropped} of {frames} frames dropped in the last {RECENT_S:.0f} s")
        if windows_lost:
            reasons.append(f"{windows_lost} windows dropped or failed in the last {RECENT_S:.0f} s")
        if untrained:
            reasons.insert(0, "weights untrained")
        return (WARN, "; ".join(reasons)) if reasons else (OK, "ok")


def gpu_memory(device: Any) -> dict[str, Any]:
    """Allocated / reserved CUDA memory in MB on `device` (a torch.device), empty on CPU."""
    if getattr(device, "type", "cpu") != "cuda":
        return {}
    import torch

    return {"gpu_memory_allocated_mb": torch.cuda.memory_allocated(device) / 2**20,
            "gpu_memory_reserved_mb": torch.cuda.memory_reserved(device) / 2**20,
            "gpu_memory_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20}
