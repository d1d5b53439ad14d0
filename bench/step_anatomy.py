"""Where a training step's time goes: the trainer's compiled step on the reference MLP VAE, split into parts.

    .venv/bin/python -m bench.step_anatomy [--batch-size 128] [--precision float32|bfloat16]

Timed in one process, interleaved, median of 7 repeats of 50 calls each (milliseconds per call):
  step    the whole compiled step: in-graph batch gather + dynamic binarization, forward, gradients, NaN guard,
          fused Adam, stacked metrics
  grads   forward + gradients only (same loss, same batch size)
  adam    the fused Adam update alone on constant gradients (1.08 M parameters)
  stream  a reference memory stream over parameter-sized arrays (9 passes x 4 bytes per parameter): what moving
          Adam-like bytes costs on this machine
The matmul floor of a step is 6.46 MFLOP x batch / GEMM rate; Adam is memory-bound and does not shrink with bf16.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bench.flops import mlp_vae_train_flops_per_image  # noqa: E402
from bench.trainer_speed import REFERENCE  # noqa: E402


def anatomy(batch_size: int = 128, precision: str = "float32", repeats: int = 7, calls: int = 50) -> dict:
    from vae_tfp._tf import tf
    from vae_tfp.config import RunConfig
    from vae_tfp.objectives import training_loss
    from vae_tfp.training import Trainer
    from vae_tfp.training.kernels import fused_adam

    trainer = Trainer(RunConfig(**(REFERENCE | {"batch_size": batch_size})), precision=precision)
    model, variables = trainer.model, trainer.model.trainable_variables
    n_params = sum(int(np.prod(v.shape)) for v in variables)
    inputs, beta = next(iter(trainer.epoch_inputs(0))), np.float32(1.0)  # (indices, seed) of the first batch
    x = trainer.feed.batch(tf.constant(inputs[0]), inputs[1])

    @tf.function
    def grads_only(x):
        with tf.GradientTape() as tape:
            loss, _ = training_loss(model, x)
        return tf.add_n([tf.reduce_sum(g[:1]) for g in tape.gradient(loss, variables)])

    grads = [tf.random.normal(v.shape) * 1e-3 for v in variables]
    fused = fused_adam(trainer.optimizer)
    adam_only = tf.function(lambda: fused(grads, variables))
    arrays = [tf.Variable(tf.zeros(v.shape)) for v in variables]

    @tf.function
    def stream():  # 3 assignments, each reading 2 arrays and writing 1: 9 passes x 4 bytes per parameter
        for a, g in zip(arrays, grads):
            a.assign(a * 0.9 + g)
            a.assign(a * 0.5 + g)
            a.assign(a * 0.25 + g)
        return tf.constant(0.0)

    parts = {"step": lambda: trainer.compiled_step(*inputs, beta).numpy(), "grads": lambda: grads_only(x).numpy(),
             "adam": lambda: adam_only().numpy(), "stream": lambda: stream().numpy()}
    for f in parts.values():
        for _ in range(10):
            f()
    ms = {name: [] for name in parts}
    for _ in range(repeats):
        for name, f in parts.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            ms[name].append((time.perf_counter() - t0) / calls * 1e3)
    med = {name: statistics.median(v) for name, v in ms.items()}
    flop = mlp_vae_train_flops_per_image() * batch_size
    return {"batch_size": batch_size, "precision": precision, "params": n_params, "ms": med, "ms_all": ms,
            "step_gflops": flop / med["step"] / 1e6, "grads_gflops": flop / med["grads"] / 1e6,
            "stream_gbps": 36 * n_params / med["stream"] / 1e6}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    a = p.parse_args(argv)
    r = anatomy(a.batch_size, a.precision)
    print(f"batch {r['batch_size']}, {r['precision']}, {r['params']:,} parameters")
    for name, m in r["ms"].items():
        extra = {"step": f"{r['step_gflops']:.0f} GFLOP/s", "grads": f"{r['grads_gflops']:.0f} GFLOP/s",
                 "stream": f"{r['stream_gbps']:.1f} GB/s"}.get(name, "")
        print(f"  {name:7s} {m:6.3f} ms  {extra}")
    return r


if __name__ == "__main__":
    main()
