"""Runs the trainer-independent part of the benchmark in one process and prints JSON.

    .venv/bin/python -m bench.run_baseline [--steps 200] [--repeats 3] [--random]

GEMM ceiling (TensorFlow and numpy, n=4096), then the textbook Keras VAE at batch 128 and 512 on statically
binarized Fashion-MNIST (or random {0,1} data of dim 784 with --random), and the baseline's share of the GEMM rate:
    fraction = images/s * training FLOP per image / GEMM FLOP/s.
"""

import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.baseline_keras import baseline_images_per_second  # noqa: E402
from bench.flops import mlp_vae_train_flops_per_image  # noqa: E402
from bench.gemm import gemm_gflops  # noqa: E402


def binary_fashion_mnist():
    """Statically binarized Fashion-MNIST training images, flattened to [60000, 784] float32."""
    from vae_tfp.data import load, prepare

    x = np.asarray(prepare(load("fashion_mnist"), "binary", binarization="static").x_train, dtype=np.float32)
    return x.reshape(x.shape[0], -1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    p.add_argument("--random", action="store_true", help="random {0,1} data of shape [60000, 784]")
    a = p.parse_args(argv)

    if a.random:
        x = (np.random.default_rng(0).random((60000, 784)) < 0.5).astype(np.float32)
    else:
        x = binary_fashion_mnist()
    out = {"data": "random" if a.random else "fashion_mnist_static_binary", "shape": list(x.shape)}
    out["gemm_tf"] = gemm_gflops(4096, 5, "tensorflow")
    out["gemm_numpy"] = gemm_gflops(4096, 5, "numpy")
    flop = mlp_vae_train_flops_per_image([x.shape[1], 512, 256], 16)
    out["train_flop_per_image"] = flop
    for bs in a.batch_sizes:
        r = baseline_images_per_second(x, batch_size=bs, steps=a.steps, repeats=a.repeats)
        r["fraction_of_gemm"] = r["images_per_second"] * flop / (out["gemm_tf"]["gflops"] * 1e9)
        out[f"baseline_bs{bs}"] = r
    out["gemm_tf_after"] = gemm_gflops(4096, 5, "tensorflow")  # drift check
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
