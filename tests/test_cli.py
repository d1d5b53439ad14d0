"""`python -m vae_tfp`: arguments, exit codes, JSON output, listings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_tfp.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


@pytest.mark.parametrize("args,pattern", [
    (["train", "--likelihood", "poisson"], r"--likelihood: invalid choice: 'poisson'"),
    (["train", "--latent-dim", "0"], r"--latent-dim: .*positive integer"),
    (["train", "--beta", "nan"], r"--beta: .*finite number"),
    (["train", "--network", "resnet"], r"--network: invalid choice"),
    (["train", "--precision", "fp8"], r"--precision: invalid choice: 'fp8'"),
    (["evaluate"], r"run_dir"),
])
def test_bad_arguments_exit_2_and_name_the_argument(args, pattern, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert __import__("re").search(pattern, capsys.readouterr().err)


@pytest.mark.parametrize("args,pattern", [
    (["train", "--dataset", "nope", "--epochs", "1"], r"unknown dataset 'nope'|nope"),
    (["train", "--dataset", "two_moons", "--likelihood", "bernoulli", "--epochs", "1"], r"gaussian"),
    (["train", "--free-bits", "0.5", "--iwae-k", "5"], r"free_bits.*iwae_k"),
    (["train", "--hidden", "a,b"], r"--hidden: hidden must be a list of layer widths"),
    (["train", "--resume"], r"--resume needs --run-dir"),
    (["evaluate", "/nonexistent/run"], r"run_dir: .*not a run directory"),
])
def test_bad_values_exit_2_with_a_message(args, pattern, capsys, tmp_path):
    assert main(args + (["--runs-root", str(tmp_path)] if args[0] == "train" and "--resume" not in args else [])) == 2
    assert __import__("re").search(pattern, capsys.readouterr().err)


def test_train_then_evaluate_json(tmp_path, capsys):
    run_dir = tmp_path / "r1"
    code = main(["train", "--dataset", "digits", "--epochs", "2", "--hidden", "32", "--run-dir", str(run_dir),
                 "--json", "--quiet"])
    assert code == 0
    out = _last_json(capsys)
    assert out["run_dir"] == str(run_dir.resolve()) and out["status"] == "completed"
    assert out["test_elbo"] < 0 and out["images_per_second"] > 0
    code = main(["evaluate", str(run_dir), "--k", "50", "--n", "40", "--json"])
    assert code == 0
    ev = _last_json(capsys)
    assert ev["n_images"] == 40 and ev["log_px_k"] == 50
    assert ev["log_px"] >= ev["test_elbo"] - 1.0  # IWAE_50 is (on average) above the ELBO
    assert ev["quadrature_log_px"] >= ev["quadrature_log_px_is"] - 0.5  # IS is a stochastic lower bound
    assert 0 < ev["bits_per_dim"] < 2
    assert all(Path(p).exists() for p in ev["images"])
    assert json.loads((run_dir / "metrics.json").read_text())["log_px"] == pytest.approx(ev["log_px"])


def test_bfloat16_training_matches_float32_closely(tmp_path, capsys):
    elbo = {}
    for precision in ("float32", "bfloat16"):
        code = main(["train", "--dataset", "digits", "--epochs", "3", "--hidden", "64,32", "--seed", "3", "--run-dir",
                     str(tmp_path / precision), "--precision", precision, "--json", "--quiet"])
        assert code == 0
        elbo[precision] = _last_json(capsys)["test_elbo"]
    # same seed, data order and steps; only the hidden matmuls' rounding differs
    assert elbo["bfloat16"] == pytest.approx(elbo["float32"], abs=0.5)
    assert elbo["bfloat16"] != elbo["float32"]  # the option really changed the arithmetic


def test_existing_run_dir_needs_resume(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["train", "--run-dir", str(tmp_path / "taken"), "--epochs", "1"]) == 2
    assert "already exists; pass --resume" in capsys.readouterr().err


def test_datasets_and_runs_listings(tmp_path, capsys):
    assert main(["datasets", "--json"]) == 0
    names = {r["name"] for r in _last_json(capsys)}
    assert {"digits", "fashion_mnist", "two_moons", "linear_gaussian"} <= names
    assert main(["runs", "--runs-root", str(tmp_path), "--json"]) == 0
    assert _last_json(capsys) == []
    assert main(["runs", "--runs-root", str(tmp_path)]) == 0
    assert "no runs yet" in capsys.readouterr().out


def test_module_entry_point_exit_codes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    bad = subprocess.run([sys.executable, "-m", "vae_tfp", "train", "--epochs", "x"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--epochs" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "vae_tfp", "datasets"], env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0 and "digits" in ok.stdout


def test_linear_gaussian_run_reports_exact_log_px(tmp_path, capsys):
    run_dir = tmp_path / "lin"
    assert main(["train", "--dataset", "linear_gaussian", "--likelihood", "gaussian", "--network", "linear",
                 "--sigma-mode", "shared", "--sigma", "1.0", "--epochs", "3", "--run-dir", str(run_dir), "--json",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--k", "500", "--json"]) == 0
    ev = _last_json(capsys)
    assert ev["bits_per_dim"] is None  # a density over reals: no bits per dimension
    # ELBO <= IWAE_500 <= log p(x), exactly known here (averages over 1000 test points; small MC slack)
    assert ev["test_elbo"] - 0.05 <= ev["log_px"] <= ev["exact_log_px"] + 0.05


@pytest.mark.parametrize("bad, pattern", [
    (["--dataset", "nope"], r"nope"),  # missing data
    (["--dataset", "two_moons", "--likelihood", "bernoulli"], r"gaussian"),  # a likelihood that does not fit the data
])
def test_a_failed_start_leaves_no_run_directory_and_a_retry_works(bad, pattern, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "r"
    assert main(["train", *bad, "--epochs", "1", "--run-dir", str(run_dir), "--quiet"]) == 2
    assert __import__("re").search(pattern, capsys.readouterr().err)
    assert not run_dir.exists() and not (tmp_path / "runs").exists()
    assert main(["train", *bad, "--epochs", "1", "--runs-root", str(tmp_path / "root"), "--quiet"]) == 2
    assert not (tmp_path / "root").exists()
    code = main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--run-dir", str(run_dir),
                 "--json", "--quiet"])  # not "already exists; pass --resume"
    assert code == 0
    out = _last_json(capsys)
    assert out["status"] == "completed" and out["run_dir"] == str(run_dir.resolve())
    assert set(out) >= {"test_elbo", "test_reconstruction", "test_kl", "train_elbo"}
    assert out["test_elbo"] == pytest.approx(out["test_reconstruction"] - out["test_kl"], rel=1e-6)
    assert not {"test_distortion", "test_rate"} & set(out)


def test_divergence_exits_1_with_the_message(tmp_path, capsys):
    import numpy as np

    path = tmp_path / "huge.npz"
    x = (np.random.default_rng(0).normal(size=(64, 2)) * 1e30).astype(np.float32)
    np.savez(path, x_train=x, x_test=x[:16])
    code = main(["train", "--dataset", str(path), "--likelihood", "gaussian", "--hidden", "4", "--epochs", "2",
                 "--batch-size", "16", "--runs-root", str(tmp_path / "runs"), "--json", "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    assert "error (training diverged): training diverged at step 1" in captured.err
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["status"] == "diverged" and out["steps"] == 0 and "NaN/Inf" in out["error"]
    assert out["run_dir"] is None and not (tmp_path / "runs").exists()  # no step was applied: nothing to keep


def test_resuming_a_finished_run_trains_nothing_and_names_the_run(tmp_path, capsys):
    run_dir = tmp_path / "done"
    assert main(["train", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--run-dir", str(run_dir),
                 "--json", "--quiet"]) == 0
    first = _last_json(capsys)
    history = (run_dir / "history.jsonl").read_text()
    assert main(["train", "--resume", "--run-dir", str(run_dir), "--json", "--quiet"]) == 0
    again = _last_json(capsys)
    assert again["status"] == "completed" and again["steps"] == first["steps"] == 12
    assert again["run_dir"] == str(run_dir.resolve()) and again["resumed_from_step"] == 12
    assert (run_dir / "history.jsonl").read_text() == history  # nothing new to record
