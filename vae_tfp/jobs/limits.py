"""`JobLimits`: what a job backend enforces, passed in by whoever starts it (an operator's settings, a test).

    JobLimits(max_running=2, max_queued=8, max_per_session=1)

max_running       jobs training at once: the local backend's pool size (one worker process per running job)
max_queued        jobs waiting for a free worker; a submit beyond it is refused (None: no limit)
max_per_session   jobs one owner (a browser session, a space) may have queued or running together (None: no limit)

A submit over a limit raises `JobRefused` naming the limit and its value; a job is never dropped silently.
"""

import os
from dataclasses import dataclass


def default_running() -> int:
    """One worker per two cores (at least one): the page's own process keeps a core for the people looking."""
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class JobLimits:
    max_running: int = 2
    max_queued: int | None = 8
    max_per_session: int | None = None

    def __post_init__(self):
        if isinstance(self.max_running, bool) or not isinstance(self.max_running, int) or self.max_running < 1:
            raise ValueError(f"max_running must be a whole number >= 1, got {self.max_running!r}")
        for name in ("max_queued", "max_per_session"):
            value = getattr(self, name)
            minimum = 0 if name == "max_queued" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                raise ValueError(f"{name} must be a whole number >= {minimum} or None (no limit), got {value!r}")

    def describe(self) -> str:
        """'2 trainings at once, 8 more can wait, 1 per session' (for the page)."""
        parts = [f"{self.max_running} training{'s' if self.max_running != 1 else ''} at once"]
        parts.append("no limit on waiting ones" if self.max_queued is None else f"{self.max_queued} more can wait")
        if self.max_per_session is not None:
            parts.append(f"{self.max_per_session} per session")
        return ", ".join(parts)
