"""`python -m vae_tfp`: arguments, exit codes, JSON output, listings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_tfp import budget
from vae_tfp import config as C
from vae_tfp.cli import build_parser, config_from_args, main

ROOT = Path(__file__).resolve().parents[1]


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


@pytest.mark.parametrize("args,pattern", [
    (["train", "--likelihood", "poisson"], r"--likelihood: invalid choice: 'poisson'"),
    (["train", "--latent-dim", "0"], r"--latent-dim: must be an integer in \[1, 512\], got '0'"),
    (["train", "--iwae-k", "5001"], r"--iwae-k: must be an integer in \[1, 5000\]"),
    (["train", "--lr", "0"], r"--lr: must be a number in \[1e-07, 10.0\]"),
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
    (["train", "--dataset", "two_moons", "--likelihood", "categorical", "--epochs", "1"],
     r"\(e.g. gaussian\) fit point"),
    (["train", "--batch-size", "65536", "--likelihood", "categorical", "--hidden", "4096", "--epochs", "1"],
     r"GB of memory for one training step at batch size 65536"),
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


def test_with_json_stdout_holds_only_the_result_and_the_epoch_lines_go_to_stderr(tmp_path, capsys):
    code = main(["train", "--dataset", "digits", "--epochs", "2", "--hidden", "16", "--eval-every", "1",
                 "--run-dir", str(tmp_path / "r"), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["status"] == "completed"
    assert "epoch 1: test ELBO" in captured.err and "epoch 2: test ELBO" in captured.err


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


def _train_parser():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices["train"]


def test_every_config_field_has_its_flag_with_the_same_default_choices_and_range():
    actions = {a.dest: a for a in _train_parser()._actions}
    for name, setting in C.SETTINGS.items():
        action = actions[name]
        assert C.flag(name) in action.option_strings and setting.help.split(".")[0] in action.help, name
        kind = C.kind(name)
        if kind == "widths":
            assert tuple(int(w) for w in action.default.split(",")) == C.DEFAULTS[name]
        else:
            assert action.default == C.DEFAULTS[name], name
        if kind == "choice":
            assert tuple(action.choices) == tuple(setting.choices), name
        if kind in ("int", "float"):
            assert (action.type.lo, action.type.hi) == setting.range, name


def _other_value(name):
    """A valid value for the field that is not its default, as command-line text and as the config holds it."""
    kind, setting = C.kind(name), C.SETTINGS[name]
    if kind == "choice":
        value = list(setting.choices)[-1] if C.DEFAULTS[name] != list(setting.choices)[-1] else list(setting.choices)[0]
        return value, value
    if kind in ("int", "float"):
        return str(setting.range[1]), setting.range[1]
    if kind == "widths":
        return "7,3", (7, 3)
    return "two_moons", "two_moons"


@pytest.mark.parametrize("name", list(C.SETTINGS))
def test_each_flag_reaches_its_config_field(name):
    text, value = _other_value(name)
    config = config_from_args(build_parser().parse_args(["train", C.flag(name), text]))
    assert getattr(config, name) == value
    assert config.replace(**{name: C.DEFAULTS[name]}) == C.RunConfig()  # and nothing else changed


def test_old_and_field_named_flags_both_work():
    for flag in ("--warmup", "--warmup-epochs"):
        assert config_from_args(build_parser().parse_args(["train", flag, "2.5"])).warmup_epochs == 2.5


def test_a_model_over_the_budget_exits_2_naming_its_size_and_the_limit(tmp_path, capsys):
    huge = ",".join(["16384"] * 8)
    assert main(["train", "--hidden", huge, "--epochs", "1", "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    size = budget.estimate(C.RunConfig(hidden=(16384,) * 8), (8, 8))
    assert f"{size.parameters:,} parameters (the limit is {budget.MAX_PARAMETERS:,})" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


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
