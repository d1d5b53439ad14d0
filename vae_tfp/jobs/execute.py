"""One job, trained in this process: what a worker process does with each job it is given (and what
`InlineBackend` does inside submit()).

    stop = StopSignal()                     # stop.request() from any thread: the trainer stops within one step
    final = execute(job_id, spec, stop=stop, on_run_dir=print)   # a finished JobStatus; never raises

The job trains with `vae_tfp.training.Trainer` and a `RunRecorder`, so the run directory gets everything the library
records; on top, `JobProgress` (another trainer callback) writes the job's status into the run's `job.json`:

- at most every PROGRESS_SECONDS, and every time the recorder appends a train record to the history (so the status
  is never behind the curve a page draws from that history), at each test evaluation and at the end;
- a checkpoint at least every CHECKPOINT_SECONDS of training, besides the config's `checkpoint_every` steps, so a
  worker that dies (out of memory, kill -9) loses at most that much: the run resumes from its checkpoint.

The run directory is locked (`vae_tfp.jobs.lock.RunLock`) before anything reads or writes it: a resumed run before
its checkpoint is read, a new run as soon as its directory exists (before its first checkpoint). TensorFlow is
imported by the first call, not by importing this module.
"""

import os
import socket
import threading
import time
import traceback

from vae_tfp.jobs.backend import JobRefused, JobSpec, JobStatus
from vae_tfp.jobs.lock import RunLock
from vae_tfp.jobs.status_file import write_status

PROGRESS_SECONDS = 0.25
CHECKPOINT_SECONDS = 30.0


