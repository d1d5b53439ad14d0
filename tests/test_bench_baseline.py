"""Quick checks of the benchmark helpers in bench/: FLOP count, the textbook Keras baseline, the GEMM probe.

No timing assertions: rates only have to be positive.
"""

import numpy as np
import pytest

from bench.flops import eval_flops_per_sample, mlp_vae_train_flops_per_image


def test_train_flops_match_reference_figure():
    # BENCHMARKS.md: 6.46 MFLOP per training image for 784-512-256-z16 with a mirror decoder
    flops = mlp_vae_train_flops_per_image([784, 512, 256], latent=16)
    assert flops == 6_463_488
    assert flops / 1e6 == pytest.approx(6.46, abs=0.01)


def test_eval_flops_per_sample_is_decoder_forward():
    # 2 * (16*256 + 256*512 + 512*784); the encoder adds its forward / k
    assert eval_flops_per_sample() == 1_073_152
    assert eval_flops_per_sample(k=1) == 1_073_152 + 2 * (784 * 512 + 512 * 256 + 256 * 32)


def test_baseline_fits_and_reports():
    from bench.baseline_keras import baseline_images_per_second

    x = (np.random.default_rng(0).random((100, 64)) < 0.5).astype(np.float32)
    r = baseline_images_per_second(x, batch_size=16, steps=2, repeats=1)
    for key in ("images_per_second", "images_per_second_all", "seconds", "steps_per_epoch", "batch_size",
                "input_dim", "repeats", "warmup_seconds", "jit_compile", "final_loss"):
        assert key in r
    assert r["images_per_second"] > 0
    assert len(r["images_per_second_all"]) == 1 and len(r["seconds"]) == 1
    assert r["input_dim"] == 64 and r["steps_per_epoch"] == 2 and r["batch_size"] == 16
    assert np.isfinite(r["final_loss"])


@pytest.mark.parametrize("backend", ["tensorflow", "numpy"])
def test_gemm_small(backend):
    from bench.gemm import gemm_gflops

    r = gemm_gflops(n=256, repeats=2, backend=backend)
    assert r["gflops"] > 0
    assert len(r["seconds"]) == 2
