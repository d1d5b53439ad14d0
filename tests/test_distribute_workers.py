"""Several workers training together (MultiWorkerMirroredStrategy, one process each, on 127.0.0.1): `launch` writes
one run (the chief's) that matches one process and opens in the dashboard; a killed worker stops the other within
30 s with a message naming it and `--resume` completes the run; SIGTERM on one worker stops both after the same step;
workers that resume from different states refuse; a worker that never starts is named; a step is one collective.

Every process is bounded by a timeout and killed if still alive when a test ends.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vae_tfp import cli, distribute

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CONFIG = ["--dataset", "digits", "--likelihood", "bernoulli", "--latent-dim", "2", "--hidden", "32", "--seed", "3"]


def env(tmp_path, tf_config=None) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path), TF_NUM_INTRAOP_THREADS="1",
             TF_NUM_INTEROP_THREADS="2")
    e.pop("TF_CONFIG", None)
    if tf_config is not None:
        e["TF_CONFIG"] = json.dumps(tf_config)
    return e


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture
def spawn(tmp_path):
    """spawn(argv_per_worker) -> worker processes, each with its TF_CONFIG; all killed when the test ends."""
    procs = []

    def start(argvs, configs=None):
        configs = configs or distribute.local_cluster(len(argvs))
        for argv, tf_config in zip(argvs, configs):
            procs.append(subprocess.Popen([PY, "-m", "vae_tfp", *argv], cwd=ROOT, env=env(tmp_path, tf_config),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return procs[-len(argvs):]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


def wait_for_step(run_dir: Path, step: int, procs, timeout=600) -> int:
    """Wait until the run's checkpoint is at `step` or later (bounded); fail if a worker exits first."""
    end = time.monotonic() + timeout
    state = run_dir / "checkpoint" / "state.json"
    while time.monotonic() < end:
        for p in procs:
            assert p.poll() is None, f"a worker exited early: {p.communicate()[1][-3000:]}"
        try:
            at = json.loads(state.read_text())["step"]
            if at >= step:
                return at
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint at step {step} within {timeout} s")


def launch(tmp_path, *train_args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "vae_tfp", "launch", "--workers", "2", "--", "train", *train_args], cwd=ROOT,
                          env=env(tmp_path), capture_output=True, text=True, timeout=timeout)


