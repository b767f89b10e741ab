"""3DGS PLY: exact layout, activations undone, round trip, and a reader that refuses bad files."""
import numpy as np
import pytest
import torch

from dgslrm_ros.core.gaussians import Gaussians
from dgslrm_ros.core.ply import PROPERTIES, SH_C0, PlyFormatError, read_ply, write_ply
from dgslrm_ros.core.rotations import quat_normalize


def sample(n=7):
    g = torch.Generator().manual_seed(0)
    return Gaussians(
        means=torch.randn(n, 3, generator=g),
        quats=quat_normalize(torch.randn(n, 4, generator=g)),
        scales=torch.rand(n, 3, generator=g) * 0.2 + 1e-3,
        opacities=torch.rand(n, generator=g) * 0.98 + 0.01,
        colors=torch.rand(n, 3, generator=g),
    )


def test_layout_and_stored_values(tmp_path):
    gaussians = sample()
    path = write_ply(tmp_path / "g.ply", gaussians)
    raw = path.read_bytes()
    header, _, body = raw.partition(b"end_header\n")
    lines = header.decode().splitlines()
    assert lines[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 7"]
    assert lines[3:] == [f"property float {name}" for name in PROPERTIES]
    assert PROPERTIES[6:] == ("f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                              "rot_0", "rot_1", "rot_2", "rot_3")
    data = np.frombuffer(body, dtype="<f4").reshape(7, 17)
    np.testing.assert_allclose(data[:, 0:3], gaussians.means.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(data[:, 3:6], 0.0)
    np.testing.assert_allclose(data[:, 6:9], (gaussians.colors.numpy() - 0.5) / 0.28209479177387814, rtol=1e-5)
    p = gaussians.opacities.numpy().astype(np.float64)
    np.testing.assert_allclose(data[:, 9], np.log(p / (1 - p)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data[:, 10:13], np.log(gaussians.scales.numpy()), rtol=1e-5)
    np.testing.assert_allclose(data[:, 13:17], gaussians.quats.numpy(), rtol=1e-6)  # wxyz


def test_round_trip(tmp_path):
    gaussians = sample(50)
    back = read_ply(write_ply(tmp_path / "g.ply", gaussians))
    assert len(back) == 50
    for name, tol in (("means", 1e-6), ("quats", 1e-6), ("scales", 1e-5), ("opacities", 1e-5), ("colors", 1e-6)):
        torch.testing.assert_close(getattr(back, name), getattr(gaussians, name), rtol=tol, atol=tol)


def test_extreme_values_stay_finite(tmp_path):
    gaussians = sample(2)
    edge = Gaussians(means=gaussians.means, quats=gaussians.quats, scales=torch.zeros(2, 3),
                     opacities=torch.tensor([0.0, 1.0]), colors=gaussians.colors)
    path = write_ply(tmp_path / "edge.ply", edge)
    body = path.read_bytes().partition(b"end_header\n")[2]
    assert np.isfinite(np.frombuffer(body, dtype="<f4")).all()


def test_reads_inria_layout_with_extra_properties(tmp_path):
    names = list(PROPERTIES) + [f"f_rest_{i}" for i in range(3)]
    header = "ply\nformat binary_little_endian 1.0\ncomment written elsewhere\nelement vertex 1\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"
    values = np.zeros(len(names), dtype="<f4")
    values[6:9] = 1.0  # f_dc -> colour 0.5 + C0
    values[9] = 0.0  # logit 0 -> opacity 0.5
    values[10:13] = np.log(0.1)
    values[13:17] = [2.0, 0.0, 0.0, 0.0]  # unnormalised quaternion is normalised on read
    path = tmp_path / "inria.ply"
    path.write_bytes(header.encode() + values.tobytes())
    g = read_ply(path)
    torch.testing.assert_close(g.colors, torch.full((1, 3), 0.5 + SH_C0))
    torch.testing.assert_close(g.opacities, torch.tensor([0.5]))
    torch.testing.assert_close(g.scales, torch.full((1, 3), 0.1))
    torch.testing.assert_close(g.quats, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def test_reader_errors(tmp_path):
    with pytest.raises(PlyFormatError, match="no such file"):
        read_ply(tmp_path / "none.ply")
    ascii_ply = tmp_path / "ascii.ply"
    ascii_ply.write_text("ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")
    with pytest.raises(PlyFormatError, match="binary_little_endian"):
        read_ply(ascii_ply)
    good = write_ply(tmp_path / "g.ply", sample(3)).read_bytes()
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(good[:-10])
    with pytest.raises(PlyFormatError, match="truncated"):
        read_ply(truncated)
    no_opacity = tmp_path / "no_opacity.ply"
    no_opacity.write_bytes(good.replace(b"property float opacity\n", b""))
    with pytest.raises(PlyFormatError, match=r"missing 3DGS vertex properties \['opacity'\]"):
        read_ply(no_opacity)
    with pytest.raises(ValueError, match="DeformableGaussians pass"):
        write_ply(tmp_path / "x.ply", "not gaussians")
