"""One trainer per run directory: `RunLock`, an exclusive lock on `<run>/.train.lock` held while a job trains it.

    lock = RunLock(run_dir).acquire(job_id="ab12")   # RunBusy (a JobRefused) if another process holds it
    ...train...
    lock.release()
    lock_holder(run_dir)   # {"pid", "job", "host", "since"} of the live holder, or None

The lock is the kernel's (`flock` on the open file), so it dies with its process: a worker killed with -9 (out of
memory, an operator) leaves no stale lock behind, and a reused pid can never look like a holder. The file keeps the
holder's pid and job id, only to name them in the refusal. Local file systems only: flock does not reach across
machines reliably; a backend that trains on other machines needs a lock of its own (e.g. in its queue service).
"""

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from vae_tfp.jobs.backend import JobRefused

LOCK_NAME = ".train.lock"


class RunBusy(JobRefused):
    def __init__(self, run_dir, holder: dict | None):
        who = ""
        if holder:
            who = f" (job {holder.get('job') or '?'}, process {holder.get('pid', '?')} on {holder.get('host', '?')})"
        super().__init__(f"run {Path(run_dir).name} is being trained by another job{who}; wait until it ends or stop "
                         "it, then resume", limit="run_busy", value=None)
        self.holder = holder


class RunLock:
    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd = None

    def acquire(self, job_id: str = "", attempts: int = 20, wait: float = 0.05) -> "RunLock":
        """Take the lock or raise RunBusy. A few short retries ride over another process's `lock_holder` probe."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        for attempt in range(attempts):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == attempts - 1:
                    os.close(fd)
                    raise RunBusy(self.path.parent, _read(self.path)) from None
                time.sleep(wait)
        info = {"pid": os.getpid(), "job": job_id, "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_holder(run_dir) -> dict | None:
    """Who trains `run_dir` now ({"pid", "job", "host", "since"}), or None when nobody does."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text() or "null")
    except (OSError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None
