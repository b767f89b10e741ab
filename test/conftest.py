"""Suite-wide settings that must be in place before torch is imported by any test module, the
fresh-interpreter probe the import-boundary tests share, and the ray-cast scene windows of the geometry
and model tests."""
import functools
import os
import subprocess
import sys

import pytest

# torch's OpenMP workers busy-wait by default; with 2 cores shared by subprocesses (ROS nodes, data
# workers) that makes CPU rendering 4-30x slower. libgomp reads this once, at load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _modules_loaded_after(code: str) -> set[str]:
    """Runs `code` in a fresh interpreter and returns every name in its sys.modules afterwards: a module
    another test imported in this process cannot hide (or fake) a violation there."""
    code += "\nimport sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.fixture
def modules_loaded_after():
    """`modules_loaded_after(code) -> set[str]`: the modules a fresh interpreter holds after running `code`."""
    return _modules_loaded_after


@functools.lru_cache(maxsize=4)
def _scene_window(preset: str, min_travel: float, size: int = 48, frames: int = 12):
    """The first held-out window of a scene family whose camera travels at least `min_travel` m (a
    data.sample.WindowSample in the normalised frame, no batch dim; `tiny` model layout at size x size)."""
    from dgslrm_ros.data.dataset import dataset_config, make_window_sample
    from dgslrm_ros.model.config import ModelConfig
    config = dataset_config(ModelConfig.preset("tiny", image_size=size, window_frames=frames), preset)
    for seed in range(1_000_000, 1_000_040):
        batch, _ = make_window_sample(seed, config).add_batch_dim().normalized(1.0)
        positions = batch.world_T_cam[0, :, :3, 3]
        if float((positions - positions[0]).norm(dim=-1).max()) >= min_travel:
            return batch.map(lambda t: t[0])
    raise AssertionError(f"no {preset} window with {min_travel} m of camera travel in 40 seeds")


@pytest.fixture(scope="session")
def scene_window():
    """`scene_window(preset, min_travel, size=48, frames=12)`: a ray-cast window whose camera travels (cached)."""
    return _scene_window


def _textured_plane_window(size: int = 32, frames: int = 8, depth: float = 2.0, travel: float = 0.4):
    """frames [T, 3, H, W], K [T, 3, 3], world_T_cam [T, 4, 4], timestamps [T] of a camera translating
    sideways past a fronto-parallel plane at z = `depth`, drawn exactly: each pixel's colour is a texture
    (a few pixels per period) at the point where its ray meets the plane."""
    import torch
    focal = float(size)
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]]).expand(frames, 3, 3).clone()
    poses = torch.eye(4).repeat(frames, 1, 1)
    poses[:, 0, 3] = torch.linspace(0.0, travel, frames)
    v, u = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    images = []
    for n in range(frames):
        x = float(poses[n, 0, 3]) + (u - size / 2) / focal * depth  # where the ray meets the plane
        y = (v - size / 2) / focal * depth
        images.append(torch.stack([0.5 + 0.25 * torch.sin(19.0 * x + 7.0 * y + c) + 0.2 * torch.sin(11.0 * y - 5.0 * x + 2 * c)
                                   for c in range(3)]))
    return dict(frames=torch.stack(images).clamp(0, 1), K=K, world_T_cam=poses,
                timestamps=0.1 * torch.arange(frames, dtype=torch.float64))


@pytest.fixture(scope="session")
def textured_plane_window():
    """`textured_plane_window(size=32, frames=8, depth=2.0, travel=0.4)`: an exact window of a textured plane."""
    return _textured_plane_window
