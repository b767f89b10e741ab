"""WindowSample: device moves, collation, the normalised frame, and the flat safetensors layout of the caches."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from dgslrm_ros.data.dataset import CachedWindowDataset
from dgslrm_ros.data.sample import WindowSample

# The keys every cache under runs/cache/ was written with (before WindowSample existed): written out
# here, not derived from the class, so renaming a field breaks this test and not the caches.
OLD_KEYS = ("frames", "K", "world_T_cam", "timestamps", "depth", "keyframe_index", "keyframe_points",
            "keyframe_visible", "sup_frames", "sup_K", "sup_world_T_cam", "sup_frame_index", "sup_depth", "scene_id")


@dataclasses.dataclass(frozen=True)
class Cues:  # stands in for geometry.cues.GeometryCues: any dataclass of tensors rides along
    depth: torch.Tensor
    lifted: torch.Tensor


def test_to_moves_every_tensor_and_keeps_absent_fields(dynamic_samples):
    sample = dataclasses.replace(dynamic_samples[0], cues=Cues(torch.ones(2, 1, 4, 4), torch.zeros(2, 8, 3, 4, 4)))
    moved = sample.to("meta")
    for field in dataclasses.fields(WindowSample):
        value = getattr(moved, field.name)
        if field.name.startswith("ref_"):
            assert value is None, field.name
        elif field.name != "cues":
            assert value.device.type == "meta" and value.shape == getattr(sample, field.name).shape, field.name
    assert moved.cues.depth.device.type == "meta" and moved.cues.lifted.device.type == "meta"
    assert sample.frames.device.type == "cpu"  # a new sample, the original untouched


def test_collate_stacks_every_field_and_refuses_mixed_samples(dynamic_samples):
    first, second = dynamic_samples
    batch = WindowSample.collate([first, second])
    for field in dataclasses.fields(WindowSample):
        value = getattr(batch, field.name)
        if getattr(first, field.name) is None:
            assert value is None, field.name
        else:
            assert torch.equal(value, torch.stack([getattr(first, field.name), getattr(second, field.name)])), field.name
    assert batch.scene_id.tolist() == [3, 11]
    one = first.add_batch_dim()
    assert all(torch.equal(a, b) for a, b in zip(one.to_tensors().values(),
                                                 WindowSample.collate([first]).to_tensors().values()))
    cued = [dataclasses.replace(s, cues=Cues(torch.full((2, 1, 4, 4), float(i)), torch.zeros(2, 8, 3, 4, 4)))
            for i, s in enumerate(dynamic_samples)]
    assert WindowSample.collate(cued).cues.depth[:, 0, 0, 0, 0].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="`cues` is set in some samples"):
        WindowSample.collate([cued[0], second])


def test_normalized_maps_every_metric_field_into_the_window_frame(dynamic_samples):
    batch = WindowSample.collate(dynamic_samples)
    with pytest.raises(ValueError, match=r"frames \[B, T, 3, H, W\]"):
        dynamic_samples[0].normalized(1.0)
    norm, norms = batch.normalized(0.5)
    assert len(norms) == 2
    for b, n in enumerate(norms):
        middle = norm.world_T_cam[b, batch.frames.shape[1] // 2]
        assert torch.allclose(middle, torch.eye(4), atol=1e-5)  # the middle camera is the normalised frame
        assert torch.allclose(n.poses_to_world(norm.world_T_cam[b]), batch.world_T_cam[b], atol=1e-4)
        assert torch.allclose(n.poses_to_world(norm.sup_world_T_cam[b]), batch.sup_world_T_cam[b], atol=1e-4)
        assert torch.allclose(norm.depth[b] * n.scale, batch.depth[b], rtol=1e-5)
        assert torch.allclose(norm.sup_depth[b] * n.scale, batch.sup_depth[b], rtol=1e-5)
        assert torch.allclose(n.points_to_world(norm.keyframe_points[b]), batch.keyframe_points[b], atol=1e-4)
    assert torch.equal(norm.frames, batch.frames) and torch.equal(norm.K, batch.K)  # not metric: unchanged
    assert norm.world_T_cam.dtype == batch.world_T_cam.dtype


def test_a_cache_file_of_the_old_dict_format_loads_unchanged(dynamic_samples, tmp_path):
    sample = dynamic_samples[0]
    old = {key: getattr(sample, key).contiguous() for key in OLD_KEYS}
    old["scene_id"] = torch.tensor([int(sample.scene_id)], dtype=torch.long)  # stored as [1] long
    save_file(old, str(tmp_path / "sample_00000003.safetensors"))
    assert set(sample.to_tensors()) == set(OLD_KEYS)  # and the class writes the same keys
    loaded = CachedWindowDataset(tmp_path)[0]
    assert loaded.scene_id.shape == () and int(loaded.scene_id) == 3 and loaded.ref_frames is None
    for key in OLD_KEYS:
        assert torch.equal(getattr(loaded, key), getattr(sample, key)), key
    del old["sup_depth"]
    save_file(old, str(tmp_path / "sample_00000003.safetensors"))
    with pytest.raises(KeyError, match=r"missing \['sup_depth'\].*write it again"):
        CachedWindowDataset(tmp_path)[0]
