"""`RunRecorder`: the callback that writes a training into a run directory (layout in `vae_tfp.runs`).

    trainer = Trainer(config)
    recorder = RunRecorder(runs_root="runs")          # or RunRecorder("runs/my-run"): that exact directory
    trainer.callbacks.append(recorder)
    trainer.train()                                   # recorder.run.path: where it went

    trainer = Trainer.resume("runs/my-run")           # continue a run: record into the same directory
    trainer.callbacks.append(RunRecorder("runs/my-run"))

The directory appears with the first applied step: a start that fails (missing data, a likelihood that does not fit
the data) or a training stopped or diverged before its first step leaves nothing behind. Then it writes config.json
and data.json; every step feeds the history; every `checkpoint_every` steps (config) a checkpoint; each test
evaluation a test record; when a `train()` call ends, a last train record, a checkpoint and metrics.json (status,
steps, final train and test metrics, the divergence message). Its `SnapshotRecorder` writes snapshots/: the latest
weights every few seconds and a few dozen kept over the run (the rule is in `vae_tfp.snapshots`). Continuing a
directory that already holds a run requires the trainer to start where the run's checkpoint stands
(`Trainer.resume`); history and snapshots written after that checkpoint (lost work) are dropped first.

History rate: one train record (the mean of the steps since the previous one) every
    every = max(1, ceil(steps_per_epoch / 10), ceil(total_steps / 2000))
steps, so at most ~10 train records per epoch and ~2000 per run (plus one when a `train()` call ends), whatever the
data set size or the number of epochs; a test record per test evaluation (config.eval_every).

Several workers (`vae_tfp.distribute`): only the chief's recorder writes; on every other worker it does nothing (the
chief's checkpoint reads the local copy of each variable, no collective, so the others need no temporary one).
"""

import math
import time
from pathlib import Path

import numpy as np

from vae_tfp.runs import create_run, open_run
from vae_tfp.training.diagnostics import DiagnosticsRecorder
from vae_tfp.training.snapshots import SnapshotRecorder

RECORDS_PER_EPOCH = 10
RECORDS_PER_RUN = 2000


def history_every(steps_per_epoch: int, total_steps: int) -> int:
    """Steps between two train records of the history (the rule in the module docstring)."""
    return max(1, math.ceil(steps_per_epoch / RECORDS_PER_EPOCH), math.ceil(total_steps / RECORDS_PER_RUN))


class RunRecorder:
    """Writes the run directory of the trainer it is attached to. `run_dir`: that exact directory (created, or
    continued after `Trainer.resume`); else a fresh directory under `runs_root` (default: $VAE_TFP_RUNS or ./runs)
    named `name` (default: dataset-likelihood-z<latent>-<time>; a taken name gets a -2, -3, ... suffix).
    `run` is the `vae_tfp.runs.Run` once the directory exists, else None. `snapshots`: the `SnapshotRecorder` that
    writes snapshots/ (True, the default: one with the default policy; None or False: no snapshots).
    `diagnostics`: the `DiagnosticsRecorder` that appends per-epoch diagnostics records (KL per dimension, active
    units, mutual information) to the history (True, the default; None or False: none)."""

    def __init__(self, run_dir=None, *, runs_root=None, name: str | None = None, snapshots=True, diagnostics=True):
        if run_dir is not None and (runs_root is not None or name is not None):
            raise ValueError("give run_dir (an exact directory) or runs_root / name (a fresh one), not both")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.runs_root = runs_root
        self.name = name
        self.snapshots = SnapshotRecorder() if snapshots is True else (snapshots or None)
        self.diagnostics = DiagnosticsRecorder() if diagnostics is True else (diagnostics or None)
        self.run = None
        self.every = 1
        self._trainer = None
        self._start_step = 0  # where the trainer stood when recording began
        self._call_start = 0  # where it stood when the current train() call began
        self._interval = []  # step metrics since the last train record

    def __call__(self, event) -> None:
        cluster = getattr(event.trainer, "cluster", None)
        if cluster is not None and not cluster.is_chief:
            return  # a worker other than the chief: the chief writes the run
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    # --- events --------------------------------------------------------------------------------------------------
    def _on_start(self, event) -> None:
        trainer = event.trainer
        self.every = history_every(trainer.steps_per_epoch, trainer.total_steps)
        self._call_start = event.step
        if self.run is None:
            self._trainer, self._start_step, self._interval = trainer, event.step, []

    def _on_step(self, event) -> None:
        run = self._open()
        self._interval.append(event.metrics)
        if event.step % self.every == 0:
            self._write_train(event)
        if event.step % self._trainer.config.checkpoint_every == 0:
            run.save_checkpoint(self._trainer.model, self._trainer.optimizer, event.step, event.epoch)
        if self.snapshots is not None:
            self.snapshots.step(self._trainer, event.step)

    def _on_epoch(self, event) -> None:
        if self.run is not None and self.diagnostics is not None and self.diagnostics.due(self._trainer, event.epoch):
            self.run.append_history(self.diagnostics.record(self._trainer, event.step, event.epoch))

    def _on_eval(self, event) -> None:
        if self.run is not None:
            self.run.append_history({"kind": "test", "step": event.step, "epoch": event.epoch,
                                     "images_per_second": event.images_per_second, "time": time.time(),
                                     **event.test_metrics})

    def _on_end(self, event) -> None:
        if self.run is None or event.step == self._call_start:
            return  # no step applied in this call: nothing new to record
        if self._interval:
            self._write_train(event)
        if self.diagnostics is not None and self.diagnostics.last_step != event.step:
            self.run.append_history(self.diagnostics.record(self._trainer, event.step, event.epoch))
        self.run.save_checkpoint(self._trainer.model, self._trainer.optimizer, event.step, event.epoch)
        if self.snapshots is not None:
            self.snapshots.end(self._trainer, event.step)
        test = event.test_metrics or {}
        self.run.update_metrics(status=event.status, steps=event.step, epochs=event.epoch,
                                images_per_second=event.images_per_second, train=event.metrics, test=test,
                                test_elbo=test.get("elbo"), message=event.message)

    # --- writing -------------------------------------------------------------------------------------------------
    def _write_train(self, event) -> None:
        rows, self._interval = self._interval, []
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        self.run.append_history({"kind": "train", "step": event.step, "epoch": event.epoch,
                                 "images_per_second": event.images_per_second, "time": time.time(), **mean})

    def _open(self):
        """The run directory, created (or continued) when the first step of this recording has been applied."""
        if self.run is not None:
            return self.run
        trainer = self._trainer
        if self.run_dir is not None and self.run_dir.exists():
            run = open_run(self.run_dir)
            state = run.checkpoint_state()
            at = None if state is None else int(state["step"])
            if at != self._start_step or run.config() != trainer.config:
                raise ValueError(f"{self.run_dir} already holds a run (checkpoint at step {at}); record into it only "
                                 f"from a trainer resumed from it (Trainer.resume), or choose a new directory")
            run.truncate_history(self._start_step)
        else:
            if self.run_dir is not None:
                run = create_run(trainer.config, self.run_dir.parent, self.run_dir.name, exact=True)
            else:
                run = create_run(trainer.config, self.runs_root, self.name)
            run.write_data_info(trainer.data_info())
        self.run = run
        if self.snapshots is not None:
            self.snapshots.attach(run.path, trainer, self._start_step)
        return run
