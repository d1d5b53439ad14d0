"""Run directories: safe names, unique directories, listing/deleting, and a kill -9 that leaves a run that loads."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_tfp.config import RunConfig
from vae_tfp.runs import create_run, delete_run, get_run, list_runs, load_model, open_run, safe_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("bad", ["..", "../x", "/etc/passwd", "a/b", "", "  ", "."])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(ValueError, match="not allowed"):
        safe_name(bad)


def test_names_are_cleaned():
    assert safe_name("my run: β=4") == "my-run-4"
    assert safe_name(".hidden") == "hidden"


def test_two_runs_never_share_a_directory(tmp_path):
    a = create_run(RunConfig(), tmp_path, "same")
    b = create_run(RunConfig(), tmp_path, "same")
    assert a.path != b.path and b.path.name == "same-2"
    assert a.path.parent == tmp_path.resolve()


def test_get_run_stays_inside_the_root(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.json").write_text(RunConfig().to_json())
    with pytest.raises(ValueError, match="not allowed"):
        get_run("../outside", tmp_path / "root")


def test_list_and_delete(tmp_path):
    create_run(RunConfig(likelihood="gaussian"), tmp_path, "one")
    create_run(RunConfig(), tmp_path, "two")
    rows = list_runs(tmp_path)
    assert {r["name"] for r in rows} == {"one", "two"}
    assert {r["likelihood"] for r in rows} == {"gaussian", "bernoulli"}
    delete_run("one", tmp_path)
    assert [r["name"] for r in list_runs(tmp_path)] == ["two"]


def test_open_run_on_a_non_run(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        open_run(tmp_path)


def test_torn_history_line_is_skipped(tmp_path):
    run = create_run(RunConfig(), tmp_path, "r")
    run.append_history({"kind": "train", "step": 1, "elbo": -3.0})
    with open(run.path / "history.jsonl", "a") as f:
        f.write('{"kind": "train", "st')  # what a crash mid-write leaves
    assert run.history() == [{"kind": "train", "step": 1, "elbo": -3.0}]


def test_kill_9_leaves_a_run_that_loads_and_resumes(tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vae_tfp", "train", "--dataset", "digits", "--epochs", "60", "--latent-dim", "2",
           "--hidden", "64,32", "--checkpoint-every", "7", "--run-dir", str(run_dir), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        state = None
        while time.time() < deadline:
            state = open_run(run_dir).checkpoint_state() if (run_dir / "config.json").exists() else None
            if state and state["step"] >= 70:
                break
            time.sleep(0.05)
        assert state and state["step"] >= 70, "training never reached a checkpoint"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = open_run(run_dir)
    assert run.config().epochs == 60
    model = load_model(run)  # loads whatever moment the kill hit
    assert model.latent_dim == 2
    killed_at = run.checkpoint_state()["step"]
    resume = subprocess.run([sys.executable, "-m", "vae_tfp", "train", "--resume", "--run-dir", str(run_dir),
                             "--quiet", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr
    import json

    out = json.loads(resume.stdout.strip().splitlines()[-1])
    assert out["status"] == "completed" and out["steps"] == 60 * 12 and out["run_dir"] == str(run_dir.resolve())
    steps = [r["step"] for r in run.history() if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # nothing after the checkpoint duplicated
    assert out["resumed_from_step"] == killed_at  # resume restarts from the last checkpoint, <= 7 steps lost
