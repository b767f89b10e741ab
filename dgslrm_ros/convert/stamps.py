"""ROS time stamps (sec, nanosec) <-> integer nanoseconds / float seconds.

Integer nanoseconds are the exact representation (rosbag2 log times use it); float seconds lose
precision beyond ~0.2 us at Unix-epoch magnitudes, so conversions from floats split the integer and
fractional parts instead of multiplying the whole value by 1e9.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple, TypeVar

from dgslrm_ros.convert.errors import StampError

NS_PER_S = 1_000_000_000
# Outputs carry their inputs' stamps, so a viewer pairs input images / poses with window frames to within this.
STAMP_MATCH_NS = 1_000_000
T = TypeVar("T")


class Stamp(NamedTuple):
    """builtin_interfaces/Time fields."""

    sec: int
    nanosec: int


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """(sec, nanosec) -> integer nanoseconds, exact."""
    sec, nanosec = int(sec), int(nanosec)
    if not 0 <= nanosec < NS_PER_S:
        raise StampError(f"stamp nanosec must be in [0, 1e9), got {nanosec}; normalise the stamp before publishing")
    return sec * NS_PER_S + nanosec


def ns_to_stamp(ns: int) -> Stamp:
    """Integer nanoseconds -> (sec, nanosec), exact (nanosec always in [0, 1e9))."""
    ns = int(ns)
    if ns < 0:
        raise StampError(f"expected a non-negative time in ns, got {ns}")
    sec, nanosec = divmod(ns, NS_PER_S)
    return Stamp(sec, nanosec)


def stamp_to_seconds(sec: int, nanosec: int) -> float:
    """(sec, nanosec) -> float seconds (the nearest double)."""
    return stamp_to_ns(sec, nanosec) / NS_PER_S


def seconds_to_ns(seconds: float) -> int:
    """Float seconds -> nearest integer nanoseconds, without the rounding error of `seconds * 1e9`."""
    if not math.isfinite(seconds) or seconds < 0:
        raise StampError(f"expected finite non-negative seconds, got {seconds}")
    whole = math.floor(seconds)
    return int(whole) * NS_PER_S + round((seconds - whole) * NS_PER_S)


def seconds_to_stamp(seconds: float) -> Stamp:
    """Float seconds -> (sec, nanosec) with nanosec in [0, 1e9) (carries on rounding up)."""
    return ns_to_stamp(seconds_to_ns(seconds))


def header_stamp_ns(msg: object) -> int:
    """Integer ns of `msg.header.stamp` for any message object with a std_msgs/Header."""
    stamp = msg.header.stamp  # type: ignore[attr-defined]
    return stamp_to_ns(stamp.sec, stamp.nanosec)


def nearest_stamped(store: Mapping[int, T], stamp_ns: int, tolerance_ns: int = STAMP_MATCH_NS) -> T | None:
    """The value keyed by the stamp (ns) nearest `stamp_ns` when within `tolerance_ns`, else None."""
    if not store:
        return None
    best = min(store, key=lambda k: abs(k - stamp_ns))
    return store[best] if abs(best - stamp_ns) <= tolerance_ns else None
