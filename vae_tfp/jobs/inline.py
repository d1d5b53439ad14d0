"""`InlineBackend`: the job interface with no processes: submit() trains the job to its end in the calling thread.

For tests that want every step of a page to be deterministic (the dashboard's AppTests), and for scripts. Jobs go
through the same `vae_tfp.jobs.execute` a worker runs, so the run directory and its job.json are the same; only
the process boundary and the queue are missing (a job is finished when submit() returns, so nothing ever waits).
"""

from __future__ import annotations

import threading
import time
import uuid

from vae_tfp.jobs.backend import JobBackend, JobSpec, JobStatus
from vae_tfp.jobs.execute import execute
from vae_tfp.jobs.lock import RunBusy, lock_holder


class InlineBackend(JobBackend):
    def __init__(self):
        self._lock = threading.Lock()
        self._jobs: dict[str, JobStatus] = {}

    def submit(self, spec: JobSpec) -> str:
        if not isinstance(spec, JobSpec):
            raise TypeError(f"submit takes a JobSpec, got {type(spec).__name__}")
        spec = spec.absolute()
        if spec.resume is not None:
            from vae_tfp.runs import open_run

            open_run(spec.resume)  # ValueError: not a run directory
            holder = lock_holder(spec.resume)
            if holder is not None:
                raise RunBusy(spec.resume, holder)
        job_id = uuid.uuid4().hex[:16]
        status = execute(job_id, spec, submitted=time.time())
        with self._lock:
            self._jobs[job_id] = status
        return job_id

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            return JobStatus.from_dict(self._jobs[job_id].to_dict())

    def stop(self, job_id: str, owner: str | None = None) -> JobStatus:
        self.check_owner(job_id, owner)
        return self.status(job_id)  # a job has ended before submit() returns

    def list(self, owner: str | None = None) -> list[JobStatus]:
        with self._lock:
            return [JobStatus.from_dict(s.to_dict()) for s in self._jobs.values() if owner is None or s.owner == owner]
