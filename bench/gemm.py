"""Dense fp32 matrix-multiply rate: the compute ceiling the VAE trainers are compared against.

One n x n x n matmul costs 2 n^3 floating-point operations (n^3 multiply-adds), so
    GFLOP/s = 2 n^3 / seconds / 1e9.
We warm up once (thread pools, oneDNN kernel selection), time `repeats` matmuls, and report the median.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _summary(n, seconds, backend):
    flop = 2.0 * n**3  # n^3 multiply-adds per matmul
    med = statistics.median(seconds)
    return {
        "backend": backend,
        "n": n,
        "flop_per_matmul": flop,
        "gflops": flop / med / 1e9,
        "seconds": list(seconds),
        "median_seconds": med,
        "gflops_all": [flop / s / 1e9 for s in seconds],
    }


def gemm_gflops(n=4096, repeats=5, backend="tensorflow", seed=0):
    """Median fp32 GEMM rate of an n x n by n x n product.

    backend: "tensorflow" (tf.linalg.matmul, eager; completion forced by `.numpy()`) or "numpy" (np.matmul, for
    reference). Returns {"gflops": median rate, "seconds": [per-repeat seconds], "gflops_all", "median_seconds",
    "n", "flop_per_matmul", "backend"}.
    """
    rng = np.random.default_rng(seed)
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32)
    seconds = []
    if backend == "tensorflow":
        import tensorflow as tf

        a = tf.constant(a_np)
        b = tf.constant(b_np)
        tf.linalg.matmul(a, b).numpy()  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            tf.linalg.matmul(a, b).numpy()  # .numpy() blocks until the product exists
            seconds.append(time.perf_counter() - t0)
    elif backend == "numpy":
        np.matmul(a_np, b_np)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a_np, b_np)
            seconds.append(time.perf_counter() - t0)
    else:
        raise ValueError(f"unknown backend {backend!r}; use 'tensorflow' or 'numpy'")
    return _summary(n, seconds, backend)


def numpy_gemm_gflops(n=4096, repeats=5, seed=0):
    """The same measurement with numpy's BLAS (reference only)."""
    return gemm_gflops(n=n, repeats=repeats, backend="numpy", seed=seed)


if __name__ == "__main__":
    for fn in (gemm_gflops, numpy_gemm_gflops):
        r = fn()
        secs = [round(s, 3) for s in r["seconds"]]
        print(f"{r['backend']:>10}: {r['gflops']:.1f} GFLOP/s (n={r['n']}, seconds={secs})")
