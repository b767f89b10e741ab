"""Frame picking and decoding of the three sources of `dgslrm pose`, without COLMAP."""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="posing extra: pip install opencv-python-headless")

from dgslrm_ros.bags.synth import DEFAULT_START_NS  # noqa: E402
from dgslrm_ros.bags.writer import BagWriter  # noqa: E402
from dgslrm_ros.posing.errors import SourceError  # noqa: E402
from dgslrm_ros.posing.frames import FramePick, read_source  # noqa: E402


def _frames(count: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """[T, H, W, 3] uint8, frame i has value 10 * i in red so a decoded frame tells its index."""
    rgb = np.zeros((count, *size, 3), np.uint8)
    rgb[..., 0] = (10 * np.arange(count))[:, None, None]
    return rgb


def _video(path, rgb, fps):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (rgb.shape[2], rgb.shape[1]))
    for frame in rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_frames_picked_by_start_rate_and_count(tmp_path):
    _video(tmp_path / "v.avi", _frames(20), fps=20.0)
    picked = read_source(tmp_path / "v.avi", FramePick(start=0.25, fps=10.0, frames=5), progress=False)
    assert picked.source_index == [5, 7, 9, 11, 13]  # from 0.25 s, one frame in two, five of them
    np.testing.assert_array_equal(picked.stamps_ns, DEFAULT_START_NS + np.array(picked.source_index) * 50_000_000)
    red = [int(round(f[..., 0].mean() / 10)) for f in picked.rgb]
    assert red == picked.source_index  # the decoded pixels are those frames'
    assert picked.source_size == (64, 48)


def test_large_frames_are_resized_to_max_size(tmp_path):
    _video(tmp_path / "v.avi", _frames(3, (120, 200)), fps=10.0)
    picked = read_source(tmp_path / "v.avi", FramePick(max_size=100), progress=False)
    assert picked.rgb[0].shape == (60, 100, 3) and picked.source_size == (200, 120)


def test_image_folder_in_name_order_with_fps_stamps(tmp_path):
    for i, frame in enumerate(_frames(6)):
        cv2.imwrite(str(tmp_path / f"img_{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    picked = read_source(tmp_path, FramePick(fps=5.0, frames=4), progress=False)
    assert picked.source == "folder" and picked.source_index == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.diff(picked.stamps_ns), 200_000_000)
    assert [int(f[..., 0].mean() / 10) for f in picked.rgb] == [0, 1, 2, 3]


def test_bag_image_topic_keeps_its_stamps(tmp_path):
    stamps = 5_000_000_000 + np.arange(8) * 33_000_000
    with BagWriter(tmp_path / "cam") as bag:
        for stamp, frame in zip(stamps, _frames(8)):
            bag.write_image("camera/image_raw", int(stamp), frame)
    picked = read_source(tmp_path / "cam", FramePick(frames=6), image_topic="/camera/image_raw", progress=False)
    assert picked.source == "bag" and len(picked) == 6
    np.testing.assert_array_equal(picked.stamps_ns, stamps[:6])
    with pytest.raises(SourceError, match="no image topic 'image'.*camera/image_raw"):
        read_source(tmp_path / "cam", FramePick(), progress=False)


def test_missing_and_empty_sources_are_refused(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        read_source(tmp_path / "nothing.mp4", FramePick(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        read_source(tmp_path / "empty", FramePick(), progress=False)
