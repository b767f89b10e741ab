
import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from dgslrm_ros.bags.mcap_stream import McapTruncatedError, scan_mcap
from dgslrm_ros.bags.messages import default_message, default_typestore, header
from dgslrm_ros.bags.reader import BagReadError, BagReader, ImageRecord, PoseRecord, read_bag
from dgslrm_ros.bags.synth import write_sequence_bag
from dgslrm_ros.bags.writer import BagWriter
from dgslrm_ros.convert.image import frames_to_rgb8

K = np.array([[30.0, 0, 4], [0, 30, 3], [0, 0, 1]])


def _custom_topic_bag(path, storage="mcap"):
    rgb = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    with BagWriter(path, storage=storage) as bag:
        for n in range(3):
            stamp = 5_000_000_000 + n * 50_000_000
            bag.write_image("/cam/image_raw", stamp, rgb + n, encoding="bgr8")
            bag.write_camera_info("/cam/camera_info", stamp, K, 8, 6)
            bag.write_pose("/cam/pose", stamp + 1, np.eye(4))  # slightly later than the image
            bag.write_image("/other", stamp, rgb)  # a topic the reader must ignore
    return rgb


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_topic_names_are_options_with_or_without_slash(tmp_path, storage):
    rgb = _custom_topic_bag(tmp_path / "bag", storage)
    records = list(read_bag(tmp_path / "bag", image_topic="/cam/image_raw", camera_info_topic="cam/camera_info",
                            pose_topic="cam/pose"))
    assert [r.topic for r in records] == ["cam/image_raw", "cam/camera_info", "cam/pose"] * 3
    images = [r for r in records if isinstance(r, ImageRecord)]
    for n, r in enumerate(images):
        np.testing.assert_array_equal(r.rgb, rgb + n)  # bgr8 decoded back to the RGB written
    poses = [r for r in records if isinstance(r, PoseRecord)]
    assert poses[0].stamp_ns == 5_000_000_001


def test_missing_image_topic_lists_what_the_bag_has(tmp_path):
    _custom_topic_bag(tmp_path / "bag")
    with pytest.raises(BagReadError, match=r"no image topic 'image'.*cam/image_raw.*--image-topic"):
        list(read_bag(tmp_path / "bag"))
    assert set(BagReader(tmp_path / "bag").topics()) == {"cam/image_raw", "cam/camera_info", "cam/pose", "other"}


def test_bare_storage_file_and_missing_metadata(tmp_path, sequence):
    path = write_sequence_bag(sequence, tmp_path / "bag")
    assert len(list(read_bag(path / "bag.mcap"))) == 5 * 10
    (path / "metadata.yaml").unlink()
    assert len(list(read_bag(path))) == 5 * 10


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_mcap_yields_what_it_can_then_fails_clearly(tmp_path, sequence, compress):
    sequence.frames = np.random.default_rng(0).random((3, 5, 3, 200, 200)).astype(np.float32)  # ~2 chunks
    path = write_sequence_bag(sequence, tmp_path / "bag", compress=compress)
    mcap = path / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.7)])
    got = []
    with pytest.raises(BagReadError, match="truncated or corrupt") as info:
        for record in read_bag(path):
            got.append(record)
    assert 0 < len(got) < 50 and info.value.records_read == len(got)
    rgb = frames_to_rgb8(sequence.frames)
    first = [r for r in got if isinstance(r, ImageRecord) and r.view == 0]
    assert first, "the complete first chunk must be recovered"
    np.testing.assert_array_equal(first[0].rgb, rgb[0, 0])


