"""`SnapshotRecorder`: writes a training's snapshots (weights at chosen steps) into its run directory.

`RunRecorder` composes one (so every job that records a run records snapshots) and calls it once the directory
exists; the layout, the rule that bounds their count and size, and the readers are in `vae_tfp.snapshots`.

    recorder = RunRecorder(runs_root="runs")                                  # snapshots with the default policy
    recorder = RunRecorder(runs_root="runs", snapshots=None)                  # none
    recorder = RunRecorder(runs_root="runs", snapshots=SnapshotRecorder(SnapshotPolicy(live_seconds=5)))

`clock` (default time.monotonic) is what the live interval is measured with; tests pass a fake one.
"""

import time

from vae_tfp import snapshots as layout
from vae_tfp.snapshots import SnapshotPolicy


class SnapshotRecorder:
    """Live and replay snapshots of one recording (see `vae_tfp.snapshots` for the rule)."""

    def __init__(self, policy: SnapshotPolicy | None = None, *, clock=time.monotonic):
        self.policy = policy or SnapshotPolicy()
        self.clock = clock
        self.run_path = None
        self.enabled = False
        self.schedule = frozenset()  # the replay steps of this run
        self.slots = 0
        self._last_live = None  # clock time of the last live write
        self._last_cost = 0.0  # how long it took
        self._extra = None  # the replay step an earlier train() call ended at (not in the schedule)
        self.written = {"live": 0, "replay": 0}  # counts, for tests and reports

    def attach(self, run_path, trainer, start_step: int) -> None:
        """Start recording into `run_path` for `trainer`, whose recording began at `start_step` (snapshots of later
        steps, from a run resumed at start_step, are lost work and dropped)."""
        self.run_path = run_path
        layout.truncate(run_path, start_step)
        size = layout.weight_bytes(trainer.model)
        self.enabled = self.policy.writes(size)
        self.slots = self.policy.replay_slots(size)
        self.schedule = frozenset(layout.replay_steps(trainer.total_steps, self.slots - 1)) if self.slots else \
            frozenset()
        existing = [s.step for s in layout.replay_snapshots(run_path) if s.step not in self.schedule]
        self._extra = existing[-1] if existing else None
        layout.remove_replay(run_path, existing[:-1])  # at most one extra survives from earlier calls

    def step(self, trainer, step: int) -> None:
        """After an applied step: a replay snapshot if the step is scheduled, a live one if it is time."""
        if not self.enabled:
            return
        if step in self.schedule:
            layout.write(self.run_path, trainer.model, step, "replay")
            self.written["replay"] += 1
        now = self.clock()
        interval = max(self.policy.live_seconds, self._last_cost / self.policy.write_share)
        if self._last_live is None or now - self._last_live >= interval:
            self._live(trainer, step)

    def end(self, trainer, step: int) -> None:
        """When a train() call ends having applied steps: the final weights, live and for replay."""
        if not self.enabled:
            return
        self._live(trainer, step)
        if not self.slots:
            return
        if self._extra is not None and self._extra != step:  # an earlier call's end gives way to this one's
            layout.remove_replay(self.run_path, [self._extra])
            self._extra = None
        if step not in self.schedule:
            layout.write(self.run_path, trainer.model, step, "replay")
            self.written["replay"] += 1
            self._extra = step

    def _live(self, trainer, step: int) -> None:
        start = self.clock()
        layout.write(self.run_path, trainer.model, step, "live")
        layout.prune_live(self.run_path)
        self._last_live = self.clock()
        self._last_cost = self._last_live - start
        self.written["live"] += 1
