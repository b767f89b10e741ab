"""`dgslrm export`: safetensors window -> 3DGS PLY (+ preview PNG), through the real CLI entry."""
import pytest
import torch

from dgslrm_ros.cli import main as cli_main
from dgslrm_ros.core.gaussians import DeformableGaussians
from dgslrm_ros.core.ply import read_ply
from dgslrm_ros.core.rotations import quat_normalize


@pytest.fixture
def dgslrm(monkeypatch):
    """`main` with only the export subcommand registered, so this test does not depend on the
    other subcommands' modules importing cleanly; parsing and dispatch are the real ones."""
    assert cli_main.SUBCOMMANDS["export"][0] == "dgslrm_ros.cli.export"
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", {"export": cli_main.SUBCOMMANDS["export"]})
    return cli_main.main


@pytest.fixture
def window_file(tmp_path):
    n, t = 40, 4
    g = torch.Generator().manual_seed(0)
    stamps = torch.tensor([0.0, 0.1, 0.2, 0.3])
    velocity = torch.randn(n, 3, generator=g)
    gaussians = DeformableGaussians(
        means=torch.randn(n, 3, generator=g),
        quats=quat_normalize(torch.randn(n, 4, generator=g)),
        scales=torch.rand(n, 3, generator=g) * 0.1 + 0.01,
        opacities=torch.linspace(0.02, 0.98, n),
        colors=torch.rand(n, 3, generator=g),
        offsets=velocity[:, None] * stamps[None, :, None],
        timestamps=stamps,
        keyframe_index=torch.zeros(n, dtype=torch.long),
    )
    return gaussians, gaussians.save(tmp_path / "window.safetensors")


def test_export_newest_frame_by_default(dgslrm, window_file, tmp_path, capsys):
    gaussians, path = window_file
    out = tmp_path / "out" / "scene.ply"
    assert dgslrm(["export", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 40 of 40 Gaussians at frame 3/3" in printed
    assert out.with_suffix(".png").stat().st_size > 1000
    back = read_ply(out)
    torch.testing.assert_close(back.means, gaussians.positions(3), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(back.opacities, gaussians.opacities, atol=1e-5, rtol=1e-5)


def test_export_frame_and_min_opacity(dgslrm, window_file, tmp_path, capsys):
    gaussians, path = window_file
    out = tmp_path / "f1.ply"
    code = dgslrm(["export", str(path), "--out", str(out), "--frame", "1", "--min-opacity", "0.5", "--no-preview"])
    assert code == 0
    keep = gaussians.opacities >= 0.5
    back = read_ply(out)
    assert len(back) == int(keep.sum()) < 40
    torch.testing.assert_close(back.means, gaussians.positions(1)[keep], atol=1e-6, rtol=1e-6)
    assert not out.with_suffix(".png").exists()
    assert f"{int(keep.sum())} of 40 Gaussians at frame 1/3" in capsys.readouterr().out


def test_export_errors(dgslrm, window_file, tmp_path, capsys):
    _, path = window_file
    assert dgslrm(["export", str(path), "--out", str(tmp_path / "x.ply"), "--frame", "9"]) == 2
    assert "outside the window of 4 frames" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"garbage")
    assert dgslrm(["export", str(broken), "--out", str(tmp_path / "y.ply")]) == 2  # bad input, like any DgslrmError
    assert "not a readable safetensors file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dgslrm(["export", str(path), "--out", str(tmp_path / "z.ply"), "--frame", "last"])


def test_export_negative_frame_counts_from_the_end(dgslrm, window_file, tmp_path):
    gaussians, path = window_file
    out = tmp_path / "last.ply"
    assert dgslrm(["export", str(path), "--out", str(out), "--frame", "-2", "--no-preview"]) == 0
    torch.testing.assert_close(read_ply(out).means, gaussians.positions(2), atol=1e-6, rtol=1e-6)
