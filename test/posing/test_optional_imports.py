"""The posing extras (pycolmap, OpenCV) stay optional: the node, the CLI's help and the posing
modules themselves load neither until a pose actually runs."""
import pytest


@pytest.mark.parametrize("code, extras", [
    ("import dgslrm_ros.ros.node", {"pycolmap"}),  # OpenCV may become a core dependency (optical flow)
    ("from dgslrm_ros.cli.main import build_parser; build_parser().parse_args(['pose', 'x.mp4', '--out', 'y'])",
     {"pycolmap", "cv2"}),
    ("import dgslrm_ros.posing.posed_bag, dgslrm_ros.posing.colmap, dgslrm_ros.posing.frames", {"pycolmap", "cv2"}),
])
def test_posing_extras_load_only_when_posing_runs(code, extras, modules_loaded_after):
    assert not {m.split(".")[0] for m in modules_loaded_after(code)} & extras
