"""The `tiny` model overfits one synthetic window on CPU through the real training loop.

Photometric term: MSE only. At 16 px LPIPS cannot run (it needs 31 px) and SSIM's 11-px window
barely fits, so the perceptual term is off here; everything else is the training loss of the paper
(dual-view supervision renders, 10 x depth L1, 10 x scene-flow L1).
"""
import time

from dgslrm_ros.training.loop import TrainConfig, train
from dgslrm_ros.training.losses import LossConfig

STEPS = 120


def test_tiny_model_overfits_one_window(tiny_windows, tmp_path):
    config = TrainConfig(preset="tiny", image_size=16, steps=STEPS, out=str(tmp_path), batch_size=1, lr=6e-3,
                         warmup_steps=5, min_lr_ratio=0.05, weight_decay=0.0, eval_every=0, checkpoint_every=0,
                         workers=0, device="cpu", progress=False,
                         loss=LossConfig(perceptual="none", input_views=2))
    start = time.perf_counter()
    history = train(config, dataset=tiny_windows[:1]).history
    seconds = time.perf_counter() - start

    def tail_mean(key):
        return sum(h[key] for h in history[-5:]) / 5

    first = history[0]
    print(f"\noverfit {STEPS} steps in {seconds:.1f} s: mse {first['mse']:.4f} -> {tail_mean('mse'):.4f}, "
          f"flow {first['flow']:.3f} -> {tail_mean('flow'):.3f}, depth {first['depth']:.3f} -> {tail_mean('depth'):.3f}")
    assert len(history) == STEPS
    assert tail_mean("mse") * 10 <= first["mse"], "photometric loss did not fall 10x"
    assert tail_mean("flow") * 3 <= first["flow"], "scene-flow error did not fall 3x"
    assert tail_mean("depth") * 3 <= first["depth"], "depth error did not fall 3x"
