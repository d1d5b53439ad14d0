"""The job interface every backend implements, and the values it speaks in (TF-free, streamlit-free).

    backend.submit(JobSpec(config=RunConfig(...), runs_root="runs", owner="s1"))  -> job id (str)
    backend.submit(JobSpec(resume="runs/<name>", owner="s1"))                      -> job id
    backend.status(job_id)  -> JobStatus       state, queue position, step / total, epoch, images/s, ETA, metrics,
                                               message, run directory
    backend.stop(job_id, owner=None) -> JobStatus   queued: dropped; running: stopped within one step, model kept;
                                               with `owner`, another owner's job is refused (PermissionError)
    backend.list(owner=None) -> [JobStatus]    oldest first

A job is "train this config into a new run under this runs folder" or "continue this run directory from its last
checkpoint". It trains with the library's `Trainer` and `RunRecorder`, so the run directory holds everything the
job produced (config, history, checkpoints, weights, metrics) and the job's own status (`job.json`, see
`vae_tfp.jobs.status_file`): the run directory is the interface between the process that trains and the processes
that look. A submit the backend cannot take raises `JobRefused`, naming the limit and its value.

States: queued (waiting for a free worker; `queue_position` 1 = next), starting (a worker is loading the data and
building the model), running, stopping (asked to stop; it ends within one step), and the finished ones: completed,
stopped (by stop(), or dropped from the queue), diverged (the trainer's NaN guard; the message names the step),
failed (an error, or the process training it died; the message says what happened and whether the run can resume).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vae_tfp.config import RunConfig

ACTIVE = ("queued", "starting", "running", "stopping")
FINISHED = ("completed", "stopped", "diverged", "failed")
STATES = ACTIVE + FINISHED


class JobRefused(Exception):
    """A submit the backend will not take. `limit`: which rule ("max_running", "max_queued", "max_per_session",
    "run_busy", "closed"); `value`: the limit's value (None where it has none). str() is a sentence for people."""

    def __init__(self, message: str, *, limit: str, value=None):
        super().__init__(message)
        self.limit = limit
        self.value = value


@dataclass(frozen=True)
class JobSpec:
    """What to train. Exactly one of `config` (a new run, in a fresh directory under `runs_root`, named `run_name`
    or after the config and the time) and `resume` (an existing run directory, continued from its checkpoint to its
    configured epochs). `owner`: who submitted it (a browser session or a space), for `list(owner)` and the
    per-owner limit. `data_root`: the folder of the owner's uploaded data sets (`upload:<name>` in a config; see
    `vae_tfp.datasets.uploads`), None where there are none. Plain data: `to_dict()` / `from_dict()` carry it as JSON
    to another process or machine."""

    config: RunConfig | None = None
    runs_root: str | None = None
    run_name: str | None = None
    resume: str | None = None
    owner: str = ""
    data_root: str | None = None

    def __post_init__(self):
        if (self.config is None) == (self.resume is None):
            raise ValueError("a job trains a config (config=RunConfig(...)) or resumes a run (resume=<run dir>), "
                             "exactly one of the two")
        if self.config is not None and not isinstance(self.config, RunConfig):
            raise ValueError(f"config must be a RunConfig, got {type(self.config).__name__}")
        if self.resume is not None and (self.runs_root is not None or self.run_name is not None):
            raise ValueError("a resumed job trains into its own run directory: give resume=<run dir> alone, "
                             "without runs_root or run_name")
        if not isinstance(self.owner, str):
            raise ValueError(f"owner must be a string, got {type(self.owner).__name__}")

    @property
    def kind(self) -> str:
        return "resume" if self.resume is not None else "train"

    def absolute(self) -> JobSpec:
        """The same spec with its paths made absolute (a worker may run in another directory)."""
        from vae_tfp.runs import runs_root

        data_root = None if self.data_root is None else str(Path(self.data_root).resolve())
        if self.resume is not None:
            return JobSpec(resume=str(Path(self.resume).resolve()), owner=self.owner, data_root=data_root)
        return JobSpec(config=self.config, runs_root=str(runs_root(self.runs_root).resolve()),
                       run_name=self.run_name, owner=self.owner, data_root=data_root)

    def to_dict(self) -> dict:
        return {"config": None if self.config is None else self.config.to_dict(), "runs_root": self.runs_root,
                "run_name": self.run_name, "resume": self.resume, "owner": self.owner, "data_root": self.data_root}

    @classmethod
    def from_dict(cls, d: dict) -> JobSpec:
        config = d.get("config")
        return cls(config=None if config is None else RunConfig.from_dict(config), runs_root=d.get("runs_root"),
                   run_name=d.get("run_name"), resume=d.get("resume"), owner=d.get("owner", ""),
                   data_root=d.get("data_root"))


@dataclass
class JobStatus:
    """Where a job stands. Times are `time.time()` seconds (None until they happen); `eta_seconds` is NaN while
    unknown; `metrics` the last training step's (elbo, reconstruction, kl, loss, beta), `test_metrics` the last
    test evaluation's; `details` a traceback for a bug report (failures inside the training code only)."""

    job_id: str
    state: str
    owner: str = ""
    kind: str = "train"  # "train" or "resume"
    queue_position: int | None = None  # 1 = next to start; only while queued
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    epochs: int = 0
    images_per_second: float = 0.0
    eta_seconds: float = float("nan")
    metrics: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    message: str = ""
    details: str = ""
    run_dir: str | None = None
    worker: str | None = None  # "host:pid" of the process that trains (trained) it
    submitted: float | None = None
    started: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eta_seconds"] = None if not math.isfinite(self.eta_seconds) else self.eta_seconds
        return d

    @classmethod
    def from_dict(cls, d: dict) -> JobStatus:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        if values.get("eta_seconds") is None:
            values["eta_seconds"] = float("nan")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class JobBackend(ABC):
    """Runs training jobs somewhere; pages and the command line only see these four methods."""

    @abstractmethod
    def submit(self, spec: JobSpec) -> str:
        """Take a job; its id. Raises JobRefused (with the limit and its value) when it cannot."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """Where the job stands now. KeyError for an id this backend does not know."""

    @abstractmethod
    def stop(self, job_id: str, owner: str | None = None) -> JobStatus:
        """Drop a queued job, or ask a running one to stop (it keeps the model trained so far); a finished job is
        left as it is. Returns the status right after asking. With `owner`, a job submitted by someone else is not
        touched: PermissionError (use `check_owner`)."""

    def check_owner(self, job_id: str, owner: str | None) -> None:
        """PermissionError when `owner` is given and the job `job_id` was submitted by another owner."""
        if owner is not None and self.status(job_id).owner != owner:
            raise PermissionError(f"job {job_id} belongs to another session: only the session that submitted a job "
                                  "can stop it")

    @abstractmethod
    def list(self, owner: str | None = None) -> list[JobStatus]:
        """The jobs this backend knows (of `owner` only, if given), oldest first."""

    def wait(self, job_id: str, timeout: float, poll: float = 0.1) -> JobStatus:
        """The job's status once it has finished; TimeoutError (with where it stands) if `timeout` seconds pass."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if status.finished:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout:g} s: {status.state}, step "
                                   f"{status.step} of {status.total_steps}")
            time.sleep(poll)

    def close(self, timeout: float = 30.0) -> None:  # noqa: B027 - optional: backends without resources skip it
        """Stop every job (saving what they trained) and free the backend's resources."""
