"""`job.json` in a run directory: the status of the job training it, written by the process that trains and read by
any process that looks (the page, a test, another backend). One JSON object, `JobStatus.to_dict()`, replaced whole
by rename, so a reader never sees half of it.

    write_status(run_dir, status)
    read_status(run_dir)   -> JobStatus or None (no job has trained this run, or the file is unreadable)
"""

import json
import os
import secrets
from pathlib import Path

from vae_tfp.jobs.backend import JobStatus

STATUS_NAME = "job.json"


def write_status(run_dir, status: JobStatus) -> None:
    """Atomic by rename; no fsync: a status is rewritten often, and after a power cut the run's own files (the
    checkpoint, metrics.json) say where it stands."""
    path = Path(run_dir) / STATUS_NAME
    tmp = path.with_name(f".{STATUS_NAME}.{secrets.token_hex(6)}.tmp")
    with open(tmp, "w") as f:
        f.write(status.to_json())
    os.replace(tmp, path)


def read_status(run_dir) -> JobStatus | None:
    try:
        return JobStatus.from_dict(json.loads((Path(run_dir) / STATUS_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None
