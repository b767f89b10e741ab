"""The /diagnostics level rules (stream/health.py, shared by the node and replay), driven with explicit
clocks: no DDS needed."""
from __future__ import annotations

import math

from dgslrm_ros.stream.health import ERROR, OK, RECENT_S, STALL_S, WARN, RateMeter, StreamHealth


def _health() -> StreamHealth:
    return StreamHealth(("image", "camera_pose"))  # the first image (at 0 s below) starts the clock


def _stream(health: StreamHealth, start: float, seconds: float, hz: float = 10.0) -> None:
    for k in range(int(seconds * hz)):
        health.arrived("image", start + k / hz)


def test_rate_meter_reports_hz_over_the_recent_span_only() -> None:
    meter = RateMeter()
    for k in range(50):
        meter.tick(k * 0.05)  # 20 Hz for 2.5 s
    assert math.isclose(meter.hz(2.5), 20.0, rel_tol=1e-6)
    assert meter.hz(2.45 + RECENT_S + 0.1) == 0.0  # nothing for longer than the span


def test_ok_then_warn_on_more_than_ten_percent_dropped_then_ok_again() -> None:
    health = _health()
    _stream(health, 0.0, 5.0)
    health.sample(0.0, frames=0, dropped=0, windows_lost=0)
    health.sample(5.0, frames=50, dropped=5, windows_lost=0)  # exactly 10%: fine
    health.published(5.0, latency_s=0.2)
    assert health.level(5.0, "image", failed_before_any=False, untrained=False) == (OK, "ok")
    health.sample(6.0, frames=60, dropped=12, windows_lost=0)  # 12 of 60 in the last 10 s
    level, message = health.level(6.0, "image", failed_before_any=False, untrained=False)
    assert level == WARN and "12 of 60 frames dropped" in message
    for t in range(7, 19):  # 12 clean seconds later the bad stretch is out of the window
        health.sample(float(t), frames=60 + 10 * (t - 6), dropped=12, windows_lost=0)
    _stream(health, 6.0, 12.0)
    health.published(18.0, latency_s=0.3)
    assert health.level(18.0, "image", failed_before_any=False, untrained=False)[0] == OK


def test_any_dropped_window_warns() -> None:
    health = _health()
    _stream(health, 0.0, 3.0)
    health.sample(1.0, frames=10, dropped=0, windows_lost=0)
    health.sample(3.0, frames=30, dropped=0, windows_lost=1)
    health.published(3.0, latency_s=0.1)
    level, message = health.level(3.0, "image", failed_before_any=False, untrained=False)
    assert level == WARN and "1 windows dropped" in message


def test_error_when_frames_arrive_but_no_window_for_thirty_seconds() -> None:
    health = _health()
    _stream(health, 0.0, STALL_S + 2.0)
    now = STALL_S + 1.0
    health.sample(now, frames=310, dropped=0, windows_lost=0)
    level, message = health.level(now, "image", failed_before_any=False, untrained=False, last_error="boom")
    assert level == ERROR and "no window reconstructed for 31 s" in message and "boom" in message
    idle = _health()  # no frames at all: nothing to reconstruct, not an error
    idle.sample(now, frames=0, dropped=0, windows_lost=0)
    assert idle.level(now, "image", failed_before_any=False, untrained=False)[0] == OK


def test_latency_last_mean_max_and_values() -> None:
    health = _health()
    for k, latency in enumerate((0.2, 0.6, 0.4)):
        health.published(float(k), latency)
    values = health.values(3.0)
    assert values["latency_last_s"] == 0.4 and values["latency_max_s"] == 0.6
    assert math.isclose(values["latency_mean_s"], 0.4)
    assert math.isclose(values["windows_per_s"], 3 / RECENT_S)
    health.reset_latency()
    assert math.isnan(health.values(3.0)["latency_max_s"])


def _pipeline(**counts: int) -> dict:
    """The counters StreamingReconstructor.diagnostics() reports that the rule reads."""
    return {"dropped_frames_total": 0, "dropped_rate": 0, "dropped_window_overflow": 0, "weights": "checkpoint x",
            **counts}


def test_judge_counts_losses_not_rate_skips_and_zero_starts_at_the_first_image() -> None:
    """What node and replay both call: frames the frame_rate gate skips are no loss; rejected images are."""
    health = StreamHealth(("image",))
    _stream(health, 100.0, 4.0)
    health.published(103.0, 0.0)
    skipped = _pipeline(dropped_frames_total=30, dropped_rate=30)  # 30 of 40 skipped by frame_rate: fine
    assert health.judge(104.0, skipped, frames=40, windows_done=1) == (OK, "ok")
    level, message = health.judge(104.5, _pipeline(dropped_frames_total=32, dropped_rate=30), frames=42,
                                  rejected_images=3, windows_done=1)
    assert level == WARN and "5 of 42 frames dropped" in message  # counted from zero at 100 s, not from 104 s
    level, message = health.judge(104.5, _pipeline(dropped_window_overflow=1), frames=42, windows_failed=1,
                                  windows_done=1)
    assert level == WARN and "2 windows dropped or failed" in message
    assert health.judge(104.5, _pipeline(weights="untrained"), frames=42, windows_done=1)[1].startswith("weights")
    failing = StreamHealth(("image", "camera_pose"))
    failing.arrived("camera_pose", -100.0)  # poses long before the camera: the stall clock starts at the first image
    _stream(failing, 0.0, 2.0)
    assert failing.level(2.0, "image", failed_before_any=False, untrained=False) == (OK, "ok")  # 2 s, not 102
    level, message = failing.judge(2.0, _pipeline(), frames=20, windows_failed=1, windows_done=0, last_error="boom")
    assert level == ERROR and message == "no window reconstructed yet: boom"
