"""Training windows with cues: computed once, read back identically, refused for another data config."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from dgslrm_ros.data.dataset import SyntheticWindowDataset, dataset_config
from dgslrm_ros.geometry.cues import GeometryCues
from dgslrm_ros.model.config import ModelConfig
from dgslrm_ros.training.cue_cache import CUE_PREFIX, CuedWindowDataset


def test_cues_are_cached_once_and_read_back_identically(tmp_path, monkeypatch):
    config = dataset_config(ModelConfig.preset("tiny"), "simple")
    base = SyntheticWindowDataset(config, num_samples=2, split="train")
    data = CuedWindowDataset(base, tmp_path / "cache")
    first = data[1]
    assert (tmp_path / "cache" / f"window_{base.seed(1):08d}.safetensors").is_file()
    import dgslrm_ros.training.cue_cache as cache_module

    monkeypatch.setattr(cache_module, "sample_cues", lambda *a: pytest.fail("recomputed a cached window"))
    again = data[1]
    assert set(again.to_tensors()) == set(first.to_tensors())
    for key, value in first.to_tensors().items():
        assert torch.equal(again.to_tensors()[key], value), key
    for field in dataclasses.fields(GeometryCues):
        assert torch.equal(getattr(again.cues, field.name), getattr(first.cues, field.name)), field.name
    cues = again.add_batch_dim().cues
    assert isinstance(cues, GeometryCues) and cues.depth.shape == (1, 2, 1, 32, 32)
    assert base[1].cues is None
    stored = load_file(str(tmp_path / "cache" / f"window_{base.seed(1):08d}.safetensors"))
    assert any(k.startswith(CUE_PREFIX) for k in stored)
    # A half-written file (a killed worker) is made again rather than crashing the run.
    path = tmp_path / "cache" / f"window_{base.seed(0):08d}.safetensors"
    path.write_bytes(b"not a safetensors file")
    monkeypatch.undo()
    assert torch.equal(data[0].frames, base[0].frames)


def test_a_cache_of_other_windows_is_refused(tmp_path):
    base = SyntheticWindowDataset(dataset_config(ModelConfig.preset("tiny"), "simple"), num_samples=1, split="train")
    CuedWindowDataset(base, tmp_path)
    other = SyntheticWindowDataset(dataset_config(ModelConfig.preset("tiny"), "static"), num_samples=1, split="train")
    with pytest.raises(ValueError, match="another data config"):
        CuedWindowDataset(other, tmp_path)


def test_a_cache_of_other_cue_settings_is_refused(tmp_path, monkeypatch):
    """Cues from another sweep setting would train the network on inputs the node never computes."""
    import dgslrm_ros.training.cue_cache as cache_module
    from dgslrm_ros.geometry.cues import CueConfig
    from dgslrm_ros.geometry.plane_sweep import SweepConfig

    base = SyntheticWindowDataset(dataset_config(ModelConfig.preset("tiny"), "simple"), num_samples=1, split="train")
    CuedWindowDataset(base, tmp_path)
    monkeypatch.setattr(cache_module, "CueConfig", lambda: CueConfig(sweep=SweepConfig(max_sources=SweepConfig().max_sources + 1)))
    with pytest.raises(ValueError, match="cue settings"):
        CuedWindowDataset(base, tmp_path)


def test_training_feeds_the_cached_cues_to_the_model(tmp_path, monkeypatch):
    """The loop collates the cached cues into the batch and the model uses them instead of computing its own."""
    import dgslrm_ros.model.dgslrm as dgslrm_module
    from dgslrm_ros.training.config import LossConfig
    from dgslrm_ros.training.loop import TrainConfig, train

    config = TrainConfig(preset="tiny", image_size=16, steps=2, out=str(tmp_path / "run"), batch_size=2, warmup_steps=1,
                         eval_every=0, checkpoint_every=0, workers=0, device="cpu", progress=False, train_scenes=4,
                         scene_preset="simple", cue_cache=str(tmp_path / "cues"), loss=LossConfig(perceptual="none"))
    monkeypatch.setattr(dgslrm_module, "window_cues", lambda *a: pytest.fail("the model computed cues the cache has"))
    history = train(config).history
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["total"])) for h in history)
    assert len(list((tmp_path / "cues").glob("window_*.safetensors"))) == 4  # 2 steps x 2 windows, each cached


def test_without_a_cache_folder_the_workers_compute_the_cues_and_keep_nothing(tmp_path, monkeypatch):
    """No --cue-cache: every window's cues are computed where the window is made (the data workers, in
    parallel), rounded as a cached read would be, and nothing is written (fresh windows read once)."""
    import dgslrm_ros.model.dgslrm as dgslrm_module
    from dgslrm_ros.training.config import LossConfig
    from dgslrm_ros.training.loop import TrainConfig, train

    base = SyntheticWindowDataset(dataset_config(ModelConfig.preset("tiny"), "simple"), num_samples=1, split="train")
    cached, uncached = CuedWindowDataset(base, tmp_path / "cache")[0], CuedWindowDataset(base, None)[0]
    for field in dataclasses.fields(GeometryCues):
        assert torch.equal(getattr(uncached.cues, field.name), getattr(cached.cues, field.name)), field.name

    monkeypatch.chdir(tmp_path)
    config = TrainConfig(preset="tiny", image_size=16, steps=2, out=str(tmp_path / "run"), batch_size=2, warmup_steps=1,
                         eval_every=0, checkpoint_every=0, workers=0, device="cpu", progress=False,
                         scene_preset="simple", loss=LossConfig(perceptual="none"))
    monkeypatch.setattr(dgslrm_module, "window_cues", lambda *a: pytest.fail("the model computed the batch's cues"))
    assert len(train(config).history) == 2
    assert [path.parent for path in tmp_path.rglob("window_*.safetensors")] == [tmp_path / "cache"]  # the one above


def test_two_scene_families_are_interleaved_each_with_its_own_cache(tmp_path):
    """`scene_preset="simple,static"`: even items are the first family's windows, odd ones the second's, in seed
    order, each cached (and keyed) in its family's subfolder; the held-out windows are the first family's."""
    from dgslrm_ros.training.config import TrainConfig, TrainConfigError
    from dgslrm_ros.training.loop import make_datasets

    model_config = ModelConfig.preset("tiny", image_size=16)
    config = TrainConfig(preset="tiny", image_size=16, train_scenes=2, scene_preset="simple, static",
                         cue_cache=str(tmp_path / "cues"), out=str(tmp_path / "run"))
    assert config.scene_families == ("simple", "static")
    train_set, eval_set = make_datasets(config, model_config)
    assert len(train_set) == 4
    direct = {family: SyntheticWindowDataset(dataset_config(model_config, family), num_samples=2, split="train")
              for family in ("simple", "static")}
    for index, (family, item) in enumerate([("simple", 0), ("static", 0), ("simple", 1), ("static", 1)]):
        window = train_set[index]
        assert torch.equal(window.frames, direct[family][item].frames), (index, family)
        assert window.cues is not None
        assert (tmp_path / "cues" / family / f"window_{direct[family].seed(item):08d}.safetensors").is_file()
    assert not torch.equal(train_set[0].frames, train_set[1].frames)  # same seed, other family
    assert torch.equal(eval_set[0].frames, SyntheticWindowDataset(dataset_config(model_config, "simple"),
                                                                   num_samples=1, split="eval")[0].frames)
    with pytest.raises(IndexError):
        train_set[4]
    # each subfolder is keyed by its family: swapping them is refused
    (tmp_path / "cues" / "simple").rename(tmp_path / "cues" / "tmp")
    (tmp_path / "cues" / "static").rename(tmp_path / "cues" / "simple")
    (tmp_path / "cues" / "tmp").rename(tmp_path / "cues" / "static")
    with pytest.raises(ValueError, match="another data config"):
        make_datasets(config, model_config)
    for bad in ("simple,simpel", "simple,simple"):
        with pytest.raises(TrainConfigError, match="scene_preset"):
            TrainConfig(scene_preset=bad)


def test_first_window_moves_the_pool_to_unseen_seeds(tmp_path):
    """`first_window=N`: the pool of every family starts at seed N (windows an earlier pool 0 .. N-1 never
    had), and the cache files keep the seeds' names, so an earlier run's cache is not reused for them."""
    from dgslrm_ros.training.config import TrainConfig, TrainConfigError
    from dgslrm_ros.training.loop import make_datasets

    model_config = ModelConfig.preset("tiny", image_size=16)
    config = TrainConfig(preset="tiny", image_size=16, train_scenes=2, first_window=5, scene_preset="simple,static",
                         cue_cache=str(tmp_path / "cues"), out=str(tmp_path / "run"))
    train_set, _ = make_datasets(config, model_config)
    later = SyntheticWindowDataset(dataset_config(model_config, "static"), num_samples=7, split="train")
    assert torch.equal(train_set[3].frames, later[6].frames)  # item 1 of the second family = seed 5 + 1
    assert not torch.equal(train_set[3].frames, later[1].frames)
    assert (tmp_path / "cues" / "static" / "window_00000006.safetensors").is_file()
    assert not (tmp_path / "cues" / "static" / "window_00000001.safetensors").exists()
    with pytest.raises(TrainConfigError, match="first_window"):
        TrainConfig(first_window=-1)


def test_step_sizes_give_one_group_per_size_each_with_its_own_cache(tmp_path):
    """`step_sizes="16,24"`: the training set holds the same windows at both sizes, interleaved item by item,
    each cached in its `<size>px` subfolder; the sampler's steps alternate the groups; the held-out windows are
    at the first size. Sizes that repeat, are not numbers or disagree with --image-size are refused."""
    from dgslrm_ros.training.config import TrainConfig, TrainConfigError
    from dgslrm_ros.data.dataset import InterleavedDataset
    from dgslrm_ros.training.loop import StepBatchSampler, make_datasets

    model_config = ModelConfig.preset("tiny", image_size=16)
    config = TrainConfig(preset="tiny", step_sizes="16,24", train_scenes=2, scene_preset="simple",
                         cue_cache=str(tmp_path / "cues"), out=str(tmp_path / "run"))
    assert config.image_sizes == (16, 24) and config.model_config().image_size == 16
    train_set, eval_set = make_datasets(config, model_config)
    assert isinstance(train_set, InterleavedDataset) and len(train_set) == 4
    sampler = StepBatchSampler(0, 4, 2, 0, 1, pool=len(train_set) // 2, groups=2)
    for step, batch in enumerate(sampler):
        sizes = {tuple(train_set[i].frames.shape[-2:]) for i in batch}
        assert sizes == {(16, 16) if step % 2 == 0 else (24, 24)}, step
    for size in (16, 24):
        direct = SyntheticWindowDataset(dataset_config(ModelConfig.preset("tiny", image_size=size), "simple"),
                                        num_samples=2, split="train")
        assert (tmp_path / "cues" / f"{size}px" / f"window_{direct.seed(1):08d}.safetensors").is_file()
    small, large = train_set[2], train_set[3]  # item 1 of each size: one scene at two sizes
    assert small.frames.shape[-1] == 16 and large.frames.shape[-1] == 24
    assert torch.allclose(small.world_T_cam, large.world_T_cam)
    assert eval_set[0].frames.shape[-1] == 16
    for bad, image_size in (("16,16", 0), ("16,x", 0), ("16,24", 24), ("0,16", 0)):
        with pytest.raises(TrainConfigError, match="step_sizes"):
            TrainConfig(step_sizes=bad, image_size=image_size)
