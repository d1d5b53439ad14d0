"""The one-run benchmark (bench/run.py) and the quality-at-speed script (bench/quality.py) on tiny sizes.

Only plumbing and arithmetic are checked: keys exist and ratios are computed from the reported figures. No timing
assertions (the figures depend on the machine and its load).
"""

import json

import numpy as np
import pytest

KEYS = ("gemm_gflops", "train_images_per_second", "train_fraction_of_gemm", "baseline_images_per_second",
        "speedup_vs_baseline", "eval_fraction_of_gemm", "dashboard_first_paint_s", "dashboard_rerun_s")


@pytest.fixture(scope="module")
def quick_result():
    from bench.run import run_benchmarks

    return run_benchmarks(quick=True, print_table=False)


def test_quick_benchmark_reports_every_key(quick_result):
    r = quick_result
    for key in KEYS:
        assert key in r
    json.dumps(r)  # serialisable as the CLI's last line
    assert r["gemm_gflops"] > 0 and r["train_images_per_second"] > 0 and r["baseline_images_per_second"] > 0
    assert r["dashboard_first_paint_s"] is None and r["dashboard"]["reason"]  # quick mode skips the browser


def test_ratios_are_consistent(quick_result):
    r = quick_result
    g = r["gemm_gflops"] * 1e9
    assert r["train_fraction_of_gemm"] == pytest.approx(r["train_images_per_second"] * r["train_flop_per_image"] / g)
    assert r["speedup_vs_baseline"] == pytest.approx(r["train_images_per_second"] / r["baseline_images_per_second"])
    b0 = r["by_batch_size"][str(r["batch_size"])]
    assert r["speedup_vs_baseline_best"] == pytest.approx(max(b0["train_all"]) / max(b0["baseline_all"]))
    assert r["eval_fraction_of_gemm"] == pytest.approx(r["eval_flop"] / r["eval_seconds"] / g)
    assert r["gemm_gflops"] == pytest.approx(float(np.median(r["gemm_gflops_all"])))
    for d in r["by_batch_size"].values():
        assert d["train_images_per_second"] == pytest.approx(float(np.median(d["train_all"])))
        assert d["speedup_vs_baseline"] == pytest.approx(d["train_images_per_second"] / d["baseline_images_per_second"])


def test_table_names_every_row(quick_result):
    from bench.run import format_table

    text = format_table(quick_result)
    for word in ("GEMM", "trainer fp32", "baseline", "log p(x)", "dashboard"):
        assert word in text


def test_quality_script_scores_each_checkpoint(tmp_path):
    from bench.quality import run_quality
    from vae_tfp.config import RunConfig

    config = RunConfig(dataset="digits", latent_dim=2, hidden=(16,), epochs=1000, eval_every=1000)
    out = tmp_path / "q.json"
    r = run_quality(config, [0.01, 0.02], eval_k=4, eval_n=10, out=out, log=lambda _: None)
    points = r["checkpoints"]
    assert [p["minutes"] for p in points] == [0.01, 0.02]
    assert points[1]["steps"] > points[0]["steps"] >= 1
    assert all(np.isfinite(p["test_log_px"]) for p in points)
    assert json.loads(out.read_text())["eval_k"] == 4 and out.with_suffix(".md").exists()


def test_quality_script_with_the_vampprior_keeps_per_image_scores(tmp_path):
    from bench.quality import main

    out = tmp_path / "qv.json"
    r = main(["--prior", "vamp", "--prior-components", "5", "--latent-dim", "2", "--hidden", "16", "--epochs", "1",
              "--minutes", "10", "--eval-k", "4", "--eval-n", "10", "--per-image", "--out", str(out)])
    assert r["config"]["prior"] == "vamp" and r["config"]["dataset"] == "fashion_mnist"
    points = r["checkpoints"]
    assert len(points) == 1 and points[-1]["epochs"] == 1.0  # the epoch ran out before the budget
    assert all(p["load_average_1min"] >= 0 and np.isfinite(p["test_elbo"]) for p in points)
    scores = np.load(out.with_suffix(".npz"))
    assert scores.files == ["minutes_10"] and scores["minutes_10"].shape == (10,)
    assert np.mean(scores["minutes_10"]) == pytest.approx(points[-1]["test_log_px"], rel=1e-5)
