"""ament_python / pip build of dgslrm_ros.

ROS client libraries are deliberately absent from install_requires: in a venv they come from the
ros-* wheels (see the Makefile), on a robot from /opt/ros.
"""
from glob import glob

from setuptools import Extension, find_packages, setup

PACKAGE = "dgslrm_ros"
# A small CPython extension (dgslrm_ros/convert/fastcopy.py uses it): PointCloud2 packing at memory speed.
# optional: without a C compiler the build goes on and the same conversions run in numpy.
FASTCOPY = Extension(f"{PACKAGE}.convert._fastcopy", sources=[f"{PACKAGE}/convert/_fastcopy.c"],
                     extra_compile_args=["-O3"], optional=True)
# The geometry layer's CPU kernels (dgslrm_ros/geometry/cpu_kernels.py): the plane sweep's cost volume and
# medians, the static fit's sums, the chained 2D tracks and their lifting; optional like the one above:
# without them the same computations run in torch.
KERNELS = Extension(f"{PACKAGE}.geometry._kernels", sources=[f"{PACKAGE}/geometry/_kernels.c"],
                  extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-pthread"], extra_link_args=["-pthread"], optional=True)

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["checkpoints/*/*.json", "checkpoints/*/*.safetensors", "metrics/weights/*.safetensors"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
        (f"share/{PACKAGE}/checkpoints/small", glob(f"{PACKAGE}/checkpoints/small/*")),
    ],
    ext_modules=[FASTCOPY, KERNELS],
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
        "opencv-python-headless",  # DIS optical flow for the geometry cues (geometry/flow_tracks.py)
        "pillow",  # CompressedImage (jpeg, png) decoding
    ],
    # "pose": `dgslrm pose` (COLMAP through pycolmap), "viewer": `dgslrm view`; the node imports neither
    extras_require={"gsplat": ["gsplat==1.5.3"], "pose": ["pycolmap==4.2.1"], "viewer": ["viser==1.1.1"],
                    "test": ["pytest", "viser==1.1.1"]},
    zip_safe=False,
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
