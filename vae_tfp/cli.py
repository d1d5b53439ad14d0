"""Command line: `python -m vae_tfp train | evaluate | datasets | runs | bench`.

Thin: parses arguments into a RunConfig and calls the library. Exit status: 0 success, 2 bad arguments (the message
names the argument and what is allowed), 1 failures such as NaN during training. With --json the last line printed
on stdout is one JSON object.

    python -m vae_tfp train --dataset digits --likelihood bernoulli --latent-dim 2 --epochs 10
    python -m vae_tfp evaluate runs/<name> --k 1000 --json
"""

import argparse
import json
import math
import sys
from pathlib import Path

from vae_tfp import config as C
from vae_tfp.config import RunConfig

STRATEGIES = ("default", "mirrored", "multiworker")


class UsageError(Exception):
    """Bad arguments: exit status 2."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = argparse.ArgumentParser(prog="python -m vae_tfp", description="Train and evaluate VAEs headless.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE and save the run")
    t.add_argument("--dataset", default=d.dataset, help="a dataset name (see `datasets`) or a .npz / PNG-folder path")
    t.add_argument("--data-dir", help="folder with IDX files for fashion_mnist / mnist (or set VAE_TFP_DATA)")
    t.add_argument("--likelihood", default=d.likelihood, choices=C.LIKELIHOOD_NAMES)
    t.add_argument("--latent-dim", type=_positive_int, default=d.latent_dim)
    t.add_argument("--epochs", type=int, default=d.epochs)
    t.add_argument("--prior", default=d.prior, choices=C.PRIOR_NAMES)
    t.add_argument("--prior-components", type=_positive_int, default=d.prior_components)
    t.add_argument("--posterior", default=d.posterior, choices=C.POSTERIOR_NAMES)
    t.add_argument("--network", default=d.network, choices=C.NETWORK_NAMES)
    t.add_argument("--hidden", default=",".join(map(str, d.hidden)), help="encoder widths, e.g. 512,256")
    t.add_argument("--sigma", type=_number, default=d.sigma, help="gaussian likelihood: sigma (initial if learned)")
    t.add_argument("--sigma-mode", default=d.sigma_mode, choices=C.SIGMA_MODES)
    t.add_argument("--beta", type=_number, default=d.beta)
    t.add_argument("--warmup", type=_number, default=d.warmup_epochs, help="KL warm-up length in epochs")
    t.add_argument("--free-bits", type=_number, default=d.free_bits, help="KL floor per latent dimension, nats")
    t.add_argument("--iwae-k", type=_positive_int, default=d.iwae_k)
    t.add_argument("--kl", default=d.kl, choices=C.KL_METHODS)
    t.add_argument("--binarization", default=d.binarization, choices=C.BINARIZATIONS)
    t.add_argument("--batch-size", type=_positive_int, default=d.batch_size)
    t.add_argument("--lr", type=_number, default=d.lr)
    t.add_argument("--lr-schedule", default=d.lr_schedule, choices=C.LR_SCHEDULES)
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--eval-every", type=_positive_int, default=d.eval_every, help="epochs between test evaluations")
    t.add_argument("--checkpoint-every", type=_positive_int, default=d.checkpoint_every, help="steps")
    t.add_argument("--run-dir", help="this run's directory (default: runs/<dataset>-<likelihood>-...)")
    t.add_argument("--runs-root", help="parent folder of run directories (default: $VAE_TFP_RUNS or ./runs)")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    t.add_argument("--strategy", default="default", choices=STRATEGIES, help="tf.distribute strategy")
    t.add_argument("--precision", default="float32", choices=C.PRECISIONS,
                   help="bfloat16 runs the hidden dense matmuls in bf16 (faster on CPUs with AVX512-BF16/AMX; "
                        "weights, optimizer and loss stay float32; see bench/precision_parity.py)")
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="evaluate a saved run on its test set")
    e.add_argument("run_dir")
    e.add_argument("--k", type=_positive_int, default=1000, help="importance samples per image")
    e.add_argument("--n", type=_positive_int, help="evaluate only the first N test images")
    e.add_argument("--data-dir")
    e.add_argument("--no-images", action="store_true", help="do not write reconstruction / sample PNGs")
    e.add_argument("--json", action="store_true")

    ds = sub.add_parser("datasets", help="list the datasets")
    ds.add_argument("--json", action="store_true")
    r = sub.add_parser("runs", help="list saved runs")
    r.add_argument("--runs-root")
    r.add_argument("--json", action="store_true")
    b = sub.add_parser("bench", help="benchmark training, evaluation and the dashboard on this machine")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quick", action="store_true", help="fewer, shorter repeats (for a smoke test)")
    b.add_argument("--peers", action="store_true", help="compare with JAX and PyTorch on the same VAE (bench/peers; "
                   "needs requirements-bench.txt, see README)")
    return p


def config_from_args(a) -> RunConfig:
    """The RunConfig the train arguments describe; UsageError naming the argument on a bad value."""
    values = dict(dataset=a.dataset, likelihood=a.likelihood, latent_dim=a.latent_dim, epochs=a.epochs,
                  prior=a.prior, prior_components=a.prior_components, posterior=a.posterior, network=a.network,
                  hidden=a.hidden, sigma=a.sigma, sigma_mode=a.sigma_mode, beta=a.beta, warmup_epochs=a.warmup,
                  free_bits=a.free_bits, iwae_k=a.iwae_k, kl=a.kl, binarization=a.binarization,
                  batch_size=a.batch_size, lr=a.lr, lr_schedule=a.lr_schedule, seed=a.seed,
                  eval_every=a.eval_every, checkpoint_every=a.checkpoint_every)
    try:
        return RunConfig(**values)
    except ValueError as err:
        raise UsageError(_argument_text(str(err))) from None


def _argument_text(message: str) -> str:
    """Name the command-line flag in a config error: 'latent_dim must ...' -> '--latent-dim: latent_dim must ...'."""
    flags = {"warmup_epochs": "--warmup"}
    for field in RunConfig.__dataclass_fields__:
        if field in message.split(" ")[:3] or message.startswith(field) or f" {field} " in message[:40]:
            flag = flags.get(field, "--" + field.replace("_", "-"))
            return f"{flag}: {message}"
    return message


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


def cmd_train(a) -> dict:
    from vae_tfp.data import DatasetNotFoundError
    from vae_tfp.runs import create_run, runs_root
    from vae_tfp.training import Trainer

    if a.resume and not a.run_dir:
        raise UsageError("--resume needs --run-dir: the run directory to continue")
    cfg = config_from_args(a)
    kwargs = dict(data_dir=a.data_dir, strategy=make_strategy(a.strategy), precision=a.precision)
    try:
        if a.resume:
            trainer = Trainer.resume(a.run_dir, **kwargs)
        else:
            if a.run_dir:
                target = Path(a.run_dir)
                if target.exists():
                    raise UsageError(f"--run-dir: {target} already exists; pass --resume to continue it, "
                                     "or choose a new directory")
                run = create_run(cfg, target.parent, target.name)
                if run.path.name != target.name:
                    raise UsageError(f"--run-dir: {target.name!r} is not a valid run name (became {run.path.name!r})")
                kwargs["run"] = run
            else:
                kwargs["runs_root"] = runs_root(a.runs_root)
            trainer = Trainer(cfg, **kwargs)
    except (DatasetNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    start_step = trainer.step
    bar = _progress(trainer, quiet=a.quiet)
    try:
        result = trainer.train()
    finally:
        bar.close()
    return {"run_dir": str(result.run.path), "status": result.status, "steps": result.steps,
            "epochs": result.epochs, "images_per_second": result.images_per_second,
            "test_elbo": result.test_metrics.get("elbo"), "test_distortion": result.test_metrics.get("distortion"),
            "test_rate": result.test_metrics.get("rate"), "train_elbo": result.train_metrics.get("elbo"),
            "data_note": trainer.data.note, "resumed_from_step": start_step if a.resume else None}


def _progress(trainer, quiet: bool):
    from tqdm import tqdm

    bar = tqdm(total=trainer.total_steps, initial=trainer.step, disable=quiet, unit="step", file=sys.stderr,
               dynamic_ncols=True)

    def on_event(event):
        if event.kind == "step":
            bar.update(event.step - bar.n)
            if event.step % 10 == 0:
                bar.set_postfix(elbo=f"{event.metrics['elbo']:.2f}", img_s=f"{event.images_per_second:.0f}",
                                refresh=False)
        elif event.kind == "eval":
            bar.write(f"epoch {event.epoch}: test ELBO {event.test_metrics['elbo']:.3f} nats "
                      f"(distortion {event.test_metrics['distortion']:.3f}, KL {event.test_metrics['rate']:.3f})")

    trainer.callbacks.append(on_event)
    return bar


def cmd_evaluate(a) -> dict:
    from vae_tfp.runs import open_run
    from vae_tfp.summary import evaluate_run

    try:
        run = open_run(a.run_dir)
    except ValueError as err:
        raise UsageError(f"run_dir: {err}") from None
    report = evaluate_run(run, k=a.k, n=a.n, data_dir=a.data_dir, images=not a.no_images)
    if not a.json:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    return report


def cmd_datasets(a) -> list:
    from vae_tfp.data import list_datasets

    rows = list_datasets()
    if not a.json:
        for r in rows:
            mark = "yes" if r["available"] else "no (see README: Data)"
            print(f"{r['name']:>16}  {r['kind']:<6}  offline: {mark:<22} {r['description']}")
    return rows


def cmd_runs(a) -> list:
    from vae_tfp.runs import list_runs

    rows = list_runs(a.runs_root)
    if not a.json:
        if not rows:
            print("no runs yet")
        for r in rows:
            elbo = "-" if r["test_elbo"] is None else f"{r['test_elbo']:.3f}"
            print(f"{r['name']:<48} {r['dataset']:<14} {r['likelihood']:<22} {r['status']:<10} test ELBO {elbo}")
    return rows


def cmd_bench(a) -> dict:
    try:
        if a.peers:  # vae-tfp against JAX and PyTorch, each in its own worker process (bench/peers/run.py)
            from bench.peers.run import run_peers as run
        else:
            from bench.run import run_benchmarks as run
    except ImportError as err:
        raise UsageError(f"the benchmarks live in the repository's bench/ folder; run from the repo root ({err})") \
            from None
    return run(quick=a.quick, print_table=not a.json)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "datasets": cmd_datasets, "runs": cmd_runs,
            "bench": cmd_bench}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on bad arguments
    try:
        result = COMMANDS[args.command](args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - every failure becomes exit 1 with its message
        from vae_tfp.training import TrainingDiverged

        kind = "training diverged" if isinstance(err, TrainingDiverged) else type(err).__name__
        print(f"error ({kind}): {err}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"error": str(err), "status": "failed"}))
        return 1
    if getattr(args, "json", False):
        print(json.dumps(result, default=_json_default))
    return 0


def _json_default(value):
    try:
        return value.item()
    except AttributeError:
        return str(value)
