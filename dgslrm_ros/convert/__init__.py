"""Message <-> numpy conversions: pure functions over message fields, no ROS import.

They accept any object carrying a message's attributes (rosbags or rclpy messages) and return
numpy arrays or NamedTuples of fields that `ros/` and `bags/` copy into their message classes.
"""
from dgslrm_ros.convert.camera_info import (
    CameraInfoFields,
    CameraIntrinsics,
    camera_info_to_intrinsics,
    intrinsics_to_camera_info_fields,
)
from dgslrm_ros.convert.errors import (
    CameraInfoError,
    ConversionError,
    ImageLayoutError,
    PointCloudLayoutError,
    PoseError,
    StampError,
    UnsupportedEncodingError,
)
from dgslrm_ros.convert.image import SUPPORTED_ENCODINGS, ImageFields, frames_to_rgb8, image_to_rgb, rgb_to_image_fields
from dgslrm_ros.convert.pointcloud import (
    GAUSSIAN_DTYPE,
    GAUSSIAN_FIELDS,
    TRAJECTORY_DTYPE,
    GaussianCloud,
    PointCloudFields,
    TrajectoryCloud,
    array_to_pointcloud_fields,
    pack_gaussians,
    pack_trajectories,
    pointcloud_fields_to_array,
    pointcloud_to_array,
    unpack_gaussians,
    unpack_trajectories,
)
from dgslrm_ros.convert.pose import PoseFields, matrix_to_pose_fields, pose_to_matrix
from dgslrm_ros.convert.stamps import Stamp, header_stamp_ns, ns_to_stamp, seconds_to_stamp, stamp_to_ns, stamp_to_seconds
from dgslrm_ros.convert.tracks import TrackStrip, tracks_to_strips