class StopSignal:
    """A stop request that may come before the trainer exists (it is honoured as soon as it does)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requested = False
        self._trainer = None

    def request(self) -> None:
        with self._lock:
            self._requested = True
            trainer = self._trainer
        if trainer is not None:
            trainer.stop()

    def attach(self, trainer) -> None:
        """Stop requests now reach `trainer` (None: no trainer any more)."""
        with self._lock:
            self._trainer = trainer
            requested = self._requested
        if requested and trainer is not None:
            trainer.stop()

    @property
    def requested(self) -> bool:
        return self._requested


def _recorder_class():
    from vae_tfp.training import RunRecorder

    class JobRecorder(RunRecorder):
        """The library's RunRecorder, telling the job the moment the run directory exists (before any checkpoint
        is written into it), and when it appends a train record to the history."""

        def __init__(self, *args, on_open=None, on_record=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._on_open_hook, self._on_record_hook = on_open, on_record

        def _open(self):
            fresh = self.run is None
            run = super()._open()
            if fresh and self._on_open_hook is not None:
                self._on_open_hook(run)
            return run

        def _write_train(self, event) -> None:
            super()._write_train(event)
            if self._on_record_hook is not None:
                self._on_record_hook(event)

    return JobRecorder


class JobProgress:
    """The trainer callback that keeps `job.json` up to date and checkpoints every CHECKPOINT_SECONDS."""

    def __init__(self, status: JobStatus, stop: StopSignal):
        self.status = status
        self.stop = stop
        self.run = None  # vae_tfp.runs.Run once the directory exists
        self.trainer = None
        self._written = 0.0
        self._checkpointed = time.monotonic()

    def attach_run(self, run) -> None:
        self.run = run
        self.status.run_dir = str(run.path)

    def __call__(self, event) -> None:
        s = self.status
        s.step, s.epoch, s.total_steps = event.step, event.epoch, event.total_steps
        s.images_per_second, s.eta_seconds = event.images_per_second, event.eta_seconds
        if event.metrics:
            s.metrics = dict(event.metrics)
        if event.test_metrics:
            s.test_metrics = dict(event.test_metrics)
        if event.kind == "step":
            if s.state == "starting":
                s.state = "running"
            if self.stop.requested:
                s.state = "stopping"
            self._maybe_checkpoint(event)
            if time.monotonic() - self._written >= PROGRESS_SECONDS:
                self.write()
        elif event.kind in ("start", "eval"):
            self.write()

    def on_record(self, event) -> None:
        """The recorder appended a train record at `event.step`: the status says at least that much."""
        self.write()

    def _maybe_checkpoint(self, event) -> None:
        if self.run is None or time.monotonic() - self._checkpointed < CHECKPOINT_SECONDS:
            return
        trainer = event.trainer
        if event.step % trainer.config.checkpoint_every:  # the recorder has not just written one
            self.run.save_checkpoint(trainer.model, trainer.optimizer, event.step, event.epoch)
        self._checkpointed = time.monotonic()

    def write(self) -> None:
        self._written = time.monotonic()
        if self.run is not None:
            write_status(self.run.path, self.status)


def _uploaded(config, data_root):
    """The data set of a config that names an upload (`upload:<name>`, read from `data_root`), else None: the
    Trainer loads built-in data and files itself."""
    from vae_tfp.datasets.uploads import is_upload

    if not is_upload(config.dataset):
        return None
    if data_root is None:
        raise ValueError(f"dataset {config.dataset!r} is an upload, and this job names no folder of uploads")
    from vae_tfp.data import load

    return load(config.dataset, seed=config.seed, uploads=data_root)


def execute(job_id: str, spec: JobSpec, *, stop: StopSignal | None = None, on_run_dir=None,
            submitted: float | None = None) -> JobStatus:
    """Train `spec` here and return its finished status (completed / stopped / diverged / failed); never raises.
    `on_run_dir(path)` is called once the run directory exists (a resumed run: at once)."""
    stop = stop or StopSignal()
    status = JobStatus(job_id, "starting", owner=spec.owner, kind=spec.kind, submitted=submitted,
                       started=time.time(), epochs=spec.config.epochs if spec.config is not None else 0,
                       worker=f"{socket.gethostname()}:{os.getpid()}")
    progress = JobProgress(status, stop)
    locks = []  # the run's lock once taken

    def opened(run):  # the recorder has opened the run directory at the first step (a new run: just created)
        if locks:  # a resumed run: locked and known already
            return
        locks.append(RunLock(run.path).acquire(job_id))  # a new run: locked before its first checkpoint can exist
        progress.attach_run(run)
        progress.write()
        if on_run_dir is not None:
            on_run_dir(str(run.path))

    try:
        from vae_tfp.runs import open_run
        from vae_tfp.training import Trainer  # TensorFlow: a worker imports it once, before its first job

        recorder_cls = _recorder_class()
        if spec.resume is not None:
            run = open_run(spec.resume)
            locks.append(RunLock(run.path).acquire(job_id))  # before the checkpoint is read
            progress.attach_run(run)
            if on_run_dir is not None:
                on_run_dir(str(run.path))
            recorder = recorder_cls(run.path, on_open=opened, on_record=progress.on_record)
            trainer = Trainer.resume(run.path, dataset=_uploaded(run.config(), spec.data_root),
                                     callbacks=[recorder, progress])
        else:
            recorder = recorder_cls(runs_root=spec.runs_root, name=spec.run_name, on_open=opened,
                                    on_record=progress.on_record)
            trainer = Trainer(spec.config, dataset=_uploaded(spec.config, spec.data_root),
                              callbacks=[recorder, progress])
        status.epochs, status.total_steps = trainer.config.epochs, trainer.total_steps
        status.step, status.epoch = trainer.step, trainer.epoch
        progress.write()
        stop.attach(trainer)
        try:
            result = trainer.train()
        finally:
            stop.attach(None)
        status.state, status.message = result.status, result.message
        if result.status == "stopped" and not status.message:
            status.message = (f"Stopped at step {result.steps} of {status.total_steps}; the model trained so far is "
                              "kept and the run can resume." if status.run_dir is not None else
                              "Stopped before its first step: nothing was trained.")
    except JobRefused as err:
        status.state, status.message = "failed", str(err)
    except Exception as err:  # noqa: BLE001 - a job ends in a state with a message, never in an exception
        status.state, status.message = "failed", f"{type(err).__name__}: {err}"
        status.details = traceback.format_exc()
    finally:
        status.finished_at = time.time()
        status.eta_seconds = 0.0 if status.state == "completed" else float("nan")
        if status.state in ("starting", "running", "stopping"):  # an exception escaped the handlers above
            status.state = "failed"
        try:
            progress.write()  # while the run is still locked: the next job's status is never overwritten
        except OSError:
            pass  # the run directory is gone or the disk is full: the caller still gets the status
        for lock in locks:
            lock.release()
    return status
