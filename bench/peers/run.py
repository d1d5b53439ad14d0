"""vae-tfp against its peers, side by side in one run: the coordinator.

    python -m vae_tfp bench --peers [--quick] [--json]
    python -m bench.peers.run [--quick] [--json] [--repeats N] [--impls vae_tfp,jax,...]

Every implementation (bench/peers/impls.py) runs in its own worker process (`python -m bench.peers.worker IMPL`,
the same Python as this one), so no two frameworks share a process or a thread pool; only one worker computes at a
time. In order:
    1. the vae-tfp worker loads the data and writes it (training intensities, binarized test set) and its model's
       initial weights for the others (reference.py);
    2. parity: each implementation trains `parity_epochs` epochs at batch `parity_batch` from those initial weights
       and reports its test ELBO (all 10 000 test images, one z sample); they agree within `parity_tolerance` nats
       of vae-tfp's, or the check says which did not. vae-tfp's trained weights are what step 4 scores;
    3. training speed: `repeats` rounds; in each round, for each batch size, every implementation (in an order
       rotated every round) trains `train_warmup` steps then `train_steps` timed steps -> images/s;
    4. evaluation: importance-sampled log p(x), k = `eval_k`, the first `eval_n` test images, the same weights for
       all; once untimed (compilation), then `eval_repeats` interleaved timed rounds -> seconds.
Figures are medians over repeats with min and max. Speedups: vae-tfp's median over the peer group's (for a group
with several main implementations -- PyTorch eager and compiled -- the faster one's median):
    train_speedup_vs_{jax,torch}_b{batch} = vae-tfp img/s / peer img/s
    eval_speedup_vs_{jax,torch}           = peer seconds / vae-tfp seconds
A peer whose packages are missing is named on stderr with how to install it, and the rest is still measured; its
speedups are null.
"""

import argparse
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.peers.impls import IMPLS, INSTALL_HINT, PEER_GROUPS, REFERENCE

ROOT = Path(__file__).resolve().parents[2]  # the repository root: workers import this checkout's code
FULL = dict(dataset="fashion_mnist", hidden=(512, 256), latent=16, seed=0, repeats=7, batch_sizes=(128, 512),
            train_steps={128: 200, 512: 60}, train_warmup={128: 20, 512: 10}, parity_epochs=2, parity_batch=128,
            parity_tolerance=1.0, eval_k=1000, eval_n=1000, eval_repeats=5, max_points=2**15, impls=tuple(IMPLS),
            call_timeout=1800)
QUICK = dict(FULL, dataset="digits", hidden=(32, 16), latent=2, repeats=2, train_steps={128: 10, 512: 10},
             train_warmup={128: 10, 512: 10}, parity_epochs=1, eval_k=8, eval_n=20, eval_repeats=1,
             )  # (quick: digits and a tiny model; only the plumbing is exercised)


class WorkerError(RuntimeError):
    """A worker failed a command or died; the message holds its error and the tail of its log."""


def worker_command(name: str) -> list[str]:
    return [sys.executable, "-m", "bench.peers.worker", name]


