import pytest

from dgslrm_ros.convert.errors import StampError
from dgslrm_ros.convert.stamps import (
    STAMP_MATCH_NS,
    header_stamp_ns,
    nearest_stamped,
    ns_to_stamp,
    seconds_to_ns,
    seconds_to_stamp,
    stamp_to_ns,
    stamp_to_seconds,
)


def test_ns_round_trip_is_exact_at_epoch_magnitudes():
    ns = 1_764_000_000_123_456_789
    assert stamp_to_ns(*ns_to_stamp(ns)) == ns
    assert ns_to_stamp(ns) == (1_764_000_000, 123_456_789)


def test_seconds_split_avoids_float_multiplication_error():
    # 0.3 * 1e9 = 299999999.99999994 in floating point; naive int() would give ...999
    assert seconds_to_ns(0.3) == 300_000_000
    assert seconds_to_stamp(2.9999999999) == (3, 0)  # rounding carries into sec
    assert stamp_to_seconds(5, 500_000_000) == 5.5


def test_header_stamp_of_rosbags_message(header):
    assert header_stamp_ns(type("M", (), {"header": header(7, 8)})) == 7_000_000_008


@pytest.mark.parametrize("call", [lambda: stamp_to_ns(1, 10**9), lambda: ns_to_stamp(-1), lambda: seconds_to_ns(float("nan"))])
def test_out_of_range_stamps_raise(call):
    with pytest.raises(StampError):
        call()


def test_nearest_stamped_takes_the_closest_within_the_tolerance_only():
    store = {1_000: "a", 5_000_000: "b"}
    assert nearest_stamped(store, 3_000_000) is None  # b is nearest (2 ms), but further than the tolerance
    assert nearest_stamped(store, 4_500_000) == "b"
    assert nearest_stamped(store, 3_000_000, tolerance_ns=2_000_000) == "b"
    assert nearest_stamped(store, 1_000 + STAMP_MATCH_NS) == "a"
    assert nearest_stamped(store, 2_000 + STAMP_MATCH_NS) is None
    assert nearest_stamped({}, 0) is None
