"""Command line: `python -m vae_tfp train | launch | evaluate | density | datasets | runs | bench`.

Thin: parses arguments into a RunConfig and calls the library. The `train` flags are generated from the RunConfig
fields' metadata (`vae_tfp.config.SETTINGS`: flag, help, range, choices, group), so each setting is written once.
Exit status: 0 success, 2 bad arguments (the message names the argument and what is allowed; a model larger than
`vae_tfp.budget` allows is one), 1 failures such as NaN during training. With --json the last line printed on
stdout is one JSON object.

    python -m vae_tfp train --dataset digits --likelihood bernoulli --latent-dim 2 --epochs 10
    python -m vae_tfp evaluate runs/<name> --k 1000 --json
    python -m vae_tfp density runs/<name> --grid 200 --json        (2-D point data)
    python -m vae_tfp launch --workers 2 -- train --dataset digits --json   (N local workers, tf.distribute)
"""

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from vae_tfp import config as C
from vae_tfp import distribute
from vae_tfp.config import RunConfig


class UsageError(Exception):
    """Bad arguments: exit status 2."""


class CommandFailed(Exception):
    """A command ran but failed (e.g. training diverged): exit status 1, `result` is still printed with --json."""

    def __init__(self, kind: str, message: str, result: dict):
        super().__init__(message)
        self.kind, self.result = kind, result


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


@dataclass(frozen=True)
class Bounded:
    """An argparse type: an int or a finite float in [lo, hi] (a field's range), else a message saying so."""

    kind: type  # int or float
    lo: float
    hi: float

    def __call__(self, text: str):
        what = "an integer" if self.kind is int else "a number"
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if not self.lo <= value <= self.hi:
            raise argparse.ArgumentTypeError(f"must be {what} in [{self.lo}, {self.hi}], got {text!r}")
        return value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field, from its Setting: name, default, choices or range, help; grouped as in the
    sidebar. The value lands under the field's name (`args.latent_dim`)."""
    groups = {group: parser.add_argument_group(title) for group, title in C.GROUPS.items()}
    for name, setting in C.SETTINGS.items():
        kind, default = C.kind(name), C.DEFAULTS[name]
        flags = [C.flag(name)]
        if flags[0] != "--" + name.replace("_", "-"):
            flags.append("--" + name.replace("_", "-"))  # the field's own name works too
        options = {"dest": name, "default": default, "help": setting.help.replace("%", "%%")}
        if kind == "choice":
            options["choices"] = tuple(setting.choices)
            options["help"] += " " + "; ".join(f"{n}: {words}" for n, words in setting.choices.items()) + "."
        elif kind in ("int", "float"):
            lo, hi = setting.range
            options["type"] = Bounded(int if kind == "int" else float, lo, hi)
            options["metavar"] = "N" if kind == "int" else "X"
            options["help"] += f" In [{lo}, {hi}]."
        elif kind == "widths":
            options["default"] = ",".join(map(str, default))
        options["help"] += " (default: %(default)s)"
        groups[setting.group].add_argument(*flags, **options)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _int_between(lo, hi):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae_tfp", description="Train and evaluate VAEs headless.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a VAE and save the run")
    t.add_argument("--data-dir", help="folder with IDX files for fashion_mnist / mnist (or set VAE_TFP_DATA)")
    add_config_arguments(t)
    t.add_argument("--run-dir", help="this run's directory (default: runs/<dataset>-<likelihood>-...)")
    t.add_argument("--runs-root", help="parent folder of run directories (default: $VAE_TFP_RUNS or ./runs)")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    t.add_argument("--strategy", default="default", choices=distribute.STRATEGIES,
                   help="default: one device; mirrored: every local device (MirroredStrategy); multiworker: the "
                        "workers TF_CONFIG names (MultiWorkerMirroredStrategy; see `launch`). --batch-size is the "
                        "global batch, over all replicas")
    t.add_argument("--startup-timeout", type=_positive_float, default=distribute.STARTUP_TIMEOUT, metavar="S",
                   help="multiworker: seconds to wait for every worker to join (default: %(default)s)")
    t.add_argument("--collective-timeout", type=_positive_float, default=distribute.COLLECTIVE_TIMEOUT, metavar="S",
                   help="multiworker: seconds one collective may wait for the other workers (default: %(default)s)")
    t.add_argument("--precision", default="float32", choices=C.PRECISIONS,
                   help="bfloat16 runs the hidden dense matmuls in bf16 (faster on CPUs with AVX512-BF16/AMX; "
                        "weights, optimizer and loss stay float32; see bench/precision_parity.py)")
    t.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    t.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch test lines")

    e = sub.add_parser("evaluate", help="evaluate a saved run on its test set")
    e.add_argument("run_dir")
    e.add_argument("--k", type=_positive_int, default=1000, help="importance samples per image")
    e.add_argument("--n", type=_positive_int, help="evaluate only the first N test images")
    e.add_argument("--data-dir")
    e.add_argument("--no-images", action="store_true", help="do not write reconstruction / sample PNGs")
    e.add_argument("--json", action="store_true")

    dn = sub.add_parser("density", help="the model's p(x) on a grid over the plane (runs on 2-D point data)")
    dn.add_argument("run_dir")
    dn.add_argument("--grid", type=_int_between(2, 2000), default=200, help="data grid points per axis")
    dn.add_argument("--latent-grid", type=_positive_int,
                    help="latent grid points per dimension for the quadrature (latent <= 2; default 1000 in 1-D, "
                         "100 in 2-D)")
    dn.add_argument("--k", type=_positive_int, help="importance samples per test point (latent > 2; default 1000)")
    dn.add_argument("--grid-k", type=_positive_int, help="importance samples per grid point (latent > 2; default 100)")
    dn.add_argument("--n", type=_positive_int, help="use only the first N test points")
    dn.add_argument("--data-dir")
    dn.add_argument("--no-image", action="store_true", help="do not write density.png")
    dn.add_argument("--json", action="store_true")

    la = sub.add_parser("launch", help="train with N local workers (MultiWorkerMirroredStrategy on 127.0.0.1)",
                        description="Starts N workers of `python -m vae_tfp train ... --strategy multiworker` on this "
                                    "machine, each with its TF_CONFIG; shows the chief's progress bar and output (its "
                                    "--json is the last line). Usage: launch --workers N -- train [train flags]")
    la.add_argument("--workers", type=_int_between(1, 64), required=True, help="how many worker processes")
    la.add_argument("--host", default="127.0.0.1", help="the address the workers listen on (default: %(default)s)")
    la.add_argument("train_args", nargs=argparse.REMAINDER, help="-- train [flags]")

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
    """The RunConfig the train arguments describe; UsageError naming the flag of a bad value."""
    values = {name: getattr(a, name) for name in C.SETTINGS}
    for name, value in values.items():  # each field alone first, so the message names the flag that is wrong
        try:
            RunConfig(**{name: value})
        except ValueError as err:
            raise UsageError(f"{C.flag(name)}: {err}") from None
    try:
        return RunConfig(**values)
    except ValueError as err:  # a combination that is not allowed (free bits with IWAE)
        raise UsageError(str(err)) from None


