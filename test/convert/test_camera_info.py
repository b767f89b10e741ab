import numpy as np
import pytest

from dgslrm_ros.convert.camera_info import camera_info_to_intrinsics, intrinsics_to_camera_info_fields
from dgslrm_ros.convert.errors import CameraInfoError

K = np.array([[50.0, 0.0, 32.5], [0.0, 48.0, 30.25], [0.0, 0.0, 1.0]])


def _msg(msgs, header, fields):
    Roi = msgs["sensor_msgs/msg/RegionOfInterest"]
    return msgs["sensor_msgs/msg/CameraInfo"](
        header=header(), binning_x=0, binning_y=0,
        roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False), **fields._asdict(),
    )


def test_round_trip_through_cdr(msgs, header, typestore):
    D = [0.1, -0.02, 0.001, 0.0005, 0.003]
    fields = intrinsics_to_camera_info_fields(K, 64, 60, D, "plumb_bob")
    assert fields.p.reshape(3, 4)[:, :3].tolist() == K.tolist() and fields.r.tolist() == np.eye(3).ravel().tolist()
    msg = _msg(msgs, header, fields)
    msg = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    intr = camera_info_to_intrinsics(msg)
    np.testing.assert_array_equal(intr.K, K)
    np.testing.assert_array_equal(intr.D, D)
    assert (intr.width, intr.height, intr.distortion_model) == (64, 60, "plumb_bob")
    assert intr.has_distortion


def test_default_distortion_is_zero_plumb_bob():
    fields = intrinsics_to_camera_info_fields(K, 64, 64)
    assert fields.distortion_model == "plumb_bob" and fields.d.tolist() == [0.0] * 5


def test_all_zero_K_is_rejected_with_advice(msgs, header):
    fields = intrinsics_to_camera_info_fields(K, 64, 64)._replace(k=np.zeros(9))
    with pytest.raises(CameraInfoError, match="all zero.*calibrat"):
        camera_info_to_intrinsics(_msg(msgs, header, fields))


@pytest.mark.parametrize(
    "k, width, match",
    [
        (np.diag([-1.0, 50.0, 1.0]).ravel(), 64, "focal"),
        (np.r_[K.ravel()[:8], np.nan], 64, "NaN"),
        (K.ravel(), 0, "size"),
        (K.ravel()[:6], 64, "9 values"),
    ],
)
def test_unusable_intrinsics_are_rejected(msgs, header, k, width, match):
    fields = intrinsics_to_camera_info_fields(K, 64, 64)
    bad = type("Info", (), dict(height=64, width=width, distortion_model="plumb_bob", d=fields.d, k=k))
    with pytest.raises(CameraInfoError, match=match):
        camera_info_to_intrinsics(bad)


def test_opencv_and_library_intrinsics_differ_by_half_a_pixel_and_round_trip():
    from dgslrm_ros.convert.camera_info import library_to_opencv_K, opencv_to_library_K

    K = np.array([[[500.0, 0.0, 319.5], [0.0, 480.0, 239.5], [0.0, 0.0, 1.0]]] * 2)
    ours = opencv_to_library_K(K)
    assert ours[0, 0, 2] == 320.0 and ours[1, 1, 2] == 240.0
    assert ours[0, 0, 0] == 500.0 and ours[0, 1, 1] == 480.0 and ours[0, 0, 1] == 0.0  # only the principal point
    np.testing.assert_array_equal(library_to_opencv_K(ours), K)
    assert K[0, 0, 2] == 319.5  # inputs untouched
