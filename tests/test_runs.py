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


# --- one vocabulary, read incrementally, files like any other, mismatches named ---------------------------------------
OLD_TRAIN_LINE = ('{"kind": "train", "step": 2, "epoch": 0, "images_per_second": 17083.9, "time": 1795467055.6, '
                  '"elbo": -44.45, "distortion": 43.94, "rate": 0.51, "loss": 44.45, "beta": 1.0}')
OLD_METRICS = {"status": "stopped", "steps": 7, "test_elbo": -43.95, "train": {"elbo": -44.27, "distortion": 43.89,
               "rate": 0.38, "loss": 44.27, "beta": 1.0}, "test": {"elbo": -43.95, "distortion": 43.62, "rate": 0.33},
               "evaluation": {"test_elbo": -44.08, "test_distortion": 43.72, "test_rate": 0.36, "log_px": -43.8},
               "test_distortion": 43.72, "test_rate": 0.36, "log_px": -43.8}


def test_records_and_metrics_of_older_runs_read_in_the_current_vocabulary(tmp_path):
    import json

    run = create_run(RunConfig(), tmp_path, "old")
    (run.path / "history.jsonl").write_text(OLD_TRAIN_LINE + "\n")
    (run.path / "metrics.json").write_text(json.dumps(OLD_METRICS))
    record = run.history()[0]
    assert record == {"kind": "train", "step": 2, "epoch": 0, "images_per_second": 17083.9, "time": 1795467055.6,
                      "elbo": -44.45, "reconstruction": -43.94, "kl": 0.51, "loss": 44.45, "beta": 1.0}
    assert run.history_since(0)[0] == [record]
    m = run.metrics()
    assert m["train"] == {"elbo": -44.27, "reconstruction": -43.89, "kl": 0.38, "loss": 44.27, "beta": 1.0}
    assert m["test"] == {"elbo": -43.95, "reconstruction": -43.62, "kl": 0.33}
    assert m["test_reconstruction"] == -43.72 and m["test_kl"] == 0.36 and m["log_px"] == -43.8
    assert m["evaluation"] == {"test_elbo": -44.08, "test_reconstruction": -43.72, "test_kl": 0.36, "log_px": -43.8}
    assert "distortion" not in json.dumps(m) and "rate" not in json.dumps(m)
    # elbo = reconstruction - kl holds in the migrated numbers
    assert m["test"]["reconstruction"] - m["test"]["kl"] == pytest.approx(m["test"]["elbo"], abs=1e-9)
    run.update_metrics(log_px=-43.0)  # a write keeps the current names only
    assert "distortion" not in (run.path / "metrics.json").read_text()


def test_history_since_reads_only_what_was_appended(tmp_path):
    run = create_run(RunConfig(), tmp_path, "r")
    assert run.history_since(0) == ([], 0)  # no history yet
    run.append_history({"kind": "train", "step": 1, "elbo": -3.0})
    first, offset = run.history_since(0)
    size = (run.path / "history.jsonl").stat().st_size
    assert first == [{"kind": "train", "step": 1, "elbo": -3.0}] and offset == size
    assert run.history_since(offset) == ([], offset)
    with open(run.path / "history.jsonl", "a") as f:
        f.write('{"kind": "test", "step": 2, "elbo": -2.5}\n{"kind": "train", "st')  # the last line half written
    new, offset2 = run.history_since(offset)
    assert new == [{"kind": "test", "step": 2, "elbo": -2.5}] and offset2 < (run.path / "history.jsonl").stat().st_size
    with open(run.path / "history.jsonl", "a") as f:
        f.write('ep": 3, "elbo": -2.0}\n')  # ... and finished
    assert run.history_since(offset2)[0] == [{"kind": "train", "step": 3, "elbo": -2.0}]
    assert [r["step"] for r in run.history()] == [1, 2, 3]
    run.truncate_history(1)  # a resume drops lost work: the file is rewritten, shorter
    again, offset3 = run.history_since(offset2)
    assert offset3 < offset2 and again == [{"kind": "train", "step": 1, "elbo": -3.0}]  # the caller starts over


