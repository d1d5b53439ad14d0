"""The job layer through its interface, with real worker processes (vae_tfp.jobs.LocalBackend): a job completes and
its run directory holds everything; queue positions and refusals name their limit; Stop reaches across the process
boundary and keeps the model; a worker killed with -9 fails only its job, with a message, and the run resumes and
completes; the same run cannot be resumed twice at once. Every wait is for an event, bounded by a timeout; nothing
depends on how fast the machine trains (the jobs that must still be running when the test acts are 10 000 epochs
long, and each is stopped or killed by the test).

One backend (two workers) serves the module, so TensorFlow is imported twice in all, once per worker.
"""

import json
import os
import signal
import time

import pytest

from vae_tfp.config import RunConfig
from vae_tfp.jobs import JobLimits, JobRefused, JobSpec, LocalBackend, lock_holder, read_status
from vae_tfp.runs import open_run

TIMEOUT = 300  # seconds for any one wait: a loaded 2-core machine importing TensorFlow in two workers at once
SMALL = dict(dataset="digits", hidden=(8,), batch_size=128)  # 12 steps per epoch
FOREVER = 10_000  # epochs: no machine finishes this while a test waits on it


@pytest.fixture(scope="module")
def backend():
    b = LocalBackend(JobLimits(max_running=2, max_queued=1, max_per_session=1), threads_per_worker=1)
    assert b.wait_ready(TIMEOUT), "the workers did not import TensorFlow in time"
    yield b
    b.close(timeout=60)


def wait_for(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_past(backend, job_id, step):
    return wait_for(lambda: (s := backend.status(job_id)).state == "running" and s.step >= step and s,
                    f"job {job_id} to pass step {step}")


def test_a_job_runs_and_completes_through_the_backend(backend, tmp_path):
    first = backend.submit(JobSpec(config=RunConfig(**SMALL, epochs=2), runs_root=str(tmp_path), owner="a"))
    done = backend.wait(first, TIMEOUT)
    assert done.state == "completed" and done.step == done.total_steps == 24 and done.epoch == done.epochs == 2
    assert done.message == "" and done.owner == "a" and done.kind == "train" and done.finished_at >= done.started
    assert set(done.metrics) >= {"elbo", "reconstruction", "kl", "loss", "beta"}
    assert done.test_metrics["elbo"] == pytest.approx(done.test_metrics["reconstruction"] - done.test_metrics["kl"])
    run = open_run(done.run_dir)
    assert [p.name for p in tmp_path.iterdir()] == [run.name]
    assert run.metrics()["status"] == "completed" and run.has_weights() and run.checkpoint_state()["step"] == 24
    assert [r["epoch"] for r in run.history() if r["kind"] == "test"] == [1, 2]
    written = read_status(run.path)  # the run directory says how its job ended
    assert written.job_id == first and written.state == "completed" and written.step == 24
    assert lock_holder(run.path) is None  # released

    second = backend.submit(JobSpec(config=RunConfig(**SMALL, epochs=1, likelihood="continuous_bernoulli"),
                                    runs_root=str(tmp_path), owner="a"))
    again = backend.wait(second, TIMEOUT)
    assert again.state == "completed" and again.run_dir != done.run_dir
    assert again.worker == done.worker  # the same worker process (TensorFlow imported once), idle again
    assert [s.job_id for s in backend.list(owner="a")] == [first, second]


def test_queue_position_refusals_and_stop_across_the_process_boundary(backend, tmp_path):
    config = RunConfig(**SMALL, epochs=FOREVER)
    a = backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "a"), owner="a"))
    b = backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "b"), owner="b"))
    c = backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "c"), owner="c"))  # both workers busy
    assert backend.status(c).state == "queued" and backend.status(c).queue_position == 1
    with pytest.raises(JobRefused) as full:
        backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "d"), owner="d"))
    assert full.value.limit == "max_queued" and full.value.value == 1 and "max_queued" in str(full.value)
    assert "1 training is waiting" in str(full.value) and "lets at most 1 wait" in str(full.value)
    with pytest.raises(JobRefused) as mine:
        backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "a2"), owner="a"))
    assert mine.value.limit == "max_per_session" and mine.value.value == 1
    assert "1 per session" in str(mine.value)

    with pytest.raises(PermissionError, match="another session"):  # only its owner stops a job
        backend.stop(c, owner="a")
    assert backend.status(c).state == "queued"
    dropped = backend.stop(c, owner="c")  # queued: dropped, nothing trained
    assert dropped.state == "stopped" and "queue" in dropped.message and dropped.run_dir is None
    assert not (tmp_path / "c").exists()

    seen = running_past(backend, a, 20)
    running_past(backend, b, 1)
    assert backend.stop(a).state in ("stopping", "stopped")
    stopped = backend.wait(a, TIMEOUT)
    assert stopped.state == "stopped" and seen.step <= stopped.step < stopped.total_steps
    assert "the model trained so far is kept" in stopped.message
    run = open_run(stopped.run_dir)  # the model trained so far, saved by the worker when it stopped
    assert run.metrics()["status"] == "stopped" and run.metrics()["steps"] == stopped.step
    assert run.checkpoint_state()["step"] == stopped.step and run.has_weights()
    from vae_tfp.runs import load_model

    assert load_model(run).latent_dim == 2
    backend.stop(b)
    assert backend.wait(b, TIMEOUT).state == "stopped"


