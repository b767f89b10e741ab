"""The renderer benchmark behind `dgslrm bench --renderer` (tiny sizes here; the real run is the CLI)."""
import math

import torch

from dgslrm_ros.render.benchmark import camera_for, random_frustum_scene, run_renderer_benchmark
from dgslrm_ros.render.projection import project_gaussians


def test_benchmark_scene_lies_inside_the_camera_frustum():
    gaussians = random_frustum_scene(2000, "cpu", seed=1)
    world_T_cam, K = camera_for(64, "cpu")
    projected = project_gaussians(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
                                  torch.linalg.inv(world_T_cam), K, 64, 64)
    assert bool(projected.visible.all())
    inside = (projected.means2d >= 0) & (projected.means2d <= 64)
    assert bool(inside.all())


def test_benchmark_rows_cover_every_size_and_count_with_positive_timings():
    rows = run_renderer_benchmark("cpu", quick=True, sizes=[16, 24], counts=[200, 400], repeats=1)
    assert [(r["backend"], r["size"], r["gaussians"]) for r in rows] == [
        ("torch", 16, 200), ("torch", 24, 200), ("torch", 16, 400), ("torch", 24, 400)]
    for row in rows:
        for key in ("forward_ms", "forward_backward_ms"):
            assert math.isfinite(row[key]) and row[key] > 0, row
