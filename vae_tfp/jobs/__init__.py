"""Training jobs: one small interface, `JobBackend` (submit, status, stop, list), and the backends behind it.

    backend.py       JobBackend, JobSpec (what to train), JobStatus (where it stands), JobRefused, the states
    limits.py        JobLimits: jobs at once, jobs waiting, jobs per session
    local.py         LocalBackend: a bounded pool of worker processes on this machine, fed by a queue
    inline.py        InlineBackend: no processes, submit() trains to the end (tests, scripts)
    worker.py        the worker process (python -m vae_tfp.jobs.worker): TensorFlow imported once, one job at a time
    execute.py       one job in this process: Trainer + RunRecorder + the job's status, time-based checkpoints
    lock.py          RunLock: one trainer per run directory, a lock that dies with its process
    status_file.py   job.json, the job's status inside its run directory

    from vae_tfp.jobs import JobLimits, JobSpec, LocalBackend

    backend = LocalBackend(JobLimits(max_running=2, max_queued=8))
    job = backend.submit(JobSpec(config=RunConfig(dataset="digits", epochs=5), runs_root="runs", owner="me"))
    backend.wait(job, timeout=600).state          # "completed"

Importing this package does not import TensorFlow (only a worker, or InlineBackend's submit, does).
"""

from vae_tfp.jobs.backend import ACTIVE, FINISHED, STATES, JobBackend, JobRefused, JobSpec, JobStatus
from vae_tfp.jobs.inline import InlineBackend
from vae_tfp.jobs.limits import JobLimits, default_running
from vae_tfp.jobs.local import LocalBackend
from vae_tfp.jobs.lock import RunBusy, RunLock, lock_holder
from vae_tfp.jobs.status_file import read_status

__all__ = ["ACTIVE", "FINISHED", "STATES", "InlineBackend", "JobBackend", "JobLimits", "JobRefused", "JobSpec",
           "JobStatus", "LocalBackend", "RunBusy", "RunLock", "default_running", "lock_holder", "read_status"]