def test_a_killed_worker_fails_only_its_job_and_the_run_resumes_to_completion(backend, tmp_path):
    """kill -9 the worker of one job mid-way (after a checkpoint): that job fails with a message naming the signal
    and the step to resume from; the job on the other worker trains on; the pool replaces the dead worker; the run
    is not locked any more and a resume completes it."""
    victim_config = RunConfig(**SMALL, epochs=100, checkpoint_every=5)  # 1200 steps
    victim = backend.submit(JobSpec(config=victim_config, runs_root=str(tmp_path / "v"), owner="victim"))
    other = backend.submit(JobSpec(config=RunConfig(**SMALL, epochs=FOREVER), runs_root=str(tmp_path / "o"),
                                   owner="other"))
    running_past(backend, other, 1)
    pid = backend.worker_of(victim)
    status = running_past(backend, victim, 6)  # a checkpoint exists (every 5 steps)
    assert status.step < status.total_steps, "the job finished before the test could kill its worker"
    os.kill(pid, signal.SIGKILL)
    failed = backend.wait(victim, TIMEOUT)
    checkpoint = open_run(failed.run_dir).checkpoint_state()
    assert failed.state == "failed" and "SIGKILL" in failed.message and "other jobs are not affected" in failed.message
    assert f"keeps its last checkpoint (step {checkpoint['step']}" in failed.message and "Resume" in failed.message
    assert 5 <= checkpoint["step"] < 1200
    assert read_status(failed.run_dir).state == "failed"  # the run directory says so too
    assert backend.status(other).state == "running"  # the other worker trains on
    backend.stop(other)
    assert backend.wait(other, TIMEOUT).state == "stopped"
    wait_for(lambda: len(backend.worker_pids()) == 2 and pid not in backend.worker_pids(), "a replacement worker")
    assert lock_holder(failed.run_dir) is None  # the dead worker's lock died with it

    resumed = backend.submit(JobSpec(resume=failed.run_dir, owner="victim"))
    with pytest.raises(JobRefused) as twice:  # the same run cannot be resumed twice at once
        backend.submit(JobSpec(resume=failed.run_dir, owner="someone else"))
    assert twice.value.limit == "run_busy" and "being trained by another job" in str(twice.value)
    done = backend.wait(resumed, TIMEOUT)
    assert done.state == "completed" and done.kind == "resume" and done.step == 1200 and done.run_dir == failed.run_dir
    run = open_run(done.run_dir)
    assert run.metrics()["status"] == "completed"
    train_steps = [r["step"] for r in run.history() if r["kind"] == "train"]
    assert train_steps == sorted(train_steps) and train_steps[-1] == 1200  # lost work after the checkpoint dropped


