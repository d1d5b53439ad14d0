"""Quality at speed: test log p(x) on binarized Fashion-MNIST against training minutes, for each prior.

    .venv/bin/python -m bench.quality --prior vamp --minutes 10 20 30 45 60 --out bench/results/quality_vamp.json

Data: Fashion-MNIST grey levels scaled to [0, 1]; the training set is re-binarized every epoch (x ~ Bernoulli(pixel),
fresh each epoch: `binarization="dynamic"`), the test set is binarized once with numpy seed 123 + config.seed
(`vae_tfp.datasets.representations.TEST_BINARIZATION_SEED`), so every run scores the same 10 000 binary images.

One Trainer trains until the first checkpoint (training minutes = the wall time of the trainer's own `train()` calls),
is stopped, scored, and continues (same optimizer state) to the next checkpoint. At each checkpoint:

    log p(x) ~= logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x),  k = 5000, all test images

(`vae_tfp.evaluation.log_px_importance`), its standard error over the test images, and the test ELBO (one z per
image); scoring seconds are reported separately and not counted as training time. The machine's 1-minute load
average is recorded at every checkpoint: on a shared machine a training minute buys fewer steps, so compare runs at
equal steps (or epochs) as well as at equal minutes. `--eval-n` / `--eval-k` shrink the score for exploration runs
(then it is not comparable with the published table); `--per-image` keeps each image's log p(x) in an .npz next to
the JSON, for paired comparisons of two runs on the same images.
Writes JSON (every checkpoint, config, throughput, load) and a markdown table next to it.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ANCHORS = [{"model": "VAE, Gaussian prior (Exemplar VAE paper, Norouzi et al. 2020)", "log_px": -228.70},
           {"model": "VAE, VampPrior (Tomczak & Welling 2018; Exemplar VAE paper's table)", "log_px": -227.35}]


def train_for(trainer, seconds: float) -> float:
    """Train `trainer` for about `seconds` more seconds of its own wall time (or until its epochs run out); returns
    the seconds spent in `train()`. The one place that drives the Trainer: a step callback calls `stop()` at the
    deadline, the stop flag is cleared before the next call."""
    deadline = time.perf_counter() + seconds

    def stop_at_deadline(event):
        if event.kind == "step" and time.perf_counter() >= deadline:
            trainer.stop()

    trainer.callbacks.append(stop_at_deadline)
    trainer.reset_stop()
    t0 = time.perf_counter()
    try:
        trainer.train()
    finally:
        trainer.callbacks.remove(stop_at_deadline)
    return time.perf_counter() - t0


def run_quality(config, minutes, eval_k=5000, eval_n=None, precision="float32", out=None, per_image=False,
                log=print) -> dict:
    from vae_tfp.evaluation import log_px_importance
    from vae_tfp.training import Trainer

    trainer = Trainer(config, precision=precision)
    x_test = trainer.data.x_test if eval_n is None else trainer.data.x_test[:eval_n]
    trained_s, points, images = 0.0, [], {}
    result = {"config": config.to_dict(), "precision": precision, "eval_k": eval_k, "eval_images": int(len(x_test)),
              "test_binarization": "numpy seed 123 + config.seed, once", "anchors": ANCHORS, "cpus": os.cpu_count(),
              "checkpoints": points}
    for minute in sorted(minutes):
        trained_s += train_for(trainer, minute * 60.0 - trained_s)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        log_px = log_px_importance(trainer.model, x_test, k=eval_k)
        eval_s = time.perf_counter() - t0
        test = trainer.evaluate_test()
        point = {"minutes": minute, "train_seconds": trained_s, "steps": trainer.step,
                 "epochs": trainer.step / trainer.steps_per_epoch, "test_log_px": float(np.mean(log_px)),
                 "test_log_px_sem": float(np.std(log_px) / np.sqrt(len(log_px))), "test_elbo": test["elbo"],
                 "eval_seconds": eval_s, "images_per_second": trainer.step * config.batch_size / trained_s,
                 "load_average_1min": load}
        points.append(point)
        images[f"{minute:g}"] = log_px.astype(np.float32)
        log(json.dumps(point))
        if out:
            write(result, out, images if per_image else None)
        if trainer.step >= trainer.total_steps:  # ran out of epochs before the budget
            break
    return result


def write(result: dict, out, per_image: dict | None = None) -> None:
    """The JSON, a markdown table next to it, and (when given) each image's log p(x) per checkpoint in an .npz."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    if per_image:
        np.savez_compressed(out.with_suffix(".npz"), **{f"minutes_{k}": v for k, v in per_image.items()})
    c = result["config"]
    anchors = "; ".join(f"{a['log_px']} ({a['model']})" for a in result["anchors"])
    lines = [f"config: {json.dumps(c)}, precision {result['precision']}",
             f"score: log p(x), k={result['eval_k']}, {result['eval_images']} test images; anchors {anchors}", "",
             "| training minutes | steps | epochs | test log p(x) | ± s.e. | test ELBO | eval seconds | load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    for p in result["checkpoints"]:
        lines.append(f"| {p['train_seconds'] / 60:.1f} | {p['steps']} | {p['epochs']:.1f} | {p['test_log_px']:.2f} | "
                     f"{p['test_log_px_sem']:.2f} | {p['test_elbo']:.2f} | {p['eval_seconds']:.0f} | "
                     f"{p['load_average_1min']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    from vae_tfp.config import RunConfig
    from vae_tfp.families import PRIORS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 20, 30, 45, 60],
                   help="checkpoints, in training minutes")
    p.add_argument("--out", default="bench/results/quality.json")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--eval-n", type=int, default=None, help="score only the first N test images (exploration)")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--hidden", default="512,256")
    p.add_argument("--prior", default="mixture", choices=sorted(PRIORS))
    p.add_argument("--prior-components", type=int, default=10,
                   help="mixture components, or the VampPrior's pseudo-inputs")
    p.add_argument("--iwae-k", type=int, default=1)
    p.add_argument("--warmup", type=float, default=5.0, help="KL warm-up, epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                   help="cosine decays to 0 over --epochs (set --epochs to what the budget trains)")
    p.add_argument("--epochs", type=int, default=100_000, help="epoch cap; with --lr-schedule cosine, its length")
    p.add_argument("--network", default="mlp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-image", action="store_true", help="also write each image's log p(x) to <out>.npz")
    a = p.parse_args(argv)
    config = RunConfig(dataset="fashion_mnist", likelihood="bernoulli", binarization="dynamic", network=a.network,
                       latent_dim=a.latent_dim, hidden=a.hidden, prior=a.prior, prior_components=a.prior_components,
                       iwae_k=a.iwae_k, warmup_epochs=a.warmup, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                       lr_schedule=a.lr_schedule, epochs=a.epochs, eval_every=100_000, checkpoint_every=10**9)
    return run_quality(config, a.minutes, eval_k=a.eval_k, eval_n=a.eval_n, precision=a.precision, out=a.out,
                       per_image=a.per_image)


if __name__ == "__main__":
    main()
