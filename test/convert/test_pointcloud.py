import numpy as np
import pytest

from dgslrm_ros.convert.errors import PointCloudLayoutError
from dgslrm_ros.convert.pointcloud import (
    FLOAT32,
    FLOAT64,
    GAUSSIAN_FIELDS,
    UINT8,
    UINT32,
    pack_gaussians,
    pack_trajectories,
    pointcloud_fields_to_array,
    pointcloud_to_array,
    unpack_gaussians,
    unpack_rgb,
    unpack_trajectories,
)


def to_msg(msgs, header, cloud):
    """PointCloud2 fields -> a rosbags message serialised and parsed back (what a bag or DDS holds)."""
    PointField = msgs["sensor_msgs/msg/PointField"]
    fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in cloud.fields]
    values = cloud._asdict() | {"fields": fields}
    return msgs["sensor_msgs/msg/PointCloud2"](header=header(frame_id="world"), **values)


def _gaussians(n, rng):
    q = rng.normal(size=(n, 4)).astype(np.float32)
    return dict(
        means=rng.normal(size=(n, 3)).astype(np.float32),
        colors=rng.integers(0, 256, (n, 3)).astype(np.float32) / 255,
        opacities=rng.random(n).astype(np.float32),
        scales=rng.random((n, 3)).astype(np.float32) * 0.1,
        quats=q / np.linalg.norm(q, axis=1, keepdims=True),
        velocities=rng.normal(size=(n, 3)).astype(np.float32),
    )


def test_gaussians_layout_is_the_contract(msgs, header):
    cloud = pack_gaussians(**_gaussians(3, np.random.default_rng(0)))
    assert [f.name for f in cloud.fields] == list(GAUSSIAN_FIELDS)
    assert [f.offset for f in cloud.fields] == list(range(0, 60, 4))
    assert {f.datatype for f in cloud.fields} == {FLOAT32} and {f.count for f in cloud.fields} == {1}
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, 3, 60, 180)
    assert cloud.data.size == 180 and not cloud.is_bigendian


def test_gaussians_round_trip_through_cdr(msgs, header, typestore):
    values = _gaussians(50, np.random.default_rng(1))
    msg = to_msg(msgs, header, pack_gaussians(**values))
    msg = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    out = unpack_gaussians(msg)
    for name, expected in values.items():
        np.testing.assert_array_equal(getattr(out, name), expected, err_msg=name)


def test_packed_rgb_is_the_rviz_bit_pattern():
    values = _gaussians(1, np.random.default_rng(0)) | {"colors": np.array([[1.0, 128 / 255, 0.0]], np.float32)}
    cloud = pack_gaussians(**values)
    packed = pointcloud_fields_to_array(cloud.fields, cloud.point_step, cloud.data, cloud.height, cloud.width)["rgb"]
    assert packed.dtype == np.float32 and packed.view(np.uint32).ravel()[0] == 0x00FF8000
    np.testing.assert_array_equal(unpack_rgb(packed.ravel()) * 255, [[255, 128, 0]])


def test_gaussian_shape_mismatch_names_the_field():
    values = _gaussians(4, np.random.default_rng(2))
    values["scales"] = values["scales"][:3]
    with pytest.raises(PointCloudLayoutError, match="scales"):
        pack_gaussians(**values)


def test_trajectories_round_trip_with_nans_and_ids(msgs, header, typestore):
    rng = np.random.default_rng(3)
    tracks = rng.normal(size=(5, 4, 3)).astype(np.float32)
    tracks[1, 0] = np.nan
    tracks[4, 2:] = np.nan
    t = np.array([-0.3, -0.2, -0.1, 0.0], np.float32)
    ids = np.array([7, 3, 0, 2**32 - 1, 12])
    visible = (rng.random((5, 4)) > 0.5).astype(np.float32)
    cloud = pack_trajectories(tracks, t, ids, visible)
    assert (cloud.height, cloud.width, cloud.point_step) == (5, 4, 24) and not cloud.is_dense
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("t", 12, FLOAT32),
        ("track_id", 16, UINT32), ("visible", 20, FLOAT32),
    ]
    msg = to_msg(msgs, header, cloud)
    msg = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    out = unpack_trajectories(msg)
    np.testing.assert_array_equal(out.tracks, tracks)  # NaNs compare equal here
    np.testing.assert_array_equal(out.t, np.broadcast_to(t, (5, 4)))
    np.testing.assert_array_equal(out.track_ids, ids)
    np.testing.assert_array_equal(out.visible, visible)