def test_corrupt_sqlite_fails_clearly(tmp_path, sequence):
    path = write_sequence_bag(sequence, tmp_path / "bag", storage="sqlite3")
    db = path / "bag.db3"
    data = bytearray(db.read_bytes())
    data[len(data) // 2:] = b"\xff" * (len(data) - len(data) // 2)
    db.write_bytes(bytes(data))
    with pytest.raises(BagReadError, match="corrupt|cannot open"):
        list(read_bag(path))


def test_scan_matches_indexed_reader(tmp_path, sequence):
    path = write_sequence_bag(sequence, tmp_path / "bag", compress=True)
    with Reader(path) as reader:
        indexed = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
    scanned = [(m.topic, m.log_time_ns, m.data) for m in scan_mcap(path / "bag.mcap")]
    assert sorted(scanned) == sorted(indexed)
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap at all")
    with pytest.raises(McapTruncatedError, match="magic"):
        list(scan_mcap(tmp_path / "junk.mcap"))


def test_unsupported_encoding_strict_and_lenient(tmp_path):
    ts = default_typestore()
    bad = default_message(ts, "sensor_msgs/msg/Image", header=header(ts, 1_000, "cam"), height=2, width=2,
                          encoding="16UC1", step=4, data=np.zeros(8, np.uint8))
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_message("image", bad)
        bag.write_image("image", 2_000, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(BagReadError, match="16UC1"):
        list(read_bag(tmp_path / "bag"))
    reader = BagReader(tmp_path / "bag", strict=False)
    assert [r.stamp_ns for r in reader] == [2_000]
    assert reader.skipped == {"image: UnsupportedEncodingError": 1}


def test_bad_stamp_is_one_skipped_message_not_the_end_of_the_bag(tmp_path):
    ts = default_typestore()
    bad = default_message(ts, "sensor_msgs/msg/Image", header=header(ts, 1_000, "cam"), height=2, width=2,
                          encoding="rgb8", step=6, data=np.zeros(12, np.uint8))
    bad.header.stamp.nanosec = 1_500_000_000  # not normalised: out of [0, 1e9)
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_message("image", bad, log_time_ns=1_000)
        bag.write_image("image", 2_000, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(BagReadError, match="nanosec"):
        list(read_bag(tmp_path / "bag"))
    reader = BagReader(tmp_path / "bag", strict=False)
    assert [r.stamp_ns for r in reader] == [2_000]
    assert reader.skipped == {"image: StampError": 1}


def test_missing_bag_path(tmp_path):
    with pytest.raises(BagReadError, match="does not exist"):
        BagReader(tmp_path / "nope")


@pytest.mark.parametrize("strict", [True, False])
def test_corrupt_message_mid_stream(tmp_path, sequence, strict):
    import sqlite3

    path = write_sequence_bag(sequence, tmp_path / "bag", storage="sqlite3")
    with sqlite3.connect(path / "bag.db3") as db:
        (topic_id,) = db.execute("SELECT id FROM topics WHERE name = '/image'").fetchone()
        (row,) = db.execute("SELECT id FROM messages WHERE topic_id = ? ORDER BY timestamp LIMIT 1 OFFSET 2",
                            (topic_id,)).fetchone()
        db.execute("UPDATE messages SET data = ? WHERE id = ?", (b"\x00\x01\x00\x00\xff\xff", row))
    reader = BagReader(path, strict=strict)
    got = []
    if strict:
        with pytest.raises(BagReadError, match="corrupt.*/image.*sensor_msgs/msg/Image") as info:
            for record in reader:
                got.append(record)
        assert info.value.records_read == len(got) > 0
        assert len([r for r in got if r.topic == "image"]) == 2  # the two images before the damaged one
    else:
        got = list(reader)
        assert len(got) == 5 * 10 - 1 and reader.skipped == {"image: corrupt message": 1}


def _compressed(ts, stamp_ns, rgb, fmt="png", data=None):  # noqa: ANN001, ANN202
    from dgslrm_ros.convert.compressed import rgb_to_compressed_fields

    fields = rgb_to_compressed_fields(rgb, fmt)
    payload = fields.data if data is None else data
    return default_message(ts, "sensor_msgs/msg/CompressedImage", header=header(ts, stamp_ns, "cam"),
                           format=fields.format, data=np.frombuffer(payload, np.uint8))


def test_compressed_images_are_read_from_image_transport_topic_and_corrupt_ones_skipped(tmp_path):
    """A camera recorded through image_transport: `<image>/compressed` only, jpeg and png mixed."""
    ts = default_typestore()
    rgb = np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (12, 1, 3))
    with BagWriter(tmp_path / "bag") as bag:
        bag.write_message("/image/compressed", _compressed(ts, 1_000, rgb, "png"))
        bag.write_message("/image/compressed", _compressed(ts, 2_000, rgb, "png", data=b"\x89PNG\r\n\x1a\n broken"))
        bag.write_message("/image/compressed", _compressed(ts, 3_000, rgb, "jpeg"))
    reader = BagReader(tmp_path / "bag", strict=False)
    images = [r for r in reader if isinstance(r, ImageRecord)]
    assert [r.stamp_ns for r in images] == [1_000, 3_000] and images[0].topic == "image/compressed"
    np.testing.assert_array_equal(images[0].rgb, rgb)  # png: lossless
    assert np.abs(images[1].rgb.astype(int) - rgb).mean() < 3  # jpeg: within its error
    assert reader.skipped == {"image/compressed: corrupt": 1}
    with pytest.raises(BagReadError, match="does not decode"):
        list(read_bag(tmp_path / "bag"))  # strict: the damaged payload is an error naming the cause
