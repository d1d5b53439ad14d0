"""`LocalBackend`: a bounded pool of worker processes on this machine, fed by a queue.

    backend = LocalBackend(JobLimits(max_running=2, max_queued=8, max_per_session=1))
    job = backend.submit(JobSpec(config=RunConfig(epochs=5), runs_root="runs", owner="s1"))
    backend.status(job)       # queued (position), starting, running (step, ETA, ...), stopping, completed, ...
    backend.stop(job)
    backend.close()           # stops every job (each keeps its model), then the workers

- `max_running` worker processes (`python -m vae_tfp.jobs.worker`, started fresh: spawn, not fork), each importing
  TensorFlow once and then training one job at a time; jobs beyond them wait in a FIFO queue of at most
  `max_queued`. Workers run at a lower CPU priority (`nice`), so the process serving pages stays responsive.
- Parent and workers speak JSON lines over pipes (nothing is unpickled); a job's progress goes through its run
  directory (`job.json`, written by the worker), which `status()` reads.
- `stop()` drops a queued job, or sends the worker a stop for a running one: the trainer stops within one step and
  the recorder saves the model, a checkpoint and metrics.json ("stopped").
- A worker that dies (killed by the kernel when out of memory, `kill -9`, a crash in native code) fails only its own
  job, with a message that says how it died and whether, and from which step, the run can resume; the pool starts a
  replacement. Workers are also replaced after `recycle_after` jobs, to bound the memory TensorFlow keeps.
- One trainer per run directory: a resume of a run that a job of this backend has queued or running, or that any
  process holds the lock of (`vae_tfp.jobs.lock`), is refused.
- One dispatcher thread in the parent watches the workers' pipes; every public method is thread-safe.

How far one machine goes: each running job wants about a core and ~0.5-1 GB (TensorFlow and the model), the page
process wants a core of its own for the people looking. The next step is a backend whose submit() puts the JobSpec
(plain JSON, `JobSpec.to_dict()`) on a queue that workers on other machines serve, with the runs folder on storage
both sides see (the page reads job.json and the history from it, as here) and a lock that works across machines.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from vae_tfp.jobs.backend import JobBackend, JobRefused, JobSpec, JobStatus
from vae_tfp.jobs.limits import JobLimits, default_running
from vae_tfp.jobs.lock import RunBusy, lock_holder
from vae_tfp.jobs.status_file import read_status, write_status
from vae_tfp.runs import open_run

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds vae_tfp/: the workers import from it
PROGRESS_FIELDS = ("step", "total_steps", "epoch", "epochs", "images_per_second", "eta_seconds", "metrics",
                   "test_metrics", "worker")


class _Job:
    def __init__(self, job_id: str, spec: JobSpec):
        self.id = job_id
        self.spec = spec
        self.status = JobStatus(job_id, "queued", owner=spec.owner, kind=spec.kind, submitted=time.time(),
                                run_dir=spec.resume,
                                epochs=spec.config.epochs if spec.config is not None else 0)
        self.worker = None


class _Worker:
    def __init__(self, proc: subprocess.Popen, events_fd: int):
        self.proc = proc
        self.pid = proc.pid
        self.fd = events_fd
        self.buffer = b""
        self.job = None
        self.ready = False
        self.done = 0
        self.gone = False


class LocalBackend(JobBackend):
    def __init__(self, limits: JobLimits | None = None, *, threads_per_worker: int | None = None, nice: int = 10,
                 recycle_after: int = 100, keep_finished: int = 1000, env: dict | None = None):
        self.limits = limits or JobLimits(max_running=default_running())
        cores = os.cpu_count() or 1
        self.threads = threads_per_worker or max(1, cores // self.limits.max_running)
        self.nice = nice
        self.recycle_after = recycle_after
        self.keep_finished = keep_finished
        self._env = env
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._pending: collections.deque[_Job] = collections.deque()
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._respawn_at = None
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        with self._lock:
            for _ in range(self.limits.max_running):
                self._spawn()
        self._thread = threading.Thread(target=self._loop, name="vae-tfp-jobs", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # --- the interface -------------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        if not isinstance(spec, JobSpec):
            raise TypeError(f"submit takes a JobSpec, got {type(spec).__name__}")
        spec = spec.absolute()
        lim = self.limits
        with self._lock:
            if self._closed:
                raise JobRefused("the job server is shutting down; no new trainings", limit="closed")
            active = [j for j in self._jobs.values() if j.status.active]
            mine = sum(j.status.owner == spec.owner for j in active)
            if lim.max_per_session is not None and mine >= lim.max_per_session:
                raise JobRefused(f"this session already has {mine} training{'s' if mine != 1 else ''} queued or "
                                 f"running; this server allows {lim.max_per_session} per session (max_per_session)",
                                 limit="max_per_session", value=lim.max_per_session)
            if spec.resume is not None:
                open_run(spec.resume)  # ValueError: not a run directory
                same = [j for j in active if j.status.run_dir and Path(j.status.run_dir) == Path(spec.resume)]
                if same:
                    raise RunBusy(spec.resume, {"job": same[0].id, "pid": same[0].worker.pid if same[0].worker
                                                else "none yet (queued)", "host": "this server"})
                holder = lock_holder(spec.resume)
                if holder is not None:
                    raise RunBusy(spec.resume, holder)
            free = lim.max_running - sum(j.worker is not None for j in active)
            waiting = max(0, len(self._pending) + 1 - max(free, 0))
            if lim.max_queued is not None and waiting > lim.max_queued:
                n = len(self._pending)
                raise JobRefused(f"the queue is full: {n} training{'s are' if n != 1 else ' is'} waiting for one of "
                                 f"the {lim.max_running} places that train at once, and this server lets at most "
                                 f"{lim.max_queued} wait (max_queued); try again when one has started",
                                 limit="max_queued", value=lim.max_queued)
            job = _Job(uuid.uuid4().hex[:16], spec)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._assign()
            self._forget_old()
        self._wake()
        return job.id

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            job = self._jobs[job_id]
            status = JobStatus.from_dict(job.status.to_dict())
            if status.state == "queued":
                status.queue_position = self._pending.index(job) + 1
        if status.state in ("starting", "running", "stopping") and status.run_dir:
            written = read_status(status.run_dir)  # the worker's progress, from the run directory
            if written is not None and written.job_id == job_id:
                for name in PROGRESS_FIELDS:
                    setattr(status, name, getattr(written, name))
                if written.state == "running" and status.state == "starting":
                    status.state = "running"
        return status

    def stop(self, job_id: str, owner: str | None = None) -> JobStatus:
        self.check_owner(job_id, owner)
        with self._lock:
            job = self._jobs[job_id]
            s = job.status
            if s.state == "queued":
                self._pending.remove(job)
                s.state, s.finished_at = "stopped", time.time()
                s.message = "Removed from the queue before it started: nothing was trained."
            elif s.state in ("starting", "running"):
                s.state = "stopping"
                self._send(job.worker, {"op": "stop", "job": job_id})
        return self.status(job_id)

    def list(self, owner: str | None = None) -> list[JobStatus]:
        with self._lock:
            ids = [j.id for j in self._jobs.values() if owner is None or j.status.owner == owner]
        return [self.status(i) for i in ids]

    def close(self, timeout: float = 30.0) -> None:
        """Drop the queue, stop running jobs (each saves its model), wait up to `timeout` for them, end the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._pending:
                job = self._pending.popleft()
                job.status.state, job.status.finished_at = "stopped", time.time()
                job.status.message = "The server shut down before this training started: nothing was trained."
            for job in self._jobs.values():
                if job.worker is not None and job.status.state in ("starting", "running"):
                    job.status.state = "stopping"
                    self._send(job.worker, {"op": "stop", "job": job.id})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(j.status.active for j in list(self._jobs.values())):
            time.sleep(0.05)
        with self._lock:
            workers = list(self._workers)
            for w in workers:
                try:
                    w.proc.stdin.close()  # the worker leaves when idle
                except OSError:
                    pass
        for w in workers:
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=10)
        self._wake()
        self._thread.join(timeout=10)
        atexit.unregister(self.close)

    # --- for tests, benchmarks and operators ---------------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        """The live workers' process ids."""
        with self._lock:
            return [w.pid for w in self._workers if not w.gone]

    def worker_of(self, job_id: str) -> int | None:
        """The pid of the worker training `job_id`, or None while it has none."""
        with self._lock:
            w = self._jobs[job_id].worker
            return None if w is None else w.pid

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """True once every worker has imported TensorFlow (False if `timeout` passes first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._workers) == self.limits.max_running and all(w.ready for w in self._workers):
                    return True
            time.sleep(0.05)
        return False

    # --- workers -------------------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ if self._env is None else self._env)
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        cmd = [sys.executable, "-m", "vae_tfp.jobs.worker", "--events-fd", str(write_fd), "--threads",
               str(self.threads), "--nice", str(self.nice), "--recycle-after", str(self.recycle_after)]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(write_fd,),
                                    env=env, start_new_session=True, text=True, bufsize=1)
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._workers.append(_Worker(proc, read_fd))

    def _send(self, worker: _Worker, message: dict) -> bool:
        try:
            worker.proc.stdin.write(json.dumps(message) + "\n")
            worker.proc.stdin.flush()
            return True
        except (OSError, ValueError):  # the worker is gone; its end of file reaches the dispatcher
            return False

    def _assign(self) -> None:
        """Give waiting jobs to idle workers (under the lock)."""
        for w in self._workers:
            if not self._pending:
                return
            if w.job is not None or w.gone:
                continue
            job = self._pending.popleft()
            if not self._send(w, {"op": "run", "job": job.id, "spec": job.spec.to_dict(),
                                  "submitted": job.status.submitted}):
                self._pending.appendleft(job)
                w.gone = True
                continue
            w.job, job.worker = job, w
            job.status.state = "starting"

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status.finished]
        for job in finished[:max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job.id]

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # --- the dispatcher thread -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._workers:
                    break
                fds = {w.fd: w for w in self._workers}
                if self._respawn_at is not None and time.monotonic() >= self._respawn_at and not self._closed:
                    self._respawn_at = None
                    while len(self._workers) < self.limits.max_running:
                        self._spawn()
                    fds = {w.fd: w for w in self._workers}
            readable, _, _ = select.select([self._wake_r, *fds], [], [], 0.5)
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            for fd in readable:
                if fd in fds:
                    self._read(fds[fd])
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _read(self, w: _Worker) -> None:
        try:
            data = os.read(w.fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._exited(w)
            return
        w.buffer += data
        *lines, w.buffer = w.buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                self._on_event(w, event)

    def _on_event(self, w: _Worker, event: dict) -> None:
        kind, job = event.get("event"), w.job
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
        elif job is None or event.get("job") != job.id:
            return
        elif kind == "started":
            job.status.started = time.time()
        elif kind == "run_dir":
            job.status.run_dir = event.get("path")
        elif kind == "end":
            final = JobStatus.from_dict(event.get("status") or {"job_id": job.id, "state": "failed"})
            final.owner, final.kind, final.submitted = job.status.owner, job.status.kind, job.status.submitted
            final.run_dir = final.run_dir or job.status.run_dir
            job.status, job.worker, w.job = final, None, None
            w.done += 1
            self._assign()

    def _exited(self, w: _Worker) -> None:
        try:
            returncode = w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its pipe closed but it lives on: end it
            w.proc.kill()
            returncode = w.proc.wait(timeout=10)
        with self._lock:
            w.gone = True
            self._workers.remove(w)
            os.close(w.fd)
            try:
                w.proc.stdin.close()
            except OSError:
                pass
            job = w.job
            if job is not None:
                s = job.status
                s.state, s.finished_at = "failed", time.time()
                s.message = describe_death(returncode, s.run_dir)
                job.worker, w.job = None, None
                if s.run_dir and Path(s.run_dir).is_dir():
                    self._write_death(s)
            if self._closed:
                return
            if not w.ready:
                self._start_failures += 1
            if self._start_failures >= 3:  # workers cannot start here: try again later, not in a tight loop
                self._respawn_at = time.monotonic() + 30.0
            else:
                self._spawn()
            self._assign()

    @staticmethod
    def _write_death(status: JobStatus) -> None:
        """The run's job.json says how its job ended, unless another job already trains the run again."""
        if lock_holder(status.run_dir) is None:
            written = read_status(status.run_dir)
            for name in PROGRESS_FIELDS:
                if written is not None and written.job_id == status.job_id:
                    setattr(status, name, getattr(written, name))
            try:
                write_status(status.run_dir, status)
            except OSError:
                pass


def describe_death(returncode: int | None, run_dir: str | None) -> str:
    """The message of a job whose worker died: how it died, and whether (from which step) its run can resume."""
    if returncode is None:
        how = "stopped answering"
    elif returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        how = f"was killed by {name}" + (" (the system may have run out of memory, or someone killed it)"
                                         if -returncode == signal.SIGKILL else "")
    else:
        how = f"exited with status {returncode}"
    text = f"The worker process training this job {how}; other jobs are not affected."
    if run_dir is None:
        return text + " It died before the run's first step: nothing was saved; press Train to start again."
    try:
        state = open_run(run_dir).checkpoint_state()
    except (ValueError, OSError):
        state = None
    name = Path(run_dir).name
    if state is None:
        return text + f" Run {name} has no checkpoint yet, so it cannot resume; press Train to start again."
    return text + (f" Run {name} keeps its last checkpoint (step {state['step']}, epoch {state['epoch']}): "
                   "press Resume to continue from there.")