def test_trajectories_refuse_future_times():
    with pytest.raises(PointCloudLayoutError, match="<= 0"):
        pack_trajectories(np.zeros((1, 2, 3)), [0.0, 0.1], [0], np.ones((1, 2)))


def test_generic_reader_handles_foreign_layouts():
    # a big-endian cloud with padding inside points, a float64 field, a count-3 uint8 field and padded rows
    fields = [("a", 0, FLOAT64, 1), ("b", 12, UINT8, 3), ("x", 16, FLOAT32, 1)]
    point_step, width, height, row_step = 24, 3, 2, 80
    data = bytearray(row_step * height)
    expected = []
    for r in range(height):
        for c in range(width):
            base = r * row_step + c * point_step
            a, x, b = r * 10.5 + c, float(c - r) / 4, [r, c, 9]
            data[base:base + 8] = np.array(a, ">f8").tobytes()
            data[base + 12:base + 15] = bytes(b)
            data[base + 16:base + 20] = np.array(x, ">f4").tobytes()
            expected.append((a, b, x))
    points = pointcloud_fields_to_array(fields, point_step, bytes(data), height, width, True, row_step)
    assert points.shape == (2, 3)
    flat = points.reshape(-1)
    assert flat["a"].tolist() == [e[0] for e in expected]
    assert flat["b"].tolist() == [e[1] for e in expected]
    assert flat["x"].tolist() == [e[2] for e in expected]


def test_reader_rejects_truncated_and_bad_fields():
    with pytest.raises(PointCloudLayoutError, match="truncated"):
        pointcloud_fields_to_array([("x", 0, FLOAT32, 1)], 4, bytes(11), 1, 3)
    with pytest.raises(PointCloudLayoutError, match="does not fit"):
        pointcloud_fields_to_array([("x", 2, FLOAT32, 1)], 4, bytes(12), 1, 3)
    with pytest.raises(PointCloudLayoutError, match="datatype"):
        pointcloud_fields_to_array([("x", 0, 42, 1)], 4, bytes(12), 1, 3)


def test_unpack_gaussians_names_missing_fields(msgs, header):
    cloud = pack_trajectories(np.zeros((1, 1, 3)), [0.0], [0], np.ones((1, 1)))
    with pytest.raises(PointCloudLayoutError, match="missing fields.*rgb"):
        unpack_gaussians(to_msg(msgs, header, cloud))


def test_generic_reader_on_our_cloud_is_zero_copy(msgs, header):
    cloud = pack_gaussians(**_gaussians(10, np.random.default_rng(4)))
    points = pointcloud_to_array(to_msg(msgs, header, cloud))
    assert points.shape == (1, 10) and np.shares_memory(points, cloud.data)


def test_gaussians_from_a_foreign_layout(msgs, header):
    # another producer: fields reversed, 4 bytes of padding per point, float64 extra field
    from dgslrm_ros.convert.pointcloud import array_to_gaussians, array_to_pointcloud_fields, gaussians_to_array

    values = _gaussians(6, np.random.default_rng(5))
    ours = gaussians_to_array(**values)
    names = list(GAUSSIAN_FIELDS)[::-1]
    foreign = np.zeros(6, dtype=np.dtype({
        "names": names + ["intensity"], "formats": ["<f4"] * 15 + ["<f8"],
        "offsets": [4 + 4 * i for i in range(15)] + [64], "itemsize": 72,
    }))
    for name in GAUSSIAN_FIELDS:
        foreign[name] = ours[name]
    cloud = array_to_pointcloud_fields(foreign)
    out = unpack_gaussians(to_msg(msgs, header, cloud))
    for name, expected in values.items():
        np.testing.assert_array_equal(getattr(out, name), expected, err_msg=name)
    assert array_to_gaussians(foreign).opacities.tolist() == values["opacities"].tolist()


def test_gaussians_round_trip_across_copy_blocks():
    # 5000 rows: two full 2048-row blocks plus a remainder in the blocked (de)interleave
    from dgslrm_ros.convert.pointcloud import array_to_gaussians, pointcloud_fields_to_array

    values = _gaussians(5000, np.random.default_rng(6))
    cloud = pack_gaussians(**values)
    table = cloud.data.view(np.float32).reshape(5000, 15)
    np.testing.assert_array_equal(table[:, 12:15], values["velocities"])
    np.testing.assert_array_equal(table[:, 0:3], values["means"])
    out = array_to_gaussians(pointcloud_fields_to_array(cloud.fields, cloud.point_step, cloud.data, 1, 5000))
    for name, expected in values.items():
        np.testing.assert_array_equal(getattr(out, name), expected, err_msg=name)
