"""The distributed training step on this machine: collectives and bytes per step, and the step time of W workers
(MultiWorkerMirroredStrategy on 127.0.0.1, one process each) against one process, at the same global batch; plus
what the measured bytes would cost across a network.

    python bench/distribute_step.py [--workers 1,2] [--steps 150] [--batch-size 128] [--small] [--json]

Rows: `default` (one process, no strategy: the single-replica fast path), then W = 1, 2, ... workers under
`--strategy multiworker` (W = 1 shows what the strategy itself costs). Each row trains the reference MLP VAE
(fashion_mnist 784-512-256-z16 Bernoulli; `--small`: digits 64-32-z2) for `warmup` steps, then times `steps` more
(the time between the first and last step events of the chief). Collectives are counted in the compiled step's
graph (every op whose type starts with "Collective", in the function and the functions it calls) and bytes are the
elements they reduce times 4.

Network estimate: a ring all-reduce of b bytes over W workers sends and receives 2 (W - 1) / W b bytes per worker and
takes 2 (W - 1) latency-bound rounds, so a step adds about
    2 (W - 1) / W * b / bandwidth + 2 (W - 1) * latency
to the compute time (which the workers otherwise share evenly: each computes B / W images).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: this checkout's vae_tfp, not an installed one
    sys.path.insert(0, str(ROOT))
NETWORKS = {"1 Gb/s, 100 us": (1e9 / 8, 100e-6), "10 Gb/s, 50 us": (10e9 / 8, 50e-6),
            "100 Gb/s, 10 us": (100e9 / 8, 10e-6)}


def collectives(concrete) -> list[dict]:
    """[{"type", "elements", "dtype"}] for every collective op in a concrete function and the functions it calls."""
    found = []

    def visit(graph, seen):
        for op in graph.get_operations():
            if op.type.startswith("Collective"):
                shape = op.inputs[0].shape if op.inputs else None
                found.append({"type": op.type, "elements": shape.num_elements() if shape is not None else None,
                              "dtype": op.inputs[0].dtype.name if op.inputs else None})
            for attr in ("then_branch", "else_branch", "body", "cond", "f"):
                try:
                    name = op.get_attr(attr).name
                except (ValueError, AttributeError):
                    continue
                fn = graph._get_function(name)  # noqa: SLF001 - the graph's own function library
                if fn is not None and name not in seen:
                    seen.add(name)
                    visit(fn.graph, seen)

    visit(concrete.graph, set())
    return found


def worker(args) -> None:
    """One worker (TF_CONFIG from the environment), or one process without a strategy."""
    import numpy as np

    from vae_tfp import distribute
    from vae_tfp.config import RunConfig
    from vae_tfp.training import Trainer

    strategy = distribute.make_strategy(args.strategy, collective_timeout=300)
    if args.small:
        config = RunConfig(dataset="digits", likelihood="bernoulli", latent_dim=2, hidden=(32,), epochs=1000,
                           batch_size=args.batch_size)
    else:
        config = RunConfig(dataset="fashion_mnist", likelihood="bernoulli", latent_dim=16, hidden=(512, 256),
                           epochs=1000, batch_size=args.batch_size)
    trainer = Trainer(config, strategy=strategy)
    times = []
    trainer.callbacks.append(lambda e: times.append(time.perf_counter()) if e.kind == "step" else None)
    trainer.train(max_steps=args.warmup)
    times.clear()
    trainer.train(max_steps=args.steps + 1)
    seconds = times[-1] - times[0]
    out = {"strategy": args.strategy, "workers": trainer.cluster.workers,
           "replicas": trainer.strategy.num_replicas_in_sync, "step_ms": 1000 * seconds / (len(times) - 1),
           "images_per_second": (len(times) - 1) * config.batch_size / seconds,
           "parameters": int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables))}
    if trainer.replicated:  # every worker traces the same graph (collective keys are handed out at trace time)
        batch, stop = next(iter(trainer.epoch_inputs(0)))
        ops = collectives(trainer.compiled_step.get_concrete_function(batch, stop, np.float32(1.0)))
        out["collectives_per_step"] = len(ops)
        out["collective_types"] = sorted({o["type"] for o in ops})
        out["bytes_per_step"] = int(sum(4 * (o["elements"] or 0) for o in ops))
        out["gradient_bytes"] = 4 * out["parameters"]
    if trainer.cluster.is_chief:
        print(json.dumps(out), flush=True)


def run_row(strategy: str, workers: int, args) -> dict:
    """Start the worker processes of one row and return the chief's figures."""
    from vae_tfp.distribute import local_cluster

    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--strategy", strategy, "--steps",
           str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)] + \
        (["--small"] if args.small else [])
    configs = local_cluster(workers) if strategy == "multiworker" else [None]
    threads = str(max(1, (os.cpu_count() or 1) // len(configs)))
    procs = []
    for tf_config in configs:
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="2")
        env.pop("TF_CONFIG", None)
        if tf_config:
            env["TF_CONFIG"] = json.dumps(tf_config)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=args.timeout) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"{strategy} x{workers} failed: " + " | ".join(e[-1500:] for _, e in outs))
    return json.loads(outs[0][0].strip().splitlines()[-1])


def network_estimate(row: dict) -> dict:
    """Seconds a step would add across each network in NETWORKS (ring all-reduce; see the module docstring)."""
    w, b, n = row["workers"], row.get("bytes_per_step", 0), row.get("collectives_per_step", 0)
    return {name: 2 * (w - 1) / w * b / bandwidth + n * 2 * (w - 1) * latency
            for name, (bandwidth, latency) in NETWORKS.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", default="1,2", help="worker counts to run under multiworker (default: 1,2)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--small", action="store_true", help="digits and a tiny network (a smoke test)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", default="default", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    rows = [run_row("default", 1, args)] + [run_row("multiworker", int(w), args) for w in args.workers.split(",")]
    base = rows[0]["step_ms"]
    for row in rows:
        row["vs_one_process"] = row["step_ms"] / base
        if row["workers"] > 1:
            row["network_seconds_per_step"] = network_estimate(row)
    if args.json:
        print(json.dumps(rows))
        return rows
    print(f"{'row':>22} {'step ms':>9} {'img/s':>8} {'x default':>9} {'collectives':>11} {'bytes/step':>11}")
    for row in rows:
        name = "default (1 process)" if row["strategy"] == "default" else f"multiworker x{row['workers']}"
        print(f"{name:>22} {row['step_ms']:9.2f} {row['images_per_second']:8.0f} {row['vs_one_process']:9.2f} "
              f"{row.get('collectives_per_step', '-'):>11} {row.get('bytes_per_step', '-'):>11}")
        for net, seconds in row.get("network_seconds_per_step", {}).items():
            print(f"{'':>22}   across {net}: + {1000 * seconds:.2f} ms per step for the all-reduce")
    return rows


if __name__ == "__main__":
    main()
