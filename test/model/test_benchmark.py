import pytest
import torch

from dgslrm_ros.model import DGSLRM, ModelConfig
from dgslrm_ros.model.benchmark import _bench_preset, forward_flops, run_model_benchmark, synthetic_window


def test_tiny_row_on_cpu():
    row = _bench_preset("tiny", "cpu", quick=True)
    assert row["preset"] == "tiny" and row["precision"] == "fp32"
    assert row["parameters"] == DGSLRM(ModelConfig.preset("tiny")).num_parameters()
    assert row["tokens"] == 32
    assert row["forward_ms"] > 0 and row["train_step_ms"] > 0 and row["process_peak_rss_mb"] > 0


def test_forward_flops_is_dominated_by_two_flops_per_weight_per_token(paper_parameters):
    config = ModelConfig.preset("paper")
    linear_only = 2 * paper_parameters * config.num_tokens()
    assert linear_only < forward_flops(config) < 2.5 * linear_only  # + attention scores, - head on refs


def test_synthetic_window_feeds_the_model():
    config = ModelConfig.preset("tiny", num_reference_frames=4)
    window = synthetic_window(config, batch=2)
    assert window["frames"].shape == (2, 8, 3, 32, 32) and window["ref_frames"].shape == (2, 4, 3, 32, 32)
    with torch.no_grad():
        DGSLRM(config)(**window)


def test_cuda_request_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA is not available; use --device cpu"):
        run_model_benchmark("cuda", quick=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_benchmark_reports_matmul_fraction():
    rows = run_model_benchmark("cuda", quick=True)
    assert [r["preset"] for r in rows] == ["tiny", "small", "paper"]
    for row in rows:
        assert row["precision"] == "bf16-autocast" and 0 < row["fraction_of_matmul"] < 1.5
        assert row["peak_forward_mb"] > 0

