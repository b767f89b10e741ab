import array

import numpy as np
import pytest

from dgslrm_ros.convert.errors import ImageLayoutError, UnsupportedEncodingError
from dgslrm_ros.convert.image import (
    SUPPORTED_ENCODINGS,
    frames_to_rgb8,
    image_fields_to_rgb,
    image_to_rgb,
    rgb8_to_frames,
    rgb_to_image_fields,
    thumbnail,
)


def _image_msg(msgs, header, fields):
    return msgs["sensor_msgs/msg/Image"](header=header(), **fields._asdict())


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("padding", [0, 5])
def test_colour_round_trip_through_rosbags_message(msgs, header, typestore, encoding, padding):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    fields = rgb_to_image_fields(rgb, encoding, row_padding=padding)
    channels = 4 if encoding.endswith("a8") else 3
    assert fields.step == 9 * channels + padding and fields.data.size == fields.step * 7
    msg = _image_msg(msgs, header, fields)
    # through CDR as a bag or DDS would carry it
    msg = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    out = image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_channel_order_is_decoded_not_just_round_tripped():
    # one pixel stored as B=10, G=20, R=30 (+ alpha) must come back as R, G, B = 30, 20, 10
    assert image_fields_to_rgb(1, 1, "bgr8", 3, bytes([10, 20, 30])).tolist() == [[[30, 20, 10]]]
    assert image_fields_to_rgb(1, 1, "bgra8", 4, bytes([10, 20, 30, 99])).tolist() == [[[30, 20, 10]]]
    assert image_fields_to_rgb(1, 1, "rgba8", 4, bytes([10, 20, 30, 99])).tolist() == [[[10, 20, 30]]]
    alpha = rgb_to_image_fields(np.zeros((1, 1, 3), np.uint8), "rgba8").data
    assert alpha.tolist() == [0, 0, 0, 255]


def test_mono8_with_padding_replicates_grey(msgs, header):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    fields = rgb_to_image_fields(grey, "mono8", row_padding=4)
    assert fields.step == 8
    out = image_to_rgb(_image_msg(msgs, header, fields))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_padding_bytes_are_ignored():
    data = np.full((2, 8), 255, np.uint8)  # step 8 for a 2x2 rgb8 image: 2 junk bytes per row
    data[:, :6] = np.arange(12).reshape(2, 6)
    out = image_fields_to_rgb(2, 2, "rgb8", 8, data.reshape(-1))
    np.testing.assert_array_equal(out.reshape(-1), np.arange(12))


@pytest.mark.parametrize("container", [bytes, bytearray, lambda b: array.array("B", b), list])
def test_rclpy_style_data_containers(container):
    raw = bytes(range(12))
    out = image_fields_to_rgb(2, 2, "rgb8", 6, container(raw))
    np.testing.assert_array_equal(out.reshape(-1), np.arange(12))


def test_unsupported_encoding_names_it_and_the_supported_list():
    with pytest.raises(UnsupportedEncodingError) as info:
        image_fields_to_rgb(2, 2, "16UC1", 4, bytes(8))
    text = str(info.value)
    assert "16UC1" in text and all(e in text for e in SUPPORTED_ENCODINGS)
    assert info.value.encoding == "16UC1"
    with pytest.raises(UnsupportedEncodingError):
        rgb_to_image_fields(np.zeros((2, 2, 3), np.uint8), "yuv422")


def test_truncated_and_inconsistent_layouts_are_rejected():
    with pytest.raises(ImageLayoutError, match="truncated"):
        image_fields_to_rgb(4, 4, "rgb8", 12, bytes(47))
    with pytest.raises(ImageLayoutError, match="step"):
        image_fields_to_rgb(4, 4, "rgb8", 10, bytes(64))
    with pytest.raises(ImageLayoutError):
        image_fields_to_rgb(0, 4, "rgb8", 12, b"")
    with pytest.raises(ImageLayoutError, match="uint8"):
        rgb_to_image_fields(np.zeros((2, 2, 3), np.float32))


def test_frames_conversion_round_trips_uint8_exactly():
    rgb = np.random.default_rng(1).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    frames = rgb8_to_frames(rgb)
    assert frames.shape == (2, 3, 5, 6) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames_to_rgb8(frames), rgb)
    assert frames_to_rgb8(np.full((3, 1, 1), 2.0)).tolist() == [[[255, 255, 255]]]


def test_thumbnail_strides_down_to_the_width_limit():
    rgb = np.arange(4 * 650 * 3, dtype=np.uint8).reshape(4, 650, 3)
    small = thumbnail(rgb)  # 650 px: a stride of 3 gives 217 <= 320 (2 would give 325)
    assert small.shape == (2, 217, 3) and small.flags.c_contiguous
    np.testing.assert_array_equal(small[1, 1], rgb[3, 3])
    assert thumbnail(rgb[:, :320]).shape == (4, 320, 3)
