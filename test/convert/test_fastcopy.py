"""The C helper of convert/fastcopy.py gives byte-identical messages to the numpy path it replaces."""
from __future__ import annotations

import numpy as np
import pytest

from dgslrm_ros.convert import fastcopy
from dgslrm_ros.convert.image import image_fields_to_rgb, rgb_to_image_fields
from dgslrm_ros.convert.pointcloud import (
    array_to_gaussians,
    array_to_trajectories,
    gaussians_to_array,
    pack_trajectories,
    trajectories_to_array,
)
from dgslrm_ros.convert.errors import PointCloudLayoutError

pytestmark = pytest.mark.skipif(not fastcopy.ACCELERATED, reason="the C helper was not built (no C compiler); "
                                "`python setup.py build_ext --inplace` builds it")


@pytest.fixture
def numpy_path(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Run the block under the numpy fallback."""
    def use() -> None:
        monkeypatch.setattr(fastcopy, "_LIB", None)
    return use


def _gaussians(n: int, rng: np.random.Generator) -> dict:
    colors = rng.random((n, 3)).astype(np.float32)
    # rounding edges of the packed colour: exact halves (ties to even), out of range, NaN, infinities
    colors[:6, 0] = np.array([0.5, 1.5, 2.5, 254.5, -3.0, 300.0], np.float32) / 255.0
    colors[6, 1] = np.nan
    colors[5, 2], colors[4, 1] = np.inf, -np.inf
    return dict(means=rng.normal(size=(n, 3)).astype(np.float32), colors=colors,
                opacities=rng.random(n).astype(np.float32), scales=rng.random((n, 3)).astype(np.float32),
                quats=rng.normal(size=(n, 4)).astype(np.float32), velocities=rng.normal(size=(n, 3)).astype(np.float32))


@pytest.mark.parametrize("n", [0, 1, 255, 257, 3000])  # around the C block size (256 rows)
def test_gaussians_pack_and_unpack_match_numpy(n: int, numpy_path) -> None:  # noqa: ANN001
    g = _gaussians(max(n, 7), np.random.default_rng(n))
    g = {k: v[:n] for k, v in g.items()}
    fast = gaussians_to_array(**g)
    fast_back = array_to_gaussians(fast)
    numpy_path()
    slow = gaussians_to_array(**g)
    assert fast.tobytes() == slow.tobytes()
    slow_back = array_to_gaussians(slow)
    for name in ("means", "colors", "opacities", "scales", "quats", "velocities"):
        np.testing.assert_array_equal(getattr(fast_back, name), getattr(slow_back, name), err_msg=name)
    if n >= 7:  # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 254.5 -> 254 (ties to even), clamped, NaN -> 0
        red = (fast["rgb"][:6].view(np.uint32) >> 16) & 0xFF
        assert red.tolist() == [0, 2, 2, 254, 0, 255]
        assert (int(fast["rgb"][6].view(np.uint32)) >> 8) & 0xFF == 0
        assert int(fast["rgb"][5].view(np.uint32)) & 0xFF == 255 and (int(fast["rgb"][4].view(np.uint32)) >> 8) & 0xFF == 0


@pytest.mark.parametrize("samples", [1, 4, 9])  # the C helper moves four samples at a time, then a tail
@pytest.mark.parametrize("per_track_times", [False, True])
@pytest.mark.parametrize("bad", [None, (3, 0, 2, np.nan), (5, -1, 0, np.inf), (7, 1, 1, -np.inf)])
def test_trajectories_pack_and_unpack_match_numpy(samples: int, per_track_times: bool, bad, numpy_path) -> None:  # noqa: ANN001
    rng = np.random.default_rng(samples)
    tracks = rng.normal(size=(300, samples, 3)).astype(np.float32)
    if bad is not None:  # one non-finite coordinate, in the four-sample part or the tail
        tracks[bad[0], bad[1] % samples, bad[2]] = bad[3]
    t = -rng.random((300, samples) if per_track_times else samples).astype(np.float32)
    ids, visible = rng.integers(0, 2**32, 300, dtype=np.uint64), rng.random((300, samples)).astype(np.float32)
    fast, fast_cloud = trajectories_to_array(tracks, t, ids, visible), pack_trajectories(tracks, t, ids, visible)
    back = array_to_trajectories(fast)
    assert fast_cloud.is_dense == (bad is None)
    numpy_path()
    slow = trajectories_to_array(tracks, t, ids, visible)
    assert fast.tobytes() == slow.tobytes()
    assert pack_trajectories(tracks, t, ids, visible).is_dense == fast_cloud.is_dense
    np.testing.assert_array_equal(back.tracks, tracks)
    np.testing.assert_array_equal(back.track_ids, ids.astype(np.uint32))
    np.testing.assert_array_equal(back.t, np.broadcast_to(t, (300, samples)))
    np.testing.assert_array_equal(back.visible, visible)


@pytest.mark.parametrize("sample", [0, 2, 7, 8])  # first, inside a four-sample step, its last, the tail
def test_trajectories_unpack_refuses_a_row_with_two_track_ids(sample: int) -> None:
    cloud = trajectories_to_array(np.zeros((3, 9, 3)), np.zeros(9), [4, 5, 6], np.ones((3, 9)))
    cloud["track_id"][1, sample] = 9
    with pytest.raises(PointCloudLayoutError, match="constant along each row"):
        array_to_trajectories(cloud)


@pytest.mark.parametrize("bad_time", [0.1, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("per_track_times", [False, True])
def test_trajectories_refuse_bad_times_on_both_paths(bad_time: float, per_track_times: bool, numpy_path) -> None:  # noqa: ANN001
    """The C path checks the times in its packing pass; it must refuse exactly what numpy refuses."""
    t = -np.ones((4, 9) if per_track_times else 9, np.float32)
    t[..., 6] = bad_time  # inside the second four-sample step
    args = (np.zeros((4, 9, 3)), t, np.arange(4, dtype=np.uint32), np.ones((4, 9)))
    with pytest.raises(PointCloudLayoutError, match="finite and <= 0"):
        pack_trajectories(*args)
    numpy_path()
    with pytest.raises(PointCloudLayoutError, match="finite and <= 0"):
        pack_trajectories(*args)


def test_extension_refuses_buffers_smaller_than_the_call_or_not_contiguous() -> None:
    """The module checks every buffer against the counts it is given: a wrong call raises, it cannot write
    past an array."""
    lib = fastcopy._LIB
    m, t = 11, 4
    args = [np.zeros((m, t, 3), np.float32), np.zeros(t, np.float32), False, np.zeros(m, np.uint32),
            np.zeros((m, t), np.float32), m, t, np.zeros((m - 1, t, 24), np.uint8)]
    with pytest.raises(ValueError, match="table holds 960 bytes, the call needs 1056"):
        lib.pack_trajectories(*args)
    args[7] = np.zeros((m, t, 24), np.uint8)[:, :, ::2]  # right size, not contiguous
    with pytest.raises((ValueError, BufferError), match="contiguous"):
        lib.pack_trajectories(*args)
    with pytest.raises(BufferError, match="not writable"):  # bytes are read-only
        lib.unpack_gaussians(bytes(60), 1, *(bytes(16) for _ in range(6)))
    with pytest.raises(ValueError, match="m must be in"):
        lib.unpack_trajectories(bytes(24), -1, 1, *(np.zeros(3, np.float32) for _ in range(4)))


@pytest.mark.parametrize("encoding", ["bgr8", "bgra8", "rgba8", "mono8"])
@pytest.mark.parametrize("padding", [0, 5])
def test_image_decode_matches_numpy(encoding: str, padding: int, numpy_path) -> None:  # noqa: ANN001
    rgb = np.random.default_rng(2).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    source = rgb[:, :, 0] if encoding == "mono8" else rgb
    f = rgb_to_image_fields(source, encoding, row_padding=padding)
    data = f.data.tobytes()
    fast = image_fields_to_rgb(f.height, f.width, f.encoding, f.step, data)
    numpy_path()
    slow = image_fields_to_rgb(f.height, f.width, f.encoding, f.step, data)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.repeat(source[:, :, None], 3, 2) if encoding == "mono8" else rgb)
