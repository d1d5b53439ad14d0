"""A training job: one `vae_tfp.training.Trainer` running in a background thread, owned by one browser session.

A `RunRecorder` writes the run directory (it appears with the first step); the trainer's callback writes the latest
event into this object under a lock; the page polls `snapshot()` from a `st.fragment(run_every=...)`, so the page
never waits on training. `stop()` is honoured within one step and keeps the model trained so far. A diverged run
ends in the state "diverged" with the trainer's message. Nothing here imports streamlit; TensorFlow loads inside
the thread.

    job = TrainingJob(config, runs_root="runs")       # or TrainingJob(resume_from=run_dir, runs_root=...)
                                                      # data_root=: where `upload:<name>` data sets live
    job.start()                                       # job.run() trains in the calling thread (tests)
    job.snapshot().step, job.stop(), job.trainer.model, job.saved_run (once it exists)
"""

import threading
import time
import traceback
from dataclasses import dataclass, field


@dataclass
class Snapshot:
    state: str  # "starting", "running", "stopping", "completed", "stopped", "diverged", "failed"
    step: int = 0
    epoch: int = 0
    total_steps: int = 0
    epochs: int = 0
    images_per_second: float = 0.0
    eta_seconds: float = float("nan")
    metrics: dict = field(default_factory=dict)
    test_metrics: dict = field(default_factory=dict)
    message: str = ""
    details: str = ""  # the traceback of a failure, for an expander
    run_path: str | None = None
    started: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "stopped", "diverged", "failed")

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


def keep_keras_state() -> None:
    """Stop Streamlit from resetting Keras while models live on between reruns.

    After every script run (fragment runs included) Streamlit calls `keras.backend.clear_session()`, which replaces
    Keras' per-thread state for *all* threads (layer-name counters, seeds, scopes) and resets TF's default graph.
    A session's rerun would then break a model being built or traced in another thread ("The name 'dense' is used
    2 times in the model"). Here models are kept in session state on purpose, so that cleanup is skipped; any other
    caller of clear_session still gets the real one. Call after Keras is imported, before building a model.
    """
    import sys

    import keras

    original = keras.backend.clear_session
    if getattr(original, "keeps_keras_state", False):
        return

    def clear_session(*args, **kwargs):
        if sys._getframe(1).f_code.co_name == "_clean_problem_modules":  # Streamlit's after-run cleanup
            return None
        return original(*args, **kwargs)

    clear_session.keeps_keras_state = True
    keras.backend.clear_session = clear_session


class TrainingJob:
    def __init__(self, config=None, *, runs_root=None, resume_from=None, data_root=None):
        if (config is None) == (resume_from is None):
            raise ValueError("give a config to train, or resume_from=<run dir> to continue a run")
        self.config = config
        self.runs_root = runs_root
        self.data_root = data_root
        self.resume_from = resume_from
        self.trainer = None  # set once the thread has built it
        self.recorder = None
        self.thread = None
        self._lock = threading.Lock()
        self._snap = Snapshot("starting", started=time.time(), epochs=config.epochs if config else 0)
        self._stop_requested = threading.Event()

    # --- control -------------------------------------------------------------------------------------------------
    def start(self) -> "TrainingJob":
        self.thread = threading.Thread(target=self.run, name="vae-tfp-training", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ask training to stop; the model trained so far is kept (and saved with the run)."""
        self._stop_requested.set()
        with self._lock:
            if not self._snap.finished:
                self._snap.state = "stopping"
        trainer = self.trainer
        if trainer is not None:
            trainer.stop()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(**{**self._snap.__dict__, "metrics": dict(self._snap.metrics),
                               "test_metrics": dict(self._snap.test_metrics)})

    @property
    def running(self) -> bool:
        return not self.snapshot().finished

    @property
    def saved_run(self):
        """The run directory's `vae_tfp.runs.Run` once training has written to it (a new run: from its first step
        on), or the resumed run; else None."""
        recorder = self.recorder
        if recorder is None:
            return None
        if recorder.run is None and self.resume_from is not None:
            from vae_tfp.runs import open_run

            return open_run(self.resume_from)
        return recorder.run

    @property
    def run_dir(self):
        run = self.saved_run
        return None if run is None else run.path

    # --- the thread ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Build the trainer and train (blocking); every outcome ends in a finished snapshot, never an exception."""
        try:
            from vae_tfp.training import RunRecorder, Trainer  # TensorFlow loads here, off the page's thread

            keep_keras_state()

            from vae_tfp.data import load
            from vae_tfp.datasets.uploads import is_upload
            from vae_tfp.runs import open_run

            config = open_run(self.resume_from).config() if self.resume_from is not None else self.config
            dataset = load(config.dataset, seed=config.seed, uploads=self.data_root) \
                if is_upload(config.dataset) else None  # an upload of this session's space
            if self.resume_from is not None:
                self.recorder = RunRecorder(self.resume_from)
                trainer = Trainer.resume(self.resume_from, dataset=dataset, callbacks=[self.recorder, self._on_event])
                self.config = trainer.config
            else:
                self.recorder = RunRecorder(runs_root=self.runs_root)
                trainer = Trainer(self.config, dataset=dataset, callbacks=[self.recorder, self._on_event])
            self.trainer = trainer
            self._update(total_steps=trainer.total_steps, step=trainer.step, epoch=trainer.epoch,
                         epochs=trainer.config.epochs)
            if self._stop_requested.is_set():
                trainer.stop()
            result = trainer.train()  # "completed", "stopped" or "diverged" (with the trainer's message)
            self._update(state=result.status, message=result.message)
        except Exception as err:  # noqa: BLE001 - shown on the page as a message, not a traceback
            self._update(state="failed", message=f"{type(err).__name__}: {err}", details=traceback.format_exc())

    def _on_event(self, event) -> None:
        values = dict(step=event.step, epoch=event.epoch, total_steps=event.total_steps,
                      images_per_second=event.images_per_second, eta_seconds=event.eta_seconds)
        run = self.saved_run  # the recorder runs first: after a step, the directory exists
        if run is not None:
            values["run_path"] = str(run.path)
        if event.metrics:
            values["metrics"] = dict(event.metrics)
        if event.test_metrics:
            values["test_metrics"] = dict(event.test_metrics)
        if event.kind != "end" and not self._stop_requested.is_set():
            values["state"] = "running"
        self._update(**values)

    def _update(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._snap, key, value)
