"""Quality at speed: test log p(x) on binarized Fashion-MNIST after a wall-clock training budget.

    .venv/bin/python -m bench.quality --minutes 10 30 60 --out bench/results/quality.json [config options]

Data: Fashion-MNIST grey levels scaled to [0, 1]; the training set is re-binarized every epoch (x ~ Bernoulli(pixel),
fresh each epoch: `binarization="dynamic"`), the test set is binarized once with numpy seed 123 + config.seed
(`vae_tfp.datasets.representations.TEST_BINARIZATION_SEED`), so every run scores the same 10 000 binary images.

One Trainer trains until the first checkpoint time (training seconds only: the wall time of `Trainer.train()`), is
stopped, scored, and continues (same optimizer state) to the next checkpoint. At each checkpoint:

    log p(x) ~= logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x),  k = 5000, all test images

(`vae_tfp.evaluation.log_px_importance`); its seconds are reported separately and not counted as training time.
`--eval-n` / `--eval-k` shrink the score for exploration runs (then it is not comparable with the published table).
Writes JSON (every checkpoint, config, throughput) and a markdown table next to it.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ANCHOR = {"model": "VAE, Gaussian prior (Exemplar VAE paper, Norouzi et al. 2020)", "log_px": -228.70}


def run_quality(config, minutes, eval_k=5000, eval_n=None, precision="float32", out=None, log=print) -> dict:
    from vae_tfp.evaluation import log_px_importance
    from vae_tfp.training import Trainer

    trainer = Trainer(config, precision=precision)
    x_test = trainer.data.x_test if eval_n is None else trainer.data.x_test[:eval_n]
    state = {"deadline": 0.0, "t0": 0.0}

    def on_event(event):
        if event.kind == "step" and time.perf_counter() - state["t0"] >= state["deadline"]:
            trainer.stop()

    trainer.callbacks.append(on_event)
    trained_s, points = 0.0, []
    result = {"config": config.to_dict(), "precision": precision, "eval_k": eval_k, "eval_images": int(len(x_test)),
              "test_binarization": "numpy seed 123 + config.seed, once", "anchor": ANCHOR, "checkpoints": points}
    for minute in sorted(minutes):
        state["deadline"], state["t0"] = minute * 60.0 - trained_s, time.perf_counter()
        trainer.reset_stop()
        r = trainer.train()
        trained_s += time.perf_counter() - state["t0"]
        t0 = time.perf_counter()
        log_px = log_px_importance(trainer.model, x_test, k=eval_k)
        eval_s = time.perf_counter() - t0
        point = {"minutes": minute, "train_seconds": trained_s, "steps": trainer.step,
                 "epochs": trainer.step / trainer.steps_per_epoch, "test_log_px": float(np.mean(log_px)),
                 "test_log_px_sem": float(np.std(log_px) / np.sqrt(len(log_px))),
                 "test_elbo": r.test_metrics.get("elbo"), "eval_seconds": eval_s,
                 "images_per_second": trainer.step * config.batch_size / trained_s}
        points.append(point)
        log(json.dumps(point))
        if out:
            write(result, out)
        if r.status == "completed":  # ran out of epochs before the budget
            break
    return result


def write(result: dict, out) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    c = result["config"]
    lines = [f"config: {json.dumps(c)}, precision {result['precision']}",
             f"score: log p(x), k={result['eval_k']}, {result['eval_images']} test images; anchor "
             f"{result['anchor']['log_px']} ({result['anchor']['model']})", "",
             "| training minutes | steps | epochs | test log p(x) | ± s.e. | test ELBO | eval seconds |",
             "|---|---|---|---|---|---|---|"]
    for p in result["checkpoints"]:
        lines.append(f"| {p['train_seconds'] / 60:.1f} | {p['steps']} | {p['epochs']:.1f} | {p['test_log_px']:.2f} | "
                     f"{p['test_log_px_sem']:.2f} | {p['test_elbo']:.2f} | {p['eval_seconds']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    from vae_tfp.config import RunConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    p.add_argument("--out", default="bench/results/quality.json")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--eval-n", type=int, default=None, help="score only the first N test images (exploration)")
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--hidden", default="512,256")
    p.add_argument("--prior", default="mixture")
    p.add_argument("--prior-components", type=int, default=10)
    p.add_argument("--iwae-k", type=int, default=1)
    p.add_argument("--warmup", type=float, default=5.0, help="KL warm-up, epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                   help="cosine decays to 0 over --epochs (set --epochs to what the budget trains)")
    p.add_argument("--epochs", type=int, default=100_000, help="epoch cap; with --lr-schedule cosine, its length")
    p.add_argument("--network", default="mlp")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    config = RunConfig(dataset="fashion_mnist", likelihood="bernoulli", binarization="dynamic", network=a.network,
                       latent_dim=a.latent_dim, hidden=a.hidden, prior=a.prior, prior_components=a.prior_components,
                       iwae_k=a.iwae_k, warmup_epochs=a.warmup, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                       lr_schedule=a.lr_schedule, epochs=a.epochs, eval_every=50, checkpoint_every=10**9)
    return run_quality(config, a.minutes, eval_k=a.eval_k, eval_n=a.eval_n, precision=a.precision, out=a.out)


if __name__ == "__main__":
    main()