def cmd_train(a) -> dict:
    from vae_tfp import budget
    from vae_tfp.data import DatasetNotFoundError, load
    from vae_tfp.explain.advice import fit_report
    from vae_tfp.runs import runs_root, safe_name
    from vae_tfp.training import RunRecorder, Trainer

    if a.resume and not a.run_dir:
        raise UsageError("--resume needs --run-dir: the run directory to continue")
    cfg = config_from_args(a)
    try:  # before TensorFlow runs any op; multiworker waits here for every worker (bounded)
        strategy = distribute.make_strategy(a.strategy, startup_timeout=a.startup_timeout,
                                            collective_timeout=a.collective_timeout)
    except distribute.DistributeError as err:
        raise UsageError(f"--strategy {a.strategy}: {err}") from None
    chief = distribute.worker_info(strategy).is_chief
    if a.run_dir and not a.resume and chief:  # the chief writes the run; the other workers write nothing
        target = Path(a.run_dir)
        if target.exists():
            raise UsageError(f"--run-dir: {target} already exists; pass --resume to continue it, "
                             "or choose a new directory")
        try:
            valid = safe_name(target.name) == target.name
        except ValueError:
            valid = False
        if not valid:
            raise UsageError(f"--run-dir: {target.name!r} is not a valid run name: use letters, digits, '.', '_' "
                             "and '-'")
    kwargs = dict(data_dir=a.data_dir, strategy=strategy, precision=a.precision)
    try:  # nothing is written before training starts: a failure here leaves no run directory behind
        if a.resume:
            trainer = Trainer.resume(a.run_dir, **kwargs)
        else:
            kwargs["dataset"] = load(cfg.dataset, data_dir=a.data_dir, seed=cfg.seed)
            too_large = budget.problem_for(cfg, kwargs["dataset"])  # the model's size, before anything is built
            if too_large:
                raise UsageError(too_large)
            trainer = Trainer(cfg, **kwargs)
    except (DatasetNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    if not a.quiet and chief:  # the same advice the dashboard shows under the likelihood
        advice = fit_report(trainer.dataset, trainer.config.likelihood, trainer.config.binarization)
        if advice.message:
            print(f"note: {advice.message.replace('**', '')}", file=sys.stderr)
    recorder = RunRecorder(a.run_dir) if a.run_dir else RunRecorder(runs_root=runs_root(a.runs_root))
    trainer.callbacks.append(recorder)
    start_step = trainer.step
    bar = _progress(trainer, quiet=a.quiet or not chief)
    restore = distribute.stop_on_signals(trainer) if trainer.cluster.workers > 1 else (lambda: None)
    lost = None
    try:
        result = trainer.train()
    except distribute.WorkersDisagree as err:
        raise UsageError(str(err)) from None
    except distribute.WorkerLost as err:
        lost = str(err)
    finally:
        bar.close()
        restore()
    if recorder.run is not None:
        run_dir = str(recorder.run.path)
    else:  # no step applied in this call, or a worker other than the chief (which writes --run-dir when given)
        run_dir = str(Path(a.run_dir).resolve()) if a.run_dir and (a.resume or not chief) else None
    if lost:
        raise CommandFailed("worker lost", lost, {"run_dir": run_dir, "status": "stopped", "steps": trainer.step,
                                                   "epochs": trainer.epoch, "workers": trainer.cluster.workers})
    out = {"run_dir": run_dir, "status": result.status,
           "steps": result.steps, "epochs": result.epochs, "images_per_second": result.images_per_second,
           "test_elbo": result.test_metrics.get("elbo"),
           "test_reconstruction": result.test_metrics.get("reconstruction"), "test_kl": result.test_metrics.get("kl"),
           "train_elbo": result.train_metrics.get("elbo"),
           "data_note": trainer.data.note, "resumed_from_step": start_step if a.resume else None,
           "workers": trainer.cluster.workers, "worker": trainer.cluster.rank,
           "replicas": trainer.strategy.num_replicas_in_sync, **_last_diagnostics(recorder.run)}
    from vae_tfp.explain.advice import run_warnings

    out["warnings"] = run_warnings(trainer.model, trainer.config, recorder.run.history() if recorder.run else [],
                                   trainer.event_shape)
    for warning in out["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if result.status == "diverged":
        raise CommandFailed("training diverged", result.message, out)
    return out


def _last_diagnostics(run) -> dict:
    """`active_units`, `mutual_information` and `kl_per_dim` of the run's last diagnostics record (None without)."""
    from vae_tfp.explain.curves import diagnostics

    last = (diagnostics(run.history()).last() if run is not None else None) or {}
    return {key: last.get(key) for key in ("active_units", "mutual_information", "kl_per_dim")}


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
        elif event.kind == "eval" and not quiet:  # beside the bar, on stderr: stdout is for the result
            bar.write(f"epoch {event.epoch}: test ELBO {event.test_metrics['elbo']:.3f} nats "
                      f"(reconstruction {event.test_metrics['reconstruction']:.3f}, KL {event.test_metrics['kl']:.3f})",
                      file=sys.stderr)

    trainer.callbacks.append(on_event)
    return bar


def _run_arg(path):
    """The run a command names (`run_dir`), or a UsageError saying why it is not one."""
    from vae_tfp.runs import open_run

    try:
        return open_run(path)
    except ValueError as err:
        raise UsageError(f"run_dir: {err}") from None


def cmd_evaluate(a) -> dict:
    from vae_tfp.summary import evaluate_run

    run = _run_arg(a.run_dir)
    report = evaluate_run(run, k=a.k, n=a.n, data_dir=a.data_dir, images=not a.no_images)
    if not a.json:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    return report


def cmd_density(a) -> dict:
    from vae_tfp.density_report import density_report

    run = _run_arg(a.run_dir)
    try:
        report = density_report(run, grid=a.grid, latent_grid=a.latent_grid, k=a.k, grid_k=a.grid_k, n=a.n,
                                data_dir=a.data_dir, image=not a.no_image)
    except ValueError as err:
        raise UsageError(str(err)) from None
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


def cmd_launch(a) -> int:
    """Runs the workers; their chief prints the results, so launch prints nothing on stdout itself."""
    argv = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    try:
        return distribute.launch(a.workers, argv, host=a.host)
    except ValueError as err:
        raise UsageError(str(err)) from None


COMMANDS = {"train": cmd_train, "launch": cmd_launch, "evaluate": cmd_evaluate, "density": cmd_density,
            "datasets": cmd_datasets, "runs": cmd_runs, "bench": cmd_bench}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # argparse itself exits 2 on bad arguments
    try:
        result = COMMANDS[args.command](args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - every failure becomes exit 1 with its message
        kind = err.kind if isinstance(err, CommandFailed) else type(err).__name__
        print(f"error ({kind}): {err}", file=sys.stderr)
        if getattr(args, "json", False):
            result = err.result if isinstance(err, CommandFailed) else {"status": "failed"}
            print(json.dumps({**result, "error": str(err)}, default=_json_default))
        return 1
    if args.command == "launch":
        return result  # the exit status of the workers; the chief printed the output
    if getattr(args, "json", False):
        print(json.dumps(result, default=_json_default))
    return 0


def _json_default(value):
    try:
        return value.item()
    except AttributeError:
        return str(value)