class WorkerProcess:
    """One worker subprocess speaking the line protocol (bench/peers/protocol.py); its stderr goes to a log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, timeout: float):
        self.name, self.log_path, self.timeout = name, log_path, timeout
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)

    def call(self, cmd: str, **args):
        try:
            self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._failure(f"{cmd}: the worker has exited")) from None
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else None
        if line is None:
            self.kill()
            raise WorkerError(self._failure(f"{cmd}: no answer within {self.timeout:.0f} s"))
        if not line:
            raise WorkerError(self._failure(f"{cmd}: the worker exited (status {self.proc.wait()})"))
        reply = json.loads(line)
        if not reply.get("ok"):
            raise WorkerError(self._failure(f"{cmd}: {reply.get('error')}\n{reply.get('trace', '')}"))
        return reply["result"]

    def _failure(self, what: str) -> str:
        self._log.flush()
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        return f"worker {self.name} failed at {what}\n--- its log ({self.log_path}), last lines:\n{tail}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit")
                self.proc.wait(timeout=30)
            except (WorkerError, subprocess.TimeoutExpired, OSError, ValueError):
                self.kill()
        self._log.close()


def stats(values) -> dict:
    """{median, min, max, all} of a list of numbers (None for each figure when the list is empty)."""
    values = [float(v) for v in values]
    if not values:
        return {"median": None, "min": None, "max": None, "all": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def cpu_model(path: str = "/proc/cpuinfo") -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def missing_message(name: str, hello: dict) -> str:
    impl = IMPLS[name]
    return (f"peer {name} ({impl.label}) is not measured: {hello.get('missing')!r} does not import in "
            f"{hello.get('python', sys.executable)} ({hello.get('error')}). To measure it, {INSTALL_HINT}. "
            "Measuring the rest.")


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _rotated(names: list, r: int) -> list:
    return names[r % len(names):] + names[:r % len(names)] if names else names


def run_peers(quick: bool = False, print_table: bool = True, settings: dict | None = None, command=worker_command,
              log=None) -> dict:
    """Run the whole comparison (see the module docstring) and return its JSON-serialisable summary."""
    s = dict(QUICK if quick else FULL, **(settings or {}))
    log = log or (lambda text: print(f"[bench --peers] {text}", file=sys.stderr, flush=True))
    unknown = [n for n in s["impls"] if n not in IMPLS]
    if unknown:
        raise ValueError(f"unknown implementation(s) {unknown}; allowed: {', '.join(IMPLS)}")
    names = [REFERENCE] + [n for n in s["impls"] if n != REFERENCE]
    t_start = time.perf_counter()
    workers, hellos, missing, failed = {}, {}, {}, {}
    raw = {"parity": {}, "train": {n: {bs: [] for bs in s["batch_sizes"]} for n in names},
           "eval": {n: [] for n in names}, "eval_setup": {}}

    def attempt(name, fn):
        """Run fn(); a failing peer is reported and dropped, a failing vae-tfp worker ends the run."""
        try:
            return fn()
        except WorkerError as err:
            if name == REFERENCE:
                raise
            failed[name] = str(err)
            log(f"{name} failed and is left out: {str(err).splitlines()[0]}")
            workers.pop(name).close()
            return None

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None  # `timeout` cleans up too
    with tempfile.TemporaryDirectory(prefix="vae-tfp-peers-") as tmp:
        folder = Path(tmp)
        try:
            for name in names:
                workers[name] = WorkerProcess(name, command(name), folder / f"{name}.log", s["call_timeout"])
            for name in names:
                hello = attempt(name, lambda w=workers[name]: w.call("hello"))
                if hello is None:
                    continue
                hellos[name] = hello
                if not hello.get("available"):
                    missing[name] = missing_message(name, hello)
                    log(missing[name])
                    workers.pop(name).close()
            if REFERENCE not in workers:
                raise WorkerError(f"the vae-tfp worker cannot run: {missing.get(REFERENCE)}")
            ref = workers[REFERENCE]
            model = dict(hidden=list(s["hidden"]), latent=s["latent"], seed=s["seed"])
            log(f"data: {s['dataset']}; writing shared data and initial weights")
            data = ref.call("prepare", folder=tmp, dataset=s["dataset"], parity_epochs=s["parity_epochs"],
                            parity_batch=s["parity_batch"], **model)
            for name in list(workers):
                attempt(name, lambda w=workers[name]: w.call("setup", folder=tmp, **model))
            init, trained = str(folder / "init.npz"), str(folder / "trained.npz")

            for name in list(workers):  # 2. parity, vae-tfp first (its trained weights are step 4's)
                log(f"parity: {name}, {s['parity_epochs']} epochs at batch {s['parity_batch']}")
                r = attempt(name, lambda w=workers[name], n=name: w.call(
                    "parity", weights=init, epochs=s["parity_epochs"], batch=s["parity_batch"],
                    out=trained if n == REFERENCE else None))
                if r is not None:
                    raw["parity"][name] = r
                    log(f"  {name}: test ELBO {r['test_elbo']:.3f} ({r['seconds']:.1f} s)")

            for rep in range(s["repeats"]):  # 3. training speed, interleaved
                log(f"training speed: round {rep + 1} of {s['repeats']}")
                for bs in s["batch_sizes"]:
                    for name in _rotated(list(workers), rep):
                        if name not in workers:
                            continue
                        r = attempt(name, lambda w=workers[name], b=bs: w.call(
                            "train_window", batch=b, steps=s["train_steps"][b], warmup=s["train_warmup"][b],
                            weights=init))
                        if r is not None:
                            raw["train"][name][bs].append(r["images_per_second"])
                            log(f"  {name} batch {bs}: {r['images_per_second']:.0f} img/s")

            eval_names = [n for n in workers if not IMPLS[n].info]  # 4. evaluation
            for name in eval_names:
                log(f"log p(x): {name} compiles")
                r = attempt(name, lambda w=workers[name]: w.call("eval_setup", weights=trained, k=s["eval_k"],
                                                                 n=s["eval_n"], max_points=s["max_points"]))
                if r is not None:
                    raw["eval_setup"][name] = r
            for rep in range(s["eval_repeats"]):
                log(f"log p(x): round {rep + 1} of {s['eval_repeats']}")
                for name in _rotated([n for n in eval_names if n in workers], rep):
                    r = attempt(name, lambda w=workers[name]: w.call("eval"))
                    if r is not None:
                        raw["eval"][name].append(r)
                        log(f"  {name}: {r['seconds']:.2f} s, mean log p(x) {r['mean_log_px']:.3f}")
        finally:
            for w in workers.values():
                w.close()
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    out = summarize(s, raw, hellos, missing, failed, data)
    out["quick"], out["wall_seconds"] = quick, time.perf_counter() - t_start
    if print_table:
        print(format_table(out))
    return out


def summarize(s: dict, raw: dict, hellos: dict, missing: dict, failed: dict, data: dict) -> dict:
    """The result dict from the raw measurements (separate from the running, so the bookkeeping is testable)."""
    measured = [n for n in hellos if n not in missing and n not in failed]
    impls = {}
    for name in hellos:
        impl = IMPLS[name]
        evals = raw["eval"].get(name, [])
        impls[name] = {
            "label": impl.label, "group": impl.group, "info": impl.info,
            "status": "missing" if name in missing else "failed" if name in failed else "measured",
            "versions": hellos[name].get("versions", {}),
            "train_images_per_second": {str(bs): stats(raw["train"].get(name, {}).get(bs, []))
                                        for bs in s["batch_sizes"]},
            "eval_seconds": stats([e["seconds"] for e in evals]),
            "eval_mean_log_px": evals[-1]["mean_log_px"] if evals else None,
            "parity": raw["parity"].get(name),
        }
        if impls[name]["eval_seconds"]["median"]:
            impls[name]["eval_images_per_second"] = s["eval_n"] / impls[name]["eval_seconds"]["median"]

    def train_median(name, bs):
        return impls[name]["train_images_per_second"][str(bs)]["median"] if name in impls else None

    def eval_median(name):
        return impls[name]["eval_seconds"]["median"] if name in impls else None

    out = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version()}
    versions = {}
    for name in measured:
        versions.update(hellos[name].get("versions", {}))
    out["versions"] = versions
    for group in PEER_GROUPS:
        members = [n for n in measured if IMPLS[n].group == group and not IMPLS[n].info]
        for bs in s["batch_sizes"]:
            peer = [(train_median(n, bs), n) for n in members if train_median(n, bs)]
            ours = train_median(REFERENCE, bs)
            best = max(peer) if peer else None
            out[f"train_speedup_vs_{group}_b{bs}"] = ours / best[0] if best and ours else None
            out[f"train_{group}_best_b{bs}"] = best[1] if best else None
        peer = [(eval_median(n), n) for n in members if eval_median(n)]
        ours, best = eval_median(REFERENCE), min(peer) if peer else None
        out[f"eval_speedup_vs_{group}"] = best[0] / ours if best and ours else None
        out[f"eval_{group}_best"] = best[1] if best else None
    out["implementations"] = impls
    out["elbo_parity"] = parity_check(raw["parity"], s["parity_tolerance"], s["parity_epochs"], s["parity_batch"])
    log_px = {n: impls[n]["eval_mean_log_px"] for n in impls if impls[n]["eval_mean_log_px"] is not None}
    ref_px = log_px.get(REFERENCE)
    out["log_px_agreement"] = {"mean_log_px": log_px, "max_abs_diff_vs_vae_tfp": max(
        (abs(v - ref_px) for n, v in log_px.items() if n != REFERENCE), default=None) if ref_px is not None else None}
    out["missing"] = missing
    out["failed"] = {n: text.splitlines()[0] for n, text in failed.items()}
    out["data"] = data
    out["settings"] = {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v) for k, v in s.items()}
    out["targets"] = {"train_vs_jax": 1.2, "train_vs_torch": 1.5, "eval_vs_jax": 1.2, "eval_vs_torch": 1.2}
    return out


def parity_check(parity: dict, tolerance: float, epochs: int, batch: int) -> dict:
    """Each implementation's test ELBO after the same epochs from the same weights, against vae-tfp's."""
    elbos = {n: r["test_elbo"] for n, r in parity.items()}
    ref = elbos.get(REFERENCE)
    diffs = {n: v - ref for n, v in elbos.items() if n != REFERENCE} if ref is not None else {}
    worst = max((abs(d) for d in diffs.values()), default=None)
    return {"epochs": epochs, "batch": batch, "tolerance_nats": tolerance, "test_elbo": elbos,
            "diff_vs_vae_tfp": diffs, "max_abs_diff": worst,
            "passed": None if worst is None else bool(worst <= tolerance),
            "outside": sorted(n for n, d in diffs.items() if abs(d) > tolerance)}


def _fmt(st: dict, unit: float = 1.0, digits: int = 0) -> str:
    if st["median"] is None:
        return "-"
    def f(v):
        return f"{v / unit:,.{digits}f}".replace(",", " ")

    return f"{f(st['median'])} ({f(st['min'])}-{f(st['max'])})"


def format_table(r: dict) -> str:
    """Plain-text table of a `run_peers` result."""
    batch_sizes = r["settings"]["batch_sizes"]
    head = ["implementation"] + [f"batch {bs} img/s" for bs in batch_sizes] + ["log p(x) s", "parity ELBO"]
    rows = []
    for d in r["implementations"].values():
        if d["status"] != "measured":
            rows.append([d["label"], d["status"]] + [""] * (len(head) - 2))
            continue
        parity = d["parity"]["test_elbo"] if d["parity"] else None
        rows.append([d["label"]] + [_fmt(d["train_images_per_second"][str(bs)]) for bs in batch_sizes]
                    + [_fmt(d["eval_seconds"], digits=2), "-" if parity is None else f"{parity:.2f}"])
    for group, target in (("jax", "1.2"), ("torch", "1.5")):
        cells = []
        for bs in batch_sizes:
            v = r.get(f"train_speedup_vs_{group}_b{bs}")
            cells.append("-" if v is None else f"{v:.2f}x")
        e = r.get(f"eval_speedup_vs_{group}")
        rows.append([f"vae-tfp speedup vs {group} (target {target}x train, 1.2x eval)"] + cells
                    + ["-" if e is None else f"{e:.2f}x", ""])
    widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]
    lines = [f"CPU: {r['cpu_model']} ({r['cpu_count']} cores)",
             "  ".join(h.ljust(w) for h, w in zip(head, widths)), "-" * (sum(widths) + 2 * len(widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    p = r["elbo_parity"]
    if p["max_abs_diff"] is not None:
        verdict = "passed" if p["passed"] else f"FAILED for {', '.join(p['outside'])}"
        lines.append(f"ELBO parity after {p['epochs']} epochs: max |diff| vs vae-tfp {p['max_abs_diff']:.2f} nats "
                     f"(tolerance {p['tolerance_nats']}): {verdict}")
    a = r["log_px_agreement"]
    if a["max_abs_diff_vs_vae_tfp"] is not None:
        lines.append(f"log p(x) on the same weights: max |diff| vs vae-tfp {a['max_abs_diff_vs_vae_tfp']:.3f} nats")
    for text in r["missing"].values():
        lines.append(f"missing: {text}")
    for name, text in r["failed"].items():
        lines.append(f"failed: {name}: {text}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quick", action="store_true", help="tiny model on digits: only the plumbing is exercised")
    p.add_argument("--repeats", type=int, help="interleaved training rounds (default 7)")
    p.add_argument("--eval-repeats", type=int, help="interleaved log p(x) rounds (default 5)")
    p.add_argument("--impls", help=f"comma-separated subset of: {', '.join(IMPLS)}")
    a = p.parse_args(argv)
    settings = {}
    if a.repeats:
        settings["repeats"] = a.repeats
    if a.eval_repeats:
        settings["eval_repeats"] = a.eval_repeats
    if a.impls:
        settings["impls"] = tuple(a.impls.split(","))
    r = run_peers(quick=a.quick, print_table=not a.json, settings=settings)
    if a.json:
        print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