def test_the_same_run_cannot_be_trained_by_two_processes(backend, tmp_path):
    """A run a worker trains is locked against any other process (here: a second backend, in this process)."""
    from vae_tfp.jobs import InlineBackend

    job = backend.submit(JobSpec(config=RunConfig(**SMALL, epochs=FOREVER, checkpoint_every=5),
                                 runs_root=str(tmp_path), owner="a"))
    status = running_past(backend, job, 6)
    holder = lock_holder(status.run_dir)
    assert holder["job"] == job and holder["pid"] == backend.worker_of(job)
    with pytest.raises(JobRefused) as busy:
        InlineBackend().submit(JobSpec(resume=status.run_dir))
    assert busy.value.limit == "run_busy" and job in str(busy.value)
    backend.stop(job)
    assert backend.wait(job, TIMEOUT).state == "stopped"
    assert lock_holder(status.run_dir) is None


def test_a_bad_resume_is_refused_before_it_is_queued(backend, tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        backend.submit(JobSpec(resume=str(tmp_path / "nothing")))


# --- no worker needed ------------------------------------------------------------------------------------------------
def test_specs_limits_and_statuses_are_plain_data():
    spec = JobSpec(config=RunConfig(epochs=3, hidden=(16, 8)), runs_root="runs", owner="s")
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.absolute().runs_root == os.path.abspath("runs") and spec.kind == "train"
    with pytest.raises(ValueError, match="exactly one"):
        JobSpec()
    with pytest.raises(ValueError, match="exactly one"):
        JobSpec(config=RunConfig(), resume="runs/x")
    with pytest.raises(ValueError, match="max_running must be a whole number >= 1"):
        JobLimits(max_running=0)
    with pytest.raises(ValueError, match="max_queued"):
        JobLimits(max_queued=-1)
    assert JobLimits(max_running=2, max_queued=8, max_per_session=1).describe() == \
        "2 trainings at once, 8 more can wait, 1 per session"
    from vae_tfp.jobs import JobStatus

    status = JobStatus("j1", "running", step=3, total_steps=12, metrics={"elbo": -1.5})
    back = JobStatus.from_dict(json.loads(status.to_json()))  # NaN ETA travels as null
    assert back.step == 3 and back.metrics == {"elbo": -1.5} and back.eta_seconds != back.eta_seconds
    assert back.fraction == 0.25 and back.active and not back.finished


def test_a_lock_dies_with_its_process(tmp_path):
    """flock: a holder killed with -9 leaves the lock free (no stale lock, no pid to check)."""
    import subprocess
    import sys

    from vae_tfp.jobs import RunLock

    code = ("import sys, time; from vae_tfp.jobs import RunLock; RunLock(sys.argv[1]).acquire('x'); "
            "print('held', flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert child.stdout.readline().strip() == "held"
        assert lock_holder(tmp_path)["pid"] == child.pid
        with pytest.raises(JobRefused, match="process"):
            RunLock(tmp_path).acquire("y", attempts=2)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert lock_holder(tmp_path) is None
    lock = RunLock(tmp_path).acquire("y")
    assert lock_holder(tmp_path)["job"] == "y"
    lock.release()


def test_a_job_trains_on_its_owners_upload_and_resumes_on_it(tmp_path):
    """An uploaded data set (`upload:<name>`) lives in its owner's data root; the job reads it from the root its spec
    names, for a new run and for a resumed one, and a job that names no root is refused in words."""
    import numpy as np

    from vae_tfp.data import Dataset
    from vae_tfp.datasets import uploads
    from vae_tfp.jobs import InlineBackend

    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 2)).astype(np.float32)
    name = uploads.save(tmp_path / "data", Dataset("mine", "200 points", "points", points[:160], None, points[160:],
                                                    None, None), "mine")
    config = RunConfig(dataset=name, likelihood="gaussian", hidden=(8,), epochs=2, batch_size=32)
    backend = InlineBackend()
    done = backend.status(backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "runs"),
                                                 data_root=str(tmp_path / "data"))))
    assert done.state == "completed", done.message
    assert open_run(done.run_dir).data_info()["n_train"] == 160
    failed = backend.status(backend.submit(JobSpec(config=config, runs_root=str(tmp_path / "runs"))))
    assert failed.state == "failed" and "names no folder of uploads" in failed.message
    spec = JobSpec(resume=done.run_dir, data_root=str(tmp_path / "data"))
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
