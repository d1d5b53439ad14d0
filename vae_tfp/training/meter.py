"""Training speed as the trainer reports it: images per second and the time left.

    images/s = images / busy seconds,          over the last `window` steps
    ETA      = steps left x wall seconds per step, over the same steps

busy: the trainer's own time for a step (fetching its inputs, the compiled step, the host sync of its metrics);
wall: from the end of one step to the end of the next, so what callbacks do per step (recording the history,
checkpoints, a progress bar) counts in the ETA but not in images/s. `restart()` after a pause that is not training
(a test evaluation, the time between two `train()` calls, a step that compiled the step function) keeps the pause
out of both.
"""

import time
from collections import deque


class ThroughputMeter:
    def __init__(self, window: int = 100):
        self._rows = deque()
        self._window = int(window)
        self._images = self._busy = self._wall = 0.0
        self._last_end = None
        self.images_per_second = 0.0
        self.eta_seconds = float("nan")

    def restart(self) -> None:
        """The next step's wall time starts at that step, not at the end of the previous one."""
        self._last_end = None

    def tick(self, images: int, busy_seconds: float, steps_left: int) -> tuple[float, float]:
        """Count one step of `images` images that kept the trainer busy `busy_seconds`; (images/s, ETA seconds)."""
        now = time.perf_counter()
        wall = busy_seconds if self._last_end is None else max(now - self._last_end, busy_seconds)
        self._last_end = now
        row = (float(images), float(busy_seconds), float(wall))
        self._rows.append(row)
        self._images, self._busy, self._wall = self._images + row[0], self._busy + row[1], self._wall + row[2]
        if len(self._rows) > self._window:
            old = self._rows.popleft()
            self._images, self._busy, self._wall = self._images - old[0], self._busy - old[1], self._wall - old[2]
        self.images_per_second = self._images / max(self._busy, 1e-9)
        self.eta_seconds = steps_left * self._wall / len(self._rows)
        return self.images_per_second, self.eta_seconds
