"""Two CPU processes under torchrun (gloo): replicas stay identical,
the loss goes down and only rank 0 writes files."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent('''
    import json, os, sys
    import torch
    from safetensors.torch import save_file
    sys.path.insert(0, {test_dir!r})
    from conftest import window_config
    from dgslrm_ros.data.dataset import make_window_sample
    from dgslrm_ros.training.loop import TrainConfig, train
    from dgslrm_ros.training.losses import LossConfig

    torch.set_num_threads(1)
    windows = [make_window_sample(seed, window_config()) for seed in (3, 4)]
    config = TrainConfig(preset="tiny", image_size=16, steps={steps}, out={out!r}, batch_size=1, lr=5e-3,
                         warmup_steps=2, eval_every=0, checkpoint_every=0, workers=0, device="cpu",
                         progress=False, loss=LossConfig(perceptual="ssim", input_views=1))
    rank = int(os.environ["RANK"])
    result = train(config, dataset=windows)
    params = {{name: p.detach().contiguous() for name, p in result.model.named_parameters()}}
    save_file(params, os.path.join({report!r}, f"params_rank{{rank}}.safetensors"))
    with open(os.path.join({report!r}, f"history_rank{{rank}}.json"), "w") as f:
        json.dump(result.history, f)
''')


@pytest.mark.timeout(300)
def test_two_process_gloo_training(tmp_path):
    steps = 16  # the zero-initialised output layer of the geometry-primed model moves alone at first
    out, report = tmp_path / "run", tmp_path / "report"
    report.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(test_dir=str(Path(__file__).parent), steps=steps, out=str(out), report=str(report)))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    rank0 = load_file(str(report / "params_rank0.safetensors"))
    rank1 = load_file(str(report / "params_rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for name in rank0:  # gradients are averaged, so every replica takes the same step
        assert (rank0[name] == rank1[name]).all(), name

    history0 = json.loads((report / "history_rank0.json").read_text())
    history1 = json.loads((report / "history_rank1.json").read_text())
    assert len(history0) == steps
    # Logged losses are all-reduced: both ranks report the same numbers ...
    assert [h["total"] for h in history0] == pytest.approx([h["total"] for h in history1], rel=1e-6)
    # ... and training lowers them.
    first = sum(h["total"] for h in history0[:2]) / 2
    last = sum(h["total"] for h in history0[-2:]) / 2
    assert last < 0.8 * first, (first, last)

    # Only rank 0 writes: one checkpoint, one log line per step.
    assert (out / "model.safetensors").is_file() and (out / "trainer_state.json").is_file()
    log = (out / "train_log.jsonl").read_text().splitlines()
    assert len(log) == steps
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == steps
