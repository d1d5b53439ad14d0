"""The dashboard's side of the job layer (no streamlit here): which backend serves this server, and what happens to
a session's jobs when the session ends.

    backend = make_backend(backend_kind(), settings.job_limits())   # LocalBackend (worker processes); InlineBackend
                                               # with VAE_TFP_DASHBOARD_SYNC=1 (tests: no processes)
    reaper = SessionReaper(backend)            # or SessionReaper() and reaper.backend = ... once there is one
    reaper.released("owner-id", grace=120)     # the session's connection closed: in 120 s drop its queued jobs
                                               # and stop its running ones (each keeps its model)
    reaper.returned("owner-id")                # it reconnected in time: nothing happens

Pages only use the `vae_tfp.jobs.JobBackend` interface (submit, status, stop, list); `dashboard.state` keeps one
backend per server process (`st.cache_resource`), so its workers outlive reruns and sessions.

The limits (`vae_tfp.jobs.JobLimits`: trainings at once = worker processes, trainings waiting, trainings per
session) are the server's settings (`vae_tfp.settings`: VAE_TFP_MAX_JOBS, VAE_TFP_MAX_QUEUE,
VAE_TFP_MAX_JOBS_PER_SESSION, from the environment or `.streamlit/secrets.toml`).
"""

import os
import threading

from vae_tfp.jobs import InlineBackend, JobBackend, JobLimits, LocalBackend

SYNC_ENV = "VAE_TFP_DASHBOARD_SYNC"  # "1": jobs train inside submit(), in the page's thread (AppTest)


def backend_kind(environ=os.environ) -> str:
    return "inline" if environ.get(SYNC_ENV) == "1" else "local"


def make_backend(kind: str, limits: JobLimits) -> JobBackend:
    if kind == "inline":
        return InlineBackend()
    if kind == "local":
        return LocalBackend(limits)
    raise ValueError(f"unknown job backend {kind!r}; allowed: local, inline")


class SessionReaper:
    """Ends the jobs of sessions that closed and did not come back within their grace time (Streamlit's
    `server.disconnectedSessionTTL`: a session reconnecting later gets a fresh one anyway). Thread-safe; the timers
    are daemon threads, one per closed session, each gone after its grace time."""

    def __init__(self, backend: JobBackend | None = None):
        self.backend = backend
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}

    def released(self, owner: str, grace: float) -> None:
        with self._lock:
            old = self._timers.pop(owner, None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(max(0.0, float(grace)), self._reap, args=(owner,))
            timer.daemon = True
            self._timers[owner] = timer
            timer.start()

    def returned(self, owner: str) -> None:
        with self._lock:
            timer = self._timers.pop(owner, None)
        if timer is not None:
            timer.cancel()

    def pending(self) -> list[str]:
        """Owners whose jobs will be ended when their grace time passes."""
        with self._lock:
            return list(self._timers)

    def _reap(self, owner: str) -> None:
        with self._lock:
            self._timers.pop(owner, None)
        if self.backend is None:
            return
        for status in self.backend.list(owner):
            if status.active:
                self.backend.stop(status.job_id)