def test_run_files_follow_the_umask_like_ordinary_files(tmp_path):
    from vae_tfp.training import RunRecorder, Trainer

    old = os.umask(0o027)
    try:
        recorder = RunRecorder(tmp_path / "r")
        Trainer(RunConfig(dataset="digits", epochs=1, hidden=(8,), checkpoint_every=5),
                callbacks=[recorder]).train()
        (tmp_path / "plain").write_text("x")  # what an ordinary file gets under this umask
    finally:
        os.umask(old)
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert expected == 0o640
    files = {p.relative_to(tmp_path / "r").as_posix(): p.stat().st_mode & 0o777
             for p in (tmp_path / "r").rglob("*") if p.is_file()}
    assert {"config.json", "data.json", "metrics.json", "history.jsonl", "weights.weights.h5",
            "checkpoint/state.json", "checkpoint/model.weights.h5", "checkpoint/optimizer.npz"} <= set(files)
    assert files == {name: expected for name in files}


def test_a_weights_mismatch_names_the_arrays_and_shapes_that_differ(tmp_path):
    from vae_tfp.model import build_vae

    run = create_run(RunConfig(hidden=(8,)), tmp_path, "r")
    run.write_data_info({"event_shape": [8, 8], "levels": None})
    build_vae(RunConfig(hidden=(8,), latent_dim=3), (8, 8)).save_weights(str(run.weights_path))
    with pytest.raises(ValueError) as err:
        load_model(run)
    text = str(err.value)
    assert "weights.weights.h5 does not fit the model in config.json: 3 array(s) differ" in text
    assert "decoder/layers/dense/vars/0: the model needs (2, 8), the file holds (3, 8)" in text
    assert "encoder/layers/dense_1/vars/0: the model needs (8, 4), the file holds (8, 6)" in text


def test_a_run_written_by_an_older_main_loads_resumes_and_opens(tmp_path):
    """tests/data/run-77373d8-stopped was written by main at 77373d8 (distortion/rate, one history line per step,
    0600 JSON files): stopped at step 7 of 24, checkpoint at step 7, then `evaluate --k 10 --n 20`."""
    import shutil

    from vae_tfp.sharing import export_bundle, import_bundle
    from vae_tfp.training import RunRecorder, Trainer

    run_dir = tmp_path / "old"
    shutil.copytree(ROOT / "tests/data/run-77373d8-stopped", run_dir)
    run = open_run(run_dir)
    assert run.metrics()["status"] == "stopped" and run.metrics()["test"]["kl"] > 0
    assert run.metrics()["evaluation"]["test_reconstruction"] < 0
    assert [r["step"] for r in run.history() if r["kind"] == "train"] == list(range(1, 8))
    assert all("reconstruction" in r and "distortion" not in r for r in run.history())
    model = load_model(run)
    assert model.latent_dim == 2
    trainer = Trainer.resume(run_dir)
    assert trainer.step == 7
    recorder = RunRecorder(run_dir)
    trainer.callbacks.append(recorder)
    result = trainer.train()
    assert result.status == "completed" and result.steps == 24 and recorder.run.path == run.path
    steps = [r["step"] for r in run.history() if r["kind"] == "train"]
    assert steps == sorted(steps) and steps[:7] == list(range(1, 8)) and steps[-1] == 24
    assert run.metrics()["status"] == "completed" and run.metrics()["test"]["reconstruction"] < 0
    imported = import_bundle(export_bundle(run), tmp_path / "imported")
    assert load_model(imported).latent_dim == 2


def test_history_stamp_changes_with_every_append_and_rewrite(tmp_path):
    run = create_run(RunConfig(), tmp_path, "stamp")
    assert run.history_stamp() == (0, 0)  # no history yet
    run.append_history({"kind": "train", "step": 1, "elbo": -3.0})
    one = run.history_stamp()
    assert one[0] == (run.path / "history.jsonl").stat().st_size > 0
    run.append_history({"kind": "train", "step": 2, "elbo": -2.0})
    two = run.history_stamp()
    assert two[0] > one[0]
    run.truncate_history(1)  # a resume drops later records: the file shrinks, the stamp differs
    assert run.history_stamp() != two and run.history_stamp()[0] == one[0]
