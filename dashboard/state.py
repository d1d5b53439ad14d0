"""Per-session state, initialised once per browser session, and the model the views show.

    st.session_state["job"]         this session's TrainingJob (a background thread) or None
    st.session_state["follow_job"]  True while the views show the job's model (False after picking a saved run)
    st.session_state["loaded"]      the one saved run loaded for the views: {"key", "model", "dataset", "data", ...}
    st.session_state["memo"]        a small LRU of view results and their figures, keyed by the model and the inputs
    st.session_state["live_history"]  the live curve's records of the run being trained, read incrementally:
                                    {"path", "offset", "records"} or None

Models live in session state, so two browser sessions never see or disturb each other's models; only read-only
data sets are shared between sessions (`st.cache_resource`). Memory stays flat: one job, one loaded run and a
bounded memo per session. Nothing here imports TensorFlow at module level.
"""

import gc
import importlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import streamlit as st

from dashboard.jobs import keep_keras_state
from vae_tfp.runs import get_run, list_runs, runs_root

MEMO_SIZE = 48  # view results and the figures built from them
NO_RUN = "—"
SYNC_ENV = "VAE_TFP_DASHBOARD_SYNC"  # "1": Train runs in the page's own thread (AppTest), not a background one


def sync_mode() -> bool:
    return os.environ.get(SYNC_ENV) == "1"


def root():
    return runs_root()


def init() -> None:
    ss = st.session_state
    for key, value in (("job", None), ("follow_job", False), ("loaded", None), ("link_warnings", []),
                       ("flash", []), ("live_history", None)):
        if key not in ss:
            ss[key] = value
    if "memo" not in ss:
        ss["memo"] = OrderedDict()


def prewarm() -> None:
    """Import TensorFlow (through vae_tfp.evaluation) in the background once per process, after the first paint."""
    _prewarm_thread()


def load_tensorflow() -> None:
    """Import TensorFlow and Keras (through vae_tfp.evaluation, which every `vae_tfp.explain` view module uses) and
    keep Streamlit from resetting Keras between reruns.

    The first time, the objects alive then (TensorFlow's ~500k module-level objects, which live as long as the
    process) are moved out of the garbage collector's sight with `gc.freeze()`: Streamlit runs a full collection
    after every script and fragment run (`runner.postScriptGC`), which otherwise takes ~0.2 s per rerun once
    TensorFlow is loaded and holds up the rerun's messages."""
    importlib.import_module("vae_tfp.evaluation")
    keep_keras_state()
    _freeze_once()


_frozen = threading.Lock()
_frozen_done = []


def _freeze_once() -> None:
    with _frozen:
        if not _frozen_done:
            gc.collect()  # what is garbage now is freed, not frozen
            gc.freeze()
            _frozen_done.append(True)


def explain(view: str):
    """The module `vae_tfp.explain.<view>` that computes what a view page draws (TensorFlow loads on first use)."""
    load_tensorflow()
    return importlib.import_module(f"vae_tfp.explain.{view}")


@st.cache_resource(show_spinner=False)
def _prewarm_thread():
    thread = threading.Thread(target=load_tensorflow, daemon=True, name="vae-tfp-prewarm")
    thread.start()
    return thread


# --- shared read-only data -------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=3, show_spinner="Loading the data set…")
def dataset(name: str, seed: int = 0):
    """A built-in data set (numpy only; shared read-only between sessions)."""
    from vae_tfp.data import load

    return load(name, seed=seed)


def prepared(config):
    """(Dataset, Prepared) for a config, as the trainer prepares them (shared read-only between sessions)."""
    return _prepared(config.dataset, config.likelihood, config.binarization, config.seed)


@st.cache_resource(max_entries=2, show_spinner="Preparing the data…")
def _prepared(dataset_name: str, likelihood: str, binarization: str, seed: int):
    from vae_tfp.config import RunConfig
    from vae_tfp.explain.data import prepared_data

    return prepared_data(RunConfig(dataset=dataset_name, likelihood=likelihood, binarization=binarization, seed=seed))


def memo(token, name: str, args: tuple, compute):
    """compute() once per (model, view, inputs) in this session; the least recently used results are dropped."""
    cache = st.session_state["memo"]
    key = (token, name, args)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = compute()
    cache[key] = value
    while len(cache) > MEMO_SIZE:
        cache.popitem(last=False)
    return value


def figure(token, name: str, args: tuple, build):
    """A view's Plotly figure, built once per (model, figure, inputs) in this session: building a figure of many
    traces costs 10-100 ms, so a rerun that changes another widget reuses it. `args` must hold every input."""
    return memo(token, f"figure:{name}", args, build)


# --- the model the views show -------------------------------------------------------------------------------------
@dataclass
class Active:
    status: str  # "none", "training", "ready", "error"
    message: str = ""
    run: object = None  # vae_tfp.runs.Run
    model: object = None
    dataset: object = None  # vae_tfp.data.Dataset
    data: object = None  # vae_tfp.data.Prepared
    info: dict = field(default_factory=dict)  # the run's data.json
    token: tuple = ()

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def active() -> Active:
    """The model the views show: this session's finished (or stopped) training, else the picked saved run."""
    ss = st.session_state
    job = ss.get("job")
    if job is not None and ss.get("follow_job"):
        snap = job.snapshot()
        if not snap.finished:
            return Active("training", "Training is running (progress above). The views show the model when it "
                                      "finishes, or when you press Stop.")
        trainer = job.trainer
        if trainer is None or trainer.step == 0:
            return Active("error", snap.message or "Training stopped before its first step; there is no model yet.")
        return Active("ready", run=job.saved_run, model=trainer.model, dataset=trainer.dataset,
                      data=trainer.data, info=trainer.data_info(), token=("job", id(job), trainer.step))
    name = ss.get("picked_run")
    if not name or name == NO_RUN:
        return Active("none", "No model yet: press **Train** in the sidebar, or pick a saved run there.")
    try:
        run = get_run(name, root())
    except ValueError as err:
        return Active("error", str(err))
    if not run.has_weights():
        return Active("none", f"Run **{name}** has no weights yet (it is still starting, or it failed).")
    key = (str(run.path), run.weights_path.stat().st_mtime_ns)
    loaded = ss.get("loaded")
    if loaded is None or loaded["key"] != key:
        try:
            with st.spinner(f"Loading run {name}…"):
                from vae_tfp.runs import load_model

                load_tensorflow()
                config = run.config()
                model = load_model(run)
                data_set, data = prepared(config)
        except Exception as err:  # noqa: BLE001 - a broken or foreign run: say so
            return Active("error", f"Run **{name}** cannot be shown here: {type(err).__name__}: {err}")
        loaded = {"key": key, "model": model, "dataset": data_set, "data": data, "info": run.data_info()}
        ss["loaded"] = loaded  # replaces the previous one: one loaded run per session
    return Active("ready", run=run, model=loaded["model"], dataset=loaded["dataset"], data=loaded["data"],
                  info=loaded["info"], token=key)


def saved_runs() -> list[dict]:
    return list_runs(root())


def ready() -> "Active | None":
    """The active model for a view, or None after saying on the page why there is none yet."""
    act = active()
    if not act.ready:
        st.info(act.message)
        return None
    return act

