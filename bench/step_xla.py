"""Interleaved A/B in one process: the trainer's batch-128 step as it is, against the same step with XLA.

    .venv/bin/python -m bench.step_xla [batch]

Variants (each a Trainer on the reference MLP VAE, `bench.step_ab.make_trainer("fused@auto")`):
    fused@auto   the trainer's step (TensorFlow graph, oneDNN kernels, fused Adam)
    xla@auto     loss and gradients in an inner `tf.function(jit_compile=True)`; gather, binarization and Adam outside
    xlabin@auto  the same with the batch's gather and binarization (stateless uniform draws) inside the XLA function
Prints each variant's ms per step (median, min, max over rounds of 200 steps), its speedup over fused@auto per round,
and the test ELBO each reached (the variants compute the same model). Measured once, not adopted (README, Benchmarks).
"""
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from bench.step_ab import Window, load, make_trainer  # noqa: E402

VARIANTS = ("fused@auto", "xla@auto", "xlabin@auto")


def patch_xla(trainer, scope: str) -> None:
    """Replace the trainer's replica step by one whose loss and gradients run in an XLA function; with scope "bin"
    the batch's gather and binarization run inside it too."""
    from vae_tfp._tf import tf
    from vae_tfp.training.kernels import all_finite, stack_metrics
    from vae_tfp.training.seeds import z_seed

    step = trainer.compiled_step
    variables = step.model.trainable_variables

    @tf.function(jit_compile=True)
    def grads_of_batch(x, beta, zs):
        with tf.GradientTape() as tape:
            loss, metrics = step.loss_fn(x, beta, zs)
        return loss, metrics, tape.gradient(loss, variables)

    @tf.function(jit_compile=True)
    def grads_of_indices(idx, seed, beta):
        return grads_of_batch.python_function(step.feed.batch(idx, seed), beta, z_seed(seed))

    def replica_step(idx, seed, beta):
        if scope == "bin":
            loss, metrics, grads = grads_of_indices(idx, seed, beta)
        else:
            loss, metrics, grads = grads_of_batch(step.feed.batch(idx, seed), beta, z_seed(seed))
        ok = all_finite(loss, grads)
        tf.cond(ok, lambda: step._apply(grads, variables), lambda: tf.constant(False))
        return stack_metrics(dict(metrics, loss=loss, finite=tf.cast(ok, tf.float32)), step.keys)

    step._replica_step = replica_step


def summary(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(batch: int = 128, rounds: int = 9, steps: int = 200) -> None:
    from vae_tfp.data import load as load_data

    dataset = load_data("fashion_mnist")
    windows = {}
    for name in VARIANTS:
        trainer = make_trainer("fused@auto", batch, dataset)
        if name != "fused@auto":
            patch_xla(trainer, "bin" if name == "xlabin@auto" else "grad")
        windows[name] = Window(trainer)
    for w in windows.values():
        w.run(100)
    wall = {name: [] for name in VARIANTS}
    for r in range(rounds):
        for name in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
            wall[name].append(windows[name].run(steps)[0])
    for name in VARIANTS:
        ratios = [b / v for b, v in zip(wall[VARIANTS[0]], wall[name])]
        print(f"{name}: ms/step {summary(wall[name])}, speedup over fused@auto {summary(ratios)}, "
              f"{batch / statistics.median(wall[name]) * 1e3:.0f} img/s, test ELBO "
              f"{windows[name].trainer.evaluate_test()['elbo']:.2f}")
    print("load average", load())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 128)
