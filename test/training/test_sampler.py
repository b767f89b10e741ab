"""The batch of a step is a pure function of (step, rank): resumable, and distinct across ranks."""
from dgslrm_ros.training.loop import StepBatchSampler


def test_ranks_get_disjoint_items_and_resume_continues_the_sequence():
    world, batch = 2, 3
    full = [list(StepBatchSampler(0, 5, batch, rank, world, pool=0)) for rank in range(world)]
    for step in range(5):
        seen = full[0][step] + full[1][step]
        assert len(set(seen)) == world * batch  # no window shared between ranks in a step
    everything = [i for rank in full for b in rank for i in b]
    assert len(set(everything)) == len(everything)  # nor ever, with an unbounded pool
    resumed = list(StepBatchSampler(3, 5, batch, 1, world, pool=0))
    assert resumed == full[1][3:]
    assert len(StepBatchSampler(3, 5, batch, 0, world, pool=0)) == 2


def test_finite_pool_wraps():
    assert list(StepBatchSampler(0, 3, 1, 0, 1, pool=2)) == [[0], [1], [0]]


def test_groups_take_turns_step_by_step_within_their_own_pool():
    """groups=2 (two image sizes): step s draws only from pool s % 2, each pool wrapping on its own, so no
    batch mixes sizes and each size sees the windows a one-size run would have seen at its steps."""
    sampler = StepBatchSampler(0, 4, 2, 0, 1, pool=3, groups=2)
    assert list(sampler) == [[0 * 2, 1 * 2], [2 * 2 + 1, 0 * 2 + 1], [1 * 2, 2 * 2], [0 * 2 + 1, 1 * 2 + 1]]
    assert list(StepBatchSampler(2, 4, 2, 0, 1, pool=3, groups=2)) == list(sampler)[2:]  # resumable
    import pytest

    with pytest.raises(ValueError, match="finite pool"):
        StepBatchSampler(0, 4, 2, 0, 1, pool=0, groups=2)
