"""Start dgslrm_node with the packaged defaults; optionally RViz with the packaged view.

    ros2 launch dgslrm_ros dgslrm.launch.py image:=/camera/image_raw \
        camera_info:=/camera/camera_info camera_pose:=/camera/pose
    ros2 launch dgslrm_ros dgslrm.launch.py use_sim_time:=true    # while `ros2 bag play --clock` runs
    ros2 launch dgslrm_ros dgslrm.launch.py params_file:=my.yaml rviz:=true
    ros2 launch dgslrm_ros dgslrm.launch.py params_file:=vio.yaml image:=/camera/image_raw \
        camera_pose:=/vio/odometry     # pose_type: odometry, image_transport: compressed in vio.yaml

With `image_transport: compressed` the node reads `<image>/compressed`, so the same `image` argument
names the camera either way.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dgslrm_ros")
    default_params = os.path.join(share, "config", "dgslrm.yaml")
    default_rviz = os.path.join(share, "config", "dgslrm.rviz")

    arguments = [
        DeclareLaunchArgument("image", default_value="image", description="input sensor_msgs/Image topic"),
        DeclareLaunchArgument("camera_info", default_value="camera_info",
                              description="input sensor_msgs/CameraInfo topic"),
        DeclareLaunchArgument("camera_pose", default_value="camera_pose",
                              description="input pose topic: PoseStamped, Odometry or TransformStamped (pose_type)"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML with the dgslrm node's parameters"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when replaying a bag with --clock"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz with dgslrm.rviz"),
    ]

    node = Node(
        package="dgslrm_ros",
        executable="dgslrm_node",
        name="dgslrm",
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                # only use_sim_time here: any other override would silently beat the params file
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
        remappings=[
            ("image", LaunchConfiguration("image")),
            ("image/compressed", [LaunchConfiguration("image"), "/compressed"]),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("camera_pose", LaunchConfiguration("camera_pose")),
        ],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", default_rviz],
        parameters=[{"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription(arguments + [node, rviz])
