"""Interleaved A/B of the trainer's step variants in one process: which way of training measures fastest here.

    python -m bench.step_ab [--batch-size 128] [--rounds 20] [--steps 40] [--variants main,fused,blocks_auto,...]
                            [--threads N]

Every variant is a `Trainer` on the reference MLP VAE (784-512-256-z16, Bernoulli, dynamically binarized
Fashion-MNIST), named LOSS@STEPS:
    LOSS   main      the loss as main computed it before the raw-tensor path (distribution objects, TFP's analytic
                     KL, autodiff through the Bernoulli log-likelihood)
           general   `sampled_elbo_terms` (distribution objects) with the written-out Bernoulli gradient
           fused     `elbo_terms` (raw tensors for diagonal q and p; what the trainer runs)
    STEPS  steps per compiled call: a number, or auto (the trainer's own choice)
In each round every variant (in an order rotated round by round) trains `steps` steps through `train(max_steps)`:
its time is from the "start" event to the last "step" event (so the test-set ELBO `train()` computes on its way out
is not counted), its CPU time the process's over the same span. Reported per variant: median, min and max of the
milliseconds per step, and the per-round ratio main / variant (its speedup) as median (min-max): the ratio of two
windows measured seconds apart is what stays meaningful on a shared machine. The load average is printed at the start
and the end.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.trainer_speed import REFERENCE  # noqa: E402

VARIANTS = ("main@1", "general@1", "fused@1", "fused@10", "fused@auto")


def _main_loss(model, x, beta, seed):
    """The loss of main before the fused path: distribution objects, autodiff through x l - softplus(l)."""
    from vae_tfp._tf import tf, tfd
    from vae_tfp.objectives import _batch_means, factorized_kl, free_bits_kl, kl_factorizes

    out = model(x, n_samples=1, seed=seed)
    logits = out.likelihood.distribution.logits
    axes = list(range(-out.likelihood.event_shape.rank, 0))
    log_lik = tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=axes)
    reconstruction = tf.reduce_mean(log_lik, axis=0)
    kl = tfd.kl_divergence(out.posterior, out.prior)
    per_dim = factorized_kl(out.posterior, out.prior, kl_factorizes(model))
    loss = -tf.reduce_mean(reconstruction) + beta * free_bits_kl(kl, per_dim, 0.0, model.latent_dim)
    return loss, _batch_means(reconstruction, kl, loss)


def make_trainer(name: str, batch_size: int, dataset):
    from vae_tfp.config import RunConfig
    from vae_tfp.objectives import _batch_means, sampled_elbo_terms
    from vae_tfp.training import Trainer

    config = RunConfig(**(REFERENCE | {"batch_size": batch_size, "eval_every": 100_000}))
    loss, steps = name.split("@")
    if loss not in ("main", "general", "fused"):
        raise ValueError(f"unknown loss {loss!r} in variant {name!r}; allowed: main, general, fused")
    steps_per_call = None if steps == "auto" else int(steps)

    class Variant(Trainer):
        def _loss(self, x, beta, seed):
            if loss == "main":
                return _main_loss(self.model, x, beta, seed)
            if loss == "general":
                terms = sampled_elbo_terms(self.model, x, beta=beta, seed=seed)
                return terms.loss, _batch_means(terms.reconstruction, terms.kl, terms.loss)
            return super()._loss(x, beta, seed)

    return Variant(config, dataset=dataset, steps_per_call=steps_per_call)


class Window:
    """Times `train(max_steps=steps)` from its "start" event to its last "step" event."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.marks = {}
        trainer.callbacks.append(self)

    def __call__(self, event):
        if event.kind == "start":
            self.marks = {"start": (time.perf_counter(), time.process_time())}
        elif event.kind == "step":
            self.marks["step"] = (time.perf_counter(), time.process_time())
            self.marks["steps"] = self.marks.get("steps", 0) + 1

    def run(self, steps: int) -> tuple[float, float]:
        """(wall ms per step, CPU ms per step)."""
        self.trainer.train(max_steps=steps)
        (w0, c0), (w1, c1), n = self.marks["start"], self.marks["step"], self.marks["steps"]
        return (w1 - w0) / n * 1e3, (c1 - c0) / n * 1e3


def load() -> list[float]:
    return [float(v) for v in open("/proc/loadavg").read().split()[:3]]


def run(variants, batch_size: int = 128, rounds: int = 20, steps: int = 40, warmup: int = 30,
        threads: int | None = None) -> dict:
    from vae_tfp._tf import tf
    from vae_tfp.data import load as load_data

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    dataset = load_data("fashion_mnist")
    windows = {name: Window(make_trainer(name, batch_size, dataset)) for name in variants}
    for w in windows.values():
        w.run(warmup)
    start_load = load()
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for r in range(rounds):
        names = list(variants)[r % len(variants):] + list(variants)[:r % len(variants)]
        for name in names:
            ms, cms = windows[name].run(steps)
            wall[name].append(ms)
            cpu[name].append(cms)
    base = variants[0]
    out = {"batch_size": batch_size, "rounds": rounds, "steps": steps, "threads": threads, "load_start": start_load,
           "load_end": load(),
           "baseline": base, "variants": {}}
    for name in variants:
        ratios = [b / v for b, v in zip(wall[base], wall[name])]
        cpu_ratios = [b / v for b, v in zip(cpu[base], cpu[name])]
        out["variants"][name] = {
            "ms": {"median": statistics.median(wall[name]), "min": min(wall[name]), "max": max(wall[name])},
            "cpu_ms": {"median": statistics.median(cpu[name]), "min": min(cpu[name]), "max": max(cpu[name])},
            "speedup": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
            "cpu_speedup": {"median": statistics.median(cpu_ratios), "min": min(cpu_ratios),
                            "max": max(cpu_ratios)},
            "steps_per_call": windows[name].trainer.steps_per_call or windows[name].trainer._auto_steps,
        }
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; the first is the baseline")
    p.add_argument("--threads", type=int, help="TensorFlow intra- and inter-op threads (default: TensorFlow's)")
    a = p.parse_args(argv)
    r = run(a.variants.split(","), a.batch_size, a.rounds, a.steps, threads=a.threads)
    print(f"batch {r['batch_size']}, threads {r['threads'] or 'default'}, {r['rounds']} rounds x {r['steps']} steps; "
          f"load average {r['load_start']} -> "
          f"{r['load_end']}; speedup = {r['baseline']} / variant, per round")
    for name, v in r["variants"].items():
        ms, sp, cms, csp = v["ms"], v["speedup"], v["cpu_ms"], v["cpu_speedup"]
        print(f"  {name:12s} {ms['median']:7.3f} ms/step ({ms['min']:.3f}-{ms['max']:.3f})  speedup "
              f"{sp['median']:.3f} ({sp['min']:.3f}-{sp['max']:.3f})   CPU {cms['median']:7.3f} ms/step, speedup "
              f"{csp['median']:.3f} ({csp['min']:.3f}-{csp['max']:.3f})  [{v['steps_per_call']} steps/call]")
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
