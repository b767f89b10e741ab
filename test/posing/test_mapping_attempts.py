"""`best_mapping`: which of several COLMAP mapping attempts `dgslrm pose` keeps, and when it stops trying.

The attempts themselves are real COLMAP runs in test_pose.py; here `map_once` returns stand-in models
(only their registered-frame counts matter to the choice), so every branch of the choice is reached."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from dgslrm_ros.posing.colmap import ColmapOptions, best_mapping
from dgslrm_ros.posing.errors import PoseOptionError


@dataclass
class _Model:
    registered: int
    name: str = ""

    def num_reg_images(self) -> int:
        return self.registered


def _mapper(results: dict[int, list[int]]):
    """seed -> registered frames of its models (largest first); records the seeds asked for."""
    asked: list[int] = []

    def map_once(seed: int):
        asked.append(seed)
        return [_Model(n, f"seed{seed}") for n in results[seed]]

    return map_once, asked


def test_stops_at_the_first_seed_that_registers_every_frame():
    map_once, asked = _mapper({0: [19, 9, 7], 1: [52], 2: [52, 6], 3: [52]})
    models, attempts = best_mapping(map_once, range(0, 4), num_frames=52)
    assert asked == [0, 1]
    assert models[0].name == "seed1" and models[0].registered == 52
    assert attempts == [{"seed": 0, "model_sizes": [19, 9, 7]}, {"seed": 1, "model_sizes": [52]}]


def test_keeps_the_largest_model_when_no_seed_registers_every_frame():
    map_once, asked = _mapper({5: [30, 10], 6: [41], 7: [], 8: [41, 3]})
    models, attempts = best_mapping(map_once, range(5, 9), num_frames=52)
    assert asked == [5, 6, 7, 8]  # every attempt made
    assert models[0].name == "seed6"  # 41 frames; seed 8's tie comes later and does not replace it
    assert [a["model_sizes"] for a in attempts] == [[30, 10], [41], [], [41, 3]]


def test_no_model_from_any_seed_returns_nothing():
    map_once, asked = _mapper({0: [], 1: []})
    models, attempts = best_mapping(map_once, range(2), num_frames=10)
    assert models == [] and asked == [0, 1] and len(attempts) == 2


def test_attempts_must_be_positive():
    with pytest.raises(PoseOptionError, match="attempts"):
        ColmapOptions(attempts=0)
