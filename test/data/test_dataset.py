"""Training windows: the data-sample table of docs/architecture.md, seeds, caching, loading."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dgslrm_ros.data.camera_paths import CameraPathConfig
from dgslrm_ros.data.dataset import (EVAL_SEED_START, CachedWindowDataset, SyntheticWindowDataset, WindowDatasetConfig,
                                     cache_split, make_loader, make_window_sample, plan_window)
from dgslrm_ros.data.scenes import SceneConfig

TINY = WindowDatasetConfig(height=32, width=32, window_frames=8, scene=SceneConfig(num_objects=(2, 4)))


def test_sample_matches_the_architecture_table(dynamic_samples, dynamic_config):
    sample = dynamic_samples[0]
    T, H, W, S = 8, 32, 32, dynamic_config.num_supervision
    expected = {
        "frames": (T, 3, H, W), "K": (T, 3, 3), "world_T_cam": (T, 4, 4), "timestamps": (T,),
        "depth": (T, 1, H, W), "keyframe_index": (2,), "keyframe_points": (2, T, H, W, 3),
        "keyframe_visible": (2, T, H, W), "sup_frames": (S, 3, H, W), "sup_K": (S, 3, 3),
        "sup_world_T_cam": (S, 4, 4), "sup_frame_index": (S,), "sup_depth": (S, 1, H, W),
    }
    for key, shape in expected.items():
        assert tuple(getattr(sample, key).shape) == shape, key
    assert sample.scene_id == 3
    assert sample.keyframe_index.tolist() == [0, 4]
    assert sample.keyframe_visible.dtype == torch.bool and sample.keyframe_index.dtype == torch.long
    assert torch.isfinite(sample.keyframe_points).all()
    assert (sample.depth > 0).all() and (sample.sup_depth > 0).all()
    assert 0 <= sample.sup_frames.min() and sample.sup_frames.max() <= 1
    assert ((sample.sup_frame_index >= 0) & (sample.sup_frame_index < T)).all()


def test_supervision_is_dual_view_from_other_cameras(dynamic_samples, dynamic_config):
    for sample in dynamic_samples:
        plan = plan_window(int(sample.scene_id), dynamic_config)
        views = plan.sup_view.tolist()
        assert plan.input_view not in views
        assert len(set(views)) == 2 and views.count(views[0]) == len(views) // 2
        # The supervision poses are those of the chosen cameras at the chosen instants.
        poses = plan.setup.rig.poses(sample.timestamps)
        for s, (view, frame) in enumerate(zip(views, sample.sup_frame_index.tolist())):
            assert torch.allclose(sample.sup_world_T_cam[s], poses[view, frame], atol=1e-5)
            assert not torch.allclose(sample.sup_world_T_cam[s], sample.world_T_cam[frame], atol=1e-2)


def test_reference_frames_come_from_outside_the_window():
    config = WindowDatasetConfig(height=16, width=16, window_frames=8, num_reference_frames=3,
                                 scene=SceneConfig(num_objects=(1, 2)))
    sample = make_window_sample(1, config)
    assert sample.ref_frames.shape == (3, 3, 16, 16) and sample.ref_world_T_cam.shape == (3, 4, 4)
    outside = (sample.ref_timestamps < 0) | (sample.ref_timestamps > sample.timestamps[-1])
    assert outside.all()


def test_motion_blur_averages_subframes_but_keeps_depth():
    blurred = dataclasses.replace(SceneConfig(static_probability=0.0, moving_probability=1.0),
                                  camera=CameraPathConfig(motion_blur_probability=1.0, shutter_fraction=(0.9, 0.9)))
    sharp = dataclasses.replace(blurred, camera=dataclasses.replace(blurred.camera, motion_blur_probability=0.0))
    config = WindowDatasetConfig(height=24, width=24, window_frames=4, num_supervision=2, scene=blurred)
    a = make_window_sample(6, config)
    b = make_window_sample(6, dataclasses.replace(config, scene=sharp))
    assert plan_window(6, config).setup.rig.blur_subframes == 3
    # Same scene and rig, same centre instant: identical geometry, different pixels.
    assert torch.allclose(a.depth, b.depth) and torch.allclose(a.keyframe_points, b.keyframe_points)
    assert (a.frames - b.frames).abs().mean() > 1e-3


def test_seed_split_keeps_evaluation_apart():
    train = SyntheticWindowDataset(TINY, num_samples=10, split="train")
    evaluation = SyntheticWindowDataset(TINY, num_samples=10, split="eval")
    assert train.seed(0) == 0 and evaluation.seed(0) == EVAL_SEED_START
    with pytest.raises(ValueError, match="seeds must lie"):
        SyntheticWindowDataset(num_samples=10, split="train", seed_offset=EVAL_SEED_START - 5)
    with pytest.raises(KeyError, match="split"):
        SyntheticWindowDataset(num_samples=1, split="validation")
    with pytest.raises(IndexError):
        train.seed(10)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="num_views"):
        WindowDatasetConfig(num_views=1, num_supervision=2)
    with pytest.raises(ValueError, match="static_probability"):
        SceneConfig(static_probability=1.5)
    config = WindowDatasetConfig(height=40, scene=SceneConfig(num_objects=(1, 2)))
    assert WindowDatasetConfig.from_dict(config.to_dict()) == config


def test_cached_split_round_trip_is_exact(tmp_path):
    config = WindowDatasetConfig(height=16, width=16, window_frames=8, num_reference_frames=2,
                                 scene=SceneConfig(num_objects=(1, 3)))
    paths = cache_split(tmp_path, config, num_samples=2, split="eval")
    assert [p.name for p in paths] == [f"sample_{EVAL_SEED_START:08d}.safetensors",
                                       f"sample_{EVAL_SEED_START + 1:08d}.safetensors"]
    cached = CachedWindowDataset(tmp_path)
    assert len(cached) == 2 and cached.config == config
    for index in range(2):
        fresh = make_window_sample(EVAL_SEED_START + index, config)
        loaded = cached[index]
        assert set(loaded.to_tensors()) == set(fresh.to_tensors())
        assert loaded.scene_id == fresh.scene_id
        for key, value in fresh.to_tensors().items():
            assert getattr(loaded, key).dtype == value.dtype and torch.equal(loaded.to_tensors()[key], value), key
    with pytest.raises(FileNotFoundError, match="cache_split"):
        CachedWindowDataset(tmp_path / "empty")
    # A smaller rewrite into the same folder reads only its own samples, never the leftovers.
    cache_split(tmp_path, config, num_samples=1, split="eval", seed_offset=1)
    rewritten = CachedWindowDataset(tmp_path)
    assert len(rewritten) == 1 and rewritten[0].scene_id == EVAL_SEED_START + 1
    paths[1].unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        CachedWindowDataset(tmp_path)


def test_loader_with_workers_matches_direct_indexing():
    dataset = SyntheticWindowDataset(TINY, num_samples=2, split="train", seed_offset=40)
    batch = next(iter(make_loader(dataset, batch_size=2, num_workers=2)))
    assert batch.frames.shape == (2, 8, 3, 32, 32) and batch.scene_id.tolist() == [40, 41]
    direct = dataset[1]
    assert torch.equal(batch.keyframe_points[1], direct.keyframe_points)
    assert torch.equal(batch.frames[1], direct.frames)


def test_many_seeds_give_closed_finite_ground_truth():
    """Every ray hits something (room or ground + sky), flow is finite, both backgrounds occur."""
    config = WindowDatasetConfig(height=12, width=12, window_frames=4, keyframe_stride=2, num_supervision=2)
    backgrounds = set()
    for seed in range(200, 230):
        sample = make_window_sample(seed, config)
        assert (sample.depth > 0).all() and (sample.sup_depth > 0).all(), seed
        assert torch.isfinite(sample.keyframe_points).all(), seed
        assert sample.keyframe_visible[0, 0].all() and sample.keyframe_visible[1, 2].all(), seed
        backgrounds.add(int(plan_window(seed, config).setup.scene.kinds[0]))
    assert len(backgrounds) == 2, "both room and outdoor backgrounds should appear in 30 seeds"


def test_generation_runs_single_threaded_and_restores_the_caller_setting(monkeypatch):
    import dgslrm_ros.data.dataset as dataset_module

    seen = []
    real = dataset_module._make_window_sample
    monkeypatch.setattr(dataset_module, "_make_window_sample",
                        lambda seed, config: seen.append(torch.get_num_threads()) or real(seed, config))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        make_window_sample(0, WindowDatasetConfig(height=8, width=8, window_frames=4, num_supervision=2))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_interleaved_datasets_need_one_length():
    from dgslrm_ros.data.dataset import InterleavedDataset

    with pytest.raises(ValueError, match="one length"):
        InterleavedDataset([list(range(3)), list(range(2))])
    with pytest.raises(ValueError, match="one length"):
        InterleavedDataset([])
    mixed = InterleavedDataset([["a0", "a1"], ["b0", "b1"], ["c0", "c1"]])
    assert [mixed[i] for i in range(len(mixed))] == ["a0", "b0", "c0", "a1", "b1", "c1"]