def test_two_local_workers_write_one_run_that_matches_one_process(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    proc = launch(tmp_path, *CONFIG, "--epochs", "6", "--runs-root", str(runs), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = last_json(proc.stdout)  # the chief's --json is the launcher's last line
    assert two["status"] == "completed" and two["workers"] == 2 and two["replicas"] == 2 and two["worker"] == 0
    assert two["steps"] == 6 * 12  # --batch-size is the global batch: the steps of one process
    assert [p.name for p in runs.iterdir()] == [Path(two["run_dir"]).name]  # one run directory, the chief's
    assert not list(tmp_path.glob("vae-tfp-workers-*"))  # the other worker's log is gone after a clean run

    assert cli.main(["train", *CONFIG, "--epochs", "6", "--runs-root", str(tmp_path / "one"), "--json",
                     "--quiet"]) == 0
    one = last_json(capsys.readouterr().out)
    assert abs(two["test_elbo"] - one["test_elbo"]) < 1.0, (two["test_elbo"], one["test_elbo"])

    from vae_tfp.runs import list_runs, load_model, open_run

    run = open_run(two["run_dir"])
    assert run.metrics()["status"] == "completed" and run.checkpoint_state()["step"] == 72
    assert load_model(run).latent_dim == 2
    history = run.history()
    train_steps = [r["step"] for r in history if r["kind"] == "train"]
    assert train_steps == sorted(set(train_steps)) and {r["kind"] for r in history} == {"train", "test", "diagnostics"}
    assert list_runs(runs)[0]["test_elbo"] == pytest.approx(two["test_elbo"])

    from streamlit.testing.v1 import AppTest  # the dashboard opens it like any other run

    monkeypatch.setenv("VAE_TFP_RUNS", str(runs))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=240)
    at.query_params["run"], at.query_params["view"] = run.name, "Training"
    at.run()
    assert not at.exception and at.session_state["picked_run"] == run.name
    for label in ("Training", "Reconstructions", "Prior vs posterior", "What is p(x)?", "Latent space",
                  "Compare runs"):
        at.session_state["view"] = label
        at.run()
        assert not at.exception, label


def test_a_killed_worker_stops_the_other_with_a_message_and_resume_completes(tmp_path, spawn):
    run_dir = tmp_path / "runs" / "killed"
    argv = ["train", *CONFIG, "--epochs", "60", "--batch-size", "64", "--checkpoint-every", "5", "--run-dir",
            str(run_dir), "--strategy", "multiworker", "--json", "--quiet"]
    chief, other = spawn([argv, argv])
    wait_for_step(run_dir, 10, [chief, other])
    other.kill()
    killed = time.monotonic()
    out, err = chief.communicate(timeout=120)
    assert time.monotonic() - killed < 30, "the chief did not notice the lost worker within 30 s"
    assert chief.returncode == 1, err[-3000:]
    assert "worker 1 (127.0.0.1:" in err and "stopped answering" in err and "--resume" in err
    stopped = last_json(out)
    assert stopped["status"] == "stopped" and stopped["run_dir"] == str(run_dir.resolve())
    # the chief saved the last completed step: nothing trained is lost
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == stopped["steps"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "stopped" and "worker 1" in metrics["message"]

    proc = launch(tmp_path, "--resume", "--run-dir", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = last_json(proc.stdout)
    assert done["status"] == "completed" and done["epochs"] == 60 and done["steps"] % 60 == 0
    assert done["resumed_from_step"] == stopped["steps"]
    steps = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == done["steps"]


def test_a_signal_on_one_worker_stops_every_worker_after_the_same_step(tmp_path, spawn):
    run_dir = tmp_path / "runs" / "signalled"
    argv = ["train", *CONFIG, "--epochs", "2000", "--batch-size", "64", "--checkpoint-every", "5", "--run-dir",
            str(run_dir), "--strategy", "multiworker", "--json", "--quiet"]
    chief, other = spawn([argv, argv])
    wait_for_step(run_dir, 10, [chief, other])
    other.send_signal(signal.SIGTERM)
    (out0, err0), (out1, err1) = chief.communicate(timeout=120), other.communicate(timeout=120)
    assert chief.returncode == 0 and other.returncode == 0, err0[-2000:] + err1[-2000:]
    first, second = last_json(out0), last_json(out1)
    assert first["status"] == second["status"] == "stopped" and first["steps"] == second["steps"] < 2000 * 20
    assert "SIGTERM: stopping every worker after this step" in err1
    assert json.loads((run_dir / "checkpoint" / "state.json").read_text())["step"] == first["steps"]
    assert second["run_dir"] == str(run_dir.resolve())  # the other worker names the run the chief wrote


def test_workers_resuming_from_different_states_refuse(tmp_path, spawn):
    import shutil

    from vae_tfp.config import RunConfig
    from vae_tfp.training import RunRecorder, Trainer

    config = RunConfig(dataset="digits", likelihood="bernoulli", latent_dim=2, hidden=(32,), epochs=3, seed=3)
    a, b = tmp_path / "a", tmp_path / "b"
    Trainer(config, callbacks=[RunRecorder(a)]).train(max_steps=12)
    shutil.copytree(a, b)
    later = Trainer.resume(b)
    later.callbacks.append(RunRecorder(b))
    later.train(max_steps=5)  # b: a copy that trained on, so its step and weights differ
    before = (a / "history.jsonl").read_text()

    base = ["train", "--resume", "--strategy", "multiworker", "--json", "--quiet"]
    procs = spawn([[*base, "--run-dir", str(a)], [*base, "--run-dir", str(b)]])
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 2, err[-3000:]
        assert "do not hold the same run" in err and "worker 1" in err
        assert "at step 12" in err and "at step 17" in err and "refusing" in err
    assert (a / "history.jsonl").read_text() == before
    assert json.loads((a / "checkpoint" / "state.json").read_text())["step"] == 12


def test_a_worker_that_never_starts_is_named(tmp_path):
    configs = distribute.local_cluster(2)
    started = time.monotonic()
    proc = subprocess.run([PY, "-m", "vae_tfp", "train", *CONFIG, "--epochs", "1", "--strategy", "multiworker",
                           "--startup-timeout", "5", "--runs-root", str(tmp_path / "runs")], cwd=ROOT,
                          env=env(tmp_path, configs[0]), capture_output=True, text=True, timeout=600)
    address = configs[0]["cluster"]["worker"][1]
    assert proc.returncode != 0
    assert f"worker 1 ({address}) did not answer within 5 s" in proc.stderr, proc.stderr[-3000:]
    assert time.monotonic() - started < 300
    assert not (tmp_path / "runs").exists()


def test_a_step_is_one_collective_of_the_gradients_and_the_scalars():
    """Two workers: the compiled step holds one all-reduce, of every gradient and the step's scalars."""
    from argparse import Namespace

    from bench.distribute_step import run_row

    row = run_row("multiworker", 2, Namespace(steps=5, warmup=2, batch_size=32, small=True, timeout=600))
    assert row["workers"] == 2 and row["collectives_per_step"] == 1, row
    assert row["collective_types"] == ["CollectiveReduceV2"]
    scalars = row["bytes_per_step"] // 4 - row["parameters"]
    assert 4 <= scalars <= 8 and np.isfinite(row["step_ms"])  # loss, images, stop flag, the ELBO's term sums
