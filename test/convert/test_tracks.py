import numpy as np
import pytest

from dgslrm_ros.convert.errors import ConversionError
from dgslrm_ros.convert.tracks import OCCLUDED_ALPHA, speed_colormap, track_speeds, tracks_to_strips


def test_colours_follow_speed_and_gaps_are_skipped():
    ts = np.arange(4) * 0.5
    slow = np.stack([np.arange(4) * 0.1, np.zeros(4), np.zeros(4)], -1)  # 0.2 m/s
    fast = np.stack([np.arange(4) * 1.0, np.zeros(4), np.zeros(4)], -1)  # 2 m/s
    gappy = fast.copy()
    gappy[1] = np.nan
    lonely = np.full((4, 3), np.nan)
    lonely[0] = 0
    strips = tracks_to_strips(np.stack([slow, fast, gappy, lonely]), ts, np.array([10, 11, 12, 13]))
    assert [s.track_id for s in strips] == [10, 11, 12]  # a single valid sample makes no strip
    slow_s, fast_s, gappy_s = strips
    np.testing.assert_allclose(slow_s.speeds, 0.2, rtol=1e-6)
    np.testing.assert_allclose(fast_s.speeds, 2.0, rtol=1e-6)
    np.testing.assert_allclose(fast_s.colors[:, :3], [[1, 0, 0]] * 4)  # fastest = red
    assert slow_s.colors[0, 2] > slow_s.colors[0, 0]  # slow = blueish
    assert gappy_s.points.shape == (3, 3) and np.isfinite(gappy_s.colors).all()
    np.testing.assert_allclose(gappy_s.speeds, 2.0, rtol=1e-6)


def test_occluded_samples_are_fainter_and_max_speed_is_absolute():
    tracks = np.stack([np.arange(3) * 1.0, np.zeros(3), np.zeros(3)], -1)[None]
    strips = tracks_to_strips(tracks, np.arange(3.0), [0], visible=np.array([[1.0, 0.0, 1.0]]), max_speed=2.0)
    np.testing.assert_allclose(strips[0].colors[:, 3], [1.0, OCCLUDED_ALPHA, 1.0])
    np.testing.assert_allclose(strips[0].colors[0, :3], speed_colormap(0.5))


def test_speeds_and_validation():
    tracks = np.zeros((1, 3, 3))
    tracks[0, :, 0] = [0, 1, 3]
    np.testing.assert_allclose(track_speeds(tracks, np.array([0.0, 1.0, 2.0])), [[1, 1, 2]])
    with pytest.raises(ConversionError, match="increasing"):
        track_speeds(tracks, np.array([0.0, 0.0, 1.0]))
    with pytest.raises(ConversionError, match="track_ids"):
        tracks_to_strips(tracks, np.arange(3.0), [1, 2])
