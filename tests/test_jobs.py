"""The dashboard's training job (no Streamlit needed): it attaches the run recorder, reports the run directory once it
exists, and ends a diverged run in its "diverged" state with the trainer's message."""

import numpy as np

from dashboard.jobs import TrainingJob
from vae_tfp.config import RunConfig


def test_a_job_records_its_run_and_resumes_it(tmp_path):
    job = TrainingJob(RunConfig(dataset="digits", hidden=(8,), epochs=1), runs_root=tmp_path)
    job.run()
    snap = job.snapshot()
    assert snap.state == "completed" and snap.step == 12 and snap.message == ""
    assert job.saved_run is not None and snap.run_path == str(job.saved_run.path) == str(job.run_dir)
    assert [p.name for p in tmp_path.iterdir()] == [job.run_dir.name]
    assert job.saved_run.metrics()["status"] == "completed"
    more = TrainingJob(resume_from=job.run_dir, runs_root=tmp_path)
    more.run()  # a completed run resumes with nothing left to train
    assert more.snapshot().state == "completed" and more.saved_run.path == job.run_dir


def test_a_diverged_job_ends_in_its_diverged_state_with_the_message(tmp_path):
    path = tmp_path / "huge.npz"
    x = (np.random.default_rng(0).normal(size=(64, 2)) * 1e30).astype(np.float32)
    np.savez(path, x_train=x, x_test=x[:16])
    job = TrainingJob(RunConfig(dataset=str(path), likelihood="gaussian", hidden=(4,), batch_size=16, epochs=2),
                      runs_root=tmp_path / "runs")
    job.run()
    snap = job.snapshot()
    assert snap.state == "diverged" and snap.finished and "training diverged at step 1" in snap.message
    assert snap.details == "" and job.saved_run is None and not (tmp_path / "runs").exists()
