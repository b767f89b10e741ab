"""ament_python / pip build of dgslrm_ros.

ROS client libraries are deliberately absent from install_requires: in a venv they come from the
ros-* wheels (see the Makefile), on a robot from /opt/ros.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "dgslrm_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["checkpoints/*/*.json", "checkpoints/*/*.safetensors", "evaluation/weights/*.safetensors"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/checkpoints/small", glob(f"{PACKAGE}/checkpoints/small/*")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "scipy",
        "torch>=2.2",
        "safetensors",
        "rosbags>=0.10",
        "pyyaml",
        "tqdm",
        "matplotlib",
    ],
    extras_require={"gsplat": ["gsplat==1.5.3"], "viewer": ["viser==1.1.1"], "test": ["pytest", "viser==1.1.1"]},
    zip_safe=True,
    maintainer="dgslrm_ros developers",
    maintainer_email="dgslrm@example.com",
    description="Feed-forward deformable 3D Gaussian reconstruction (DGS-LRM) for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "dgslrm_node = dgslrm_ros.ros.main:main",
            "dgslrm = dgslrm_ros.cli.main:main",
        ],
    },
)
