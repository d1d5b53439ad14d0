"""One-run benchmark: the machine's ceiling and what training, evaluation and the dashboard reach against it.

    python -m vae_tfp bench [--json] [--quick]        (or: .venv/bin/python -m bench.run [--json] [--quick])

Measured in one process, interleaved repeat by repeat so that a shared machine's slow phases hit every row alike;
each figure is the median over repeats and each ratio is taken against the median GEMM rate of the same run:

    1. gemm_gflops                  fp32 n x n x n matmul in TensorFlow, 2 n^3 / s               (bench/gemm.py)
    2. train_images_per_second      the project's Trainer on the reference MLP VAE (784-512-256-z16, mirror
                                    decoder, Bernoulli, dynamically binarized Fashion-MNIST), batch 128 (and 512),
                                    steady-state window after tracing (bench/trainer_speed.py);
       train_fraction_of_gemm       = images/s x 6.46 MFLOP per image (bench/flops.py) / GEMM FLOP/s;
       the same with precision="bfloat16" (dense matmuls in bf16) as train_bf16_*
    3. baseline_images_per_second   the textbook Keras 3 `model.fit` VAE (bench/baseline_keras.py), same
                                    architecture and batch; speedup_vs_baseline = trainer / baseline
    4. eval_seconds                 importance-sampled log p(x), k = 1000 on 1000 test images (vae_tfp.evaluation);
       eval_fraction_of_gemm        = k x n x (decoder + encoder / k) forward FLOP / seconds / GEMM FLOP/s
    5. dashboard_first_paint_s, dashboard_rerun_s   headless Chromium (bench/dashboard_speed.py); None + reason
                                    when the dashboard or chromium is missing

`quick=True` shrinks everything (8x8 digits, small networks, a 512 GEMM, no dashboard) for a smoke test: the numbers
are then meaningless, only the plumbing is exercised.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from bench.flops import eval_flops_per_sample, mlp_vae_train_flops_per_image  # noqa: E402
from bench.gemm import gemm_gflops  # noqa: E402

FULL = dict(dataset="fashion_mnist", hidden=(512, 256), latent=16, gemm_n=4096, repeats=7, batch_sizes=(128, 512),
            train_steps={128: 150, 512: 40}, train_warmup={128: 15, 512: 5}, baseline_steps={128: 150, 512: 40},
            eval_k=1000, eval_n=1000, eval_repeats=3, dashboard=True)
QUICK = dict(dataset="digits", hidden=(32, 16), latent=2, gemm_n=256, repeats=2, batch_sizes=(32, 64),
             train_steps={32: 5, 64: 3}, train_warmup={32: 2, 64: 2}, baseline_steps={32: 3, 64: 2},
             eval_k=8, eval_n=20, eval_repeats=1, dashboard=False)


def run_benchmarks(quick: bool = False, print_table: bool = True, settings: dict | None = None) -> dict:
    """Measure items 1-5 (see the module docstring) and return them as one flat-ish dict (JSON-serialisable)."""
    from bench.baseline_keras import baseline_images_per_second
    from bench.trainer_speed import TrainerProbe
    from vae_tfp.data import load, prepare
    from vae_tfp.evaluation import log_px_importance

    s = dict(QUICK if quick else FULL, **(settings or {}))
    t_start = time.perf_counter()
    dataset = load(s["dataset"])
    common = dict(dataset=dataset, latent_dim=s["latent"], hidden=s["hidden"])
    precisions = s.get("precisions", ("float32", "bfloat16"))
    probes = {(bs, p): TrainerProbe(bs, precision=p, **common) for bs in s["batch_sizes"] for p in precisions}
    x_static = prepare(dataset, "binary", binarization="static").x_train
    x_static = x_static.reshape(len(x_static), -1)
    dims = [x_static.shape[1], *s["hidden"]]
    train_flop = mlp_vae_train_flops_per_image(dims, s["latent"])

    gemm, train, baseline = [], {k: [] for k in probes}, {bs: [] for bs in s["batch_sizes"]}
    for _ in range(s["repeats"]):  # interleaved: every row sees the same machine
        gemm.append(gemm_gflops(s["gemm_n"], 2)["gflops"])
        for (bs, p), probe in probes.items():
            train[(bs, p)].append(probe.window(s["train_steps"][bs], s["train_warmup"][bs])["images_per_second"])
        for bs in s["batch_sizes"]:
            r = baseline_images_per_second(x_static, batch_size=bs, steps=s["baseline_steps"][bs], repeats=1)
            baseline[bs].append(r["images_per_second"])

    # evaluation: a trained model (the batch-128 fp32 trainer's), binarized test images (fixed seed, see vae_tfp.data)
    model = probes[(s["batch_sizes"][0], "float32")].trainer.model
    x_test = probes[(s["batch_sizes"][0], "float32")].trainer.data.x_test[:s["eval_n"]]
    log_px_importance(model, x_test[:2], k=s["eval_k"])  # trace outside the timing
    eval_s, eval_gemm, log_px = [], [], None
    for _ in range(s["eval_repeats"]):
        eval_gemm.append(gemm_gflops(s["gemm_n"], 2)["gflops"])
        t0 = time.perf_counter()
        log_px = log_px_importance(model, x_test, k=s["eval_k"])
        eval_s.append(time.perf_counter() - t0)
    gemm_all = gemm + eval_gemm
    g = statistics.median(gemm_all) * 1e9  # FLOP/s
    eval_flop = eval_flops_per_sample(dims, s["latent"], k=s["eval_k"]) * s["eval_k"] * len(x_test)

    if s["dashboard"]:
        from bench.dashboard_speed import measure_dashboard

        dash = measure_dashboard()
    else:
        dash = {"first_paint_s": None, "rerun_s": None, "reason": "skipped (quick mode)"}

    b0 = s["batch_sizes"][0]
    med = {k: statistics.median(v) for k, v in train.items()}
    for bs in s["batch_sizes"]:  # rows not measured (e.g. precisions=("float32",) against an older trainer)
        med.setdefault((bs, "bfloat16"), float("nan"))
        train.setdefault((bs, "bfloat16"), [])
    base = {bs: statistics.median(v) for bs, v in baseline.items()}
    eval_med = statistics.median(eval_s)
    out = {
        "gemm_gflops": g / 1e9, "gemm_gflops_all": gemm_all, "gemm_n": s["gemm_n"],
        "train_flop_per_image": train_flop, "batch_size": b0,
        "train_images_per_second": med[(b0, "float32")],
        "train_fraction_of_gemm": med[(b0, "float32")] * train_flop / g,
        "train_bf16_images_per_second": med[(b0, "bfloat16")],
        "train_bf16_fraction_of_gemm": med[(b0, "bfloat16")] * train_flop / g,
        "baseline_images_per_second": base[b0],
        "baseline_fraction_of_gemm": base[b0] * train_flop / g,
        "speedup_vs_baseline": med[(b0, "float32")] / base[b0],
        "speedup_bf16_vs_baseline": med[(b0, "bfloat16")] / base[b0],
        # the fastest repeat of each, against each other: robust when one side had more slow repeats than the other
        "speedup_vs_baseline_best": max(train[(b0, "float32")]) / max(baseline[b0]),
        "speedup_bf16_vs_baseline_best": max(train[(b0, "bfloat16")] or [float("nan")]) / max(baseline[b0]),
        "by_batch_size": {str(bs): {
            "train_images_per_second": med[(bs, "float32")], "train_all": train[(bs, "float32")],
            "train_fraction_of_gemm": med[(bs, "float32")] * train_flop / g,
            "train_bf16_images_per_second": med[(bs, "bfloat16")], "train_bf16_all": train[(bs, "bfloat16")],
            "train_bf16_fraction_of_gemm": med[(bs, "bfloat16")] * train_flop / g,
            "baseline_images_per_second": base[bs], "baseline_all": baseline[bs],
            "baseline_fraction_of_gemm": base[bs] * train_flop / g,
            "speedup_vs_baseline": med[(bs, "float32")] / base[bs],
            "speedup_bf16_vs_baseline": med[(bs, "bfloat16")] / base[bs]} for bs in s["batch_sizes"]},
        "eval_k": s["eval_k"], "eval_images": int(len(x_test)), "eval_seconds": eval_med, "eval_seconds_all": eval_s,
        "eval_flop": eval_flop, "eval_fraction_of_gemm": eval_flop / eval_med / g,
        "eval_mean_log_px": float(np.mean(log_px)),
        "dashboard_first_paint_s": dash.get("first_paint_s"), "dashboard_rerun_s": dash.get("rerun_s"),
        "dashboard": dash,
        "settings": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k, v in s.items()},
        "quick": quick, "wall_seconds": time.perf_counter() - t_start,
    }
    if print_table:
        print(format_table(out))
    return out


def format_table(r: dict) -> str:
    """Plain-text table of a `run_benchmarks` result."""
    g = r["gemm_gflops"]
    rows = [(f"fp32 GEMM (n={r['gemm_n']})", f"{g:.0f} GFLOP/s", "1.00")]
    for bs, d in r["by_batch_size"].items():
        rows += [(f"trainer fp32, batch {bs}", f"{d['train_images_per_second']:.0f} img/s",
                  f"{d['train_fraction_of_gemm']:.2f}"),
                 (f"trainer bf16 matmuls, batch {bs}", f"{d['train_bf16_images_per_second']:.0f} img/s",
                  f"{d['train_bf16_fraction_of_gemm']:.2f}"),
                 (f"Keras model.fit baseline, batch {bs}", f"{d['baseline_images_per_second']:.0f} img/s",
                  f"{d['baseline_fraction_of_gemm']:.2f}"),
                 (f"speedup vs baseline, batch {bs}", f"{d['speedup_vs_baseline']:.2f}x (bf16 "
                  f"{d['speedup_bf16_vs_baseline']:.2f}x)", "")]
    rows.append((f"speedup, fastest repeat vs fastest, batch {r['batch_size']}",
                 f"{r['speedup_vs_baseline_best']:.2f}x (bf16 {r['speedup_bf16_vs_baseline_best']:.2f}x)", ""))
    rows.append((f"log p(x), k={r['eval_k']}, {r['eval_images']} images", f"{r['eval_seconds']:.2f} s",
                 f"{r['eval_fraction_of_gemm']:.2f}"))
    dash = r["dashboard"]
    if dash.get("first_paint_s") is None:
        rows.append(("dashboard", f"not measured: {dash.get('reason')}", ""))
    else:
        rows.append(("dashboard first useful paint", f"{dash['first_paint_s']:.2f} s", ""))
        rerun = dash.get("rerun_s")
        rows.append(("dashboard view rerun", "n/a" if rerun is None else f"{rerun:.3f} s", ""))
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    lines = [f"{'what':<{w0}}  {'median':<{w1}}  fraction of GEMM", "-" * (w0 + w1 + 20)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description="vae-tfp benchmarks (see bench/run.py)")
    p.add_argument("--json", action="store_true", help="print only one JSON object")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    r = run_benchmarks(quick=a.quick, print_table=not a.json)
    if a.json:
        print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
