"""Per-session state, initialised once per browser session; the job backend; the model the views show.

    st.session_state["owner"]        this session's id for the job layer (whose jobs are whose)
    st.session_state["job_id"]       this session's latest training job (an id for `backend()`) or None
    st.session_state["follow_job"]   True while the views show the job's model (False after picking a saved run)
    st.session_state["space"]        this session's `vae_tfp.spaces.Space`: its runs root, its data root, and what it
                                     may do with each run (local mode: the one runs folder, as always; shared mode:
                                     the private space of the key in the page's address, ?space=...)
    st.session_state["settings"]     the server's `vae_tfp.settings.Settings` (mode and limits), read when the session
                                     starts, and "settings_warnings" about values that could not be used
    st.session_state["opened"]       the published runs this session opened by link ("published:<id>")
    session_memory()                 what this session holds in memory: the one loaded run ({"key", "model",
                                     "dataset", "data", "info"}), a small LRU of view results and figures, the live
                                     curve's records read so far. Session-scoped: released when the session ends.

Training runs in worker processes behind `backend()` (one per server process, `st.cache_resource`), never in the
page's process; the views load the finished (or stopped) model from the run directory. When a browser session's
connection closes, Streamlit releases its session-scoped resources at once (`disconnect_session` ->
`clear_session_caches`): `_session_ended` then drops the loaded model and the memo (memory back now) and asks the
`SessionReaper` to end the session's jobs once `server.disconnectedSessionTTL` has passed; a session that
reconnects within that time re-creates its memory on its next run, which cancels the reaper (its jobs go on, its
model is loaded again from the run directory). Only read-only built-in data sets are shared between sessions; an
uploaded data set or a run's carried test split is cached for its session only. Nothing here imports TensorFlow at
module level.
"""

import gc
import importlib
import os
import secrets
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from dashboard import jobs
from dashboard.keras_state import keep_keras_state
from vae_tfp import spaces
from vae_tfp.datasets import uploads
from vae_tfp.jobs import JobStatus
from vae_tfp.runs import open_run
from vae_tfp.settings import read_settings

MEMO_SIZE = 64  # view results and figures: all views kept drawn need up to ~40 entries, plus a few variants
NO_RUN = "—"


SPACE_KEY, PUBLISHED_KEY = "space", "pub"  # query parameters: this session's space key, a published run's id


def root():
    """This session's runs root (local mode: the runs folder, $VAE_TFP_RUNS or ./runs)."""
    return space().runs_root


def space() -> spaces.Space:
    return st.session_state["space"]


def settings():
    return st.session_state["settings"]


def init() -> None:
    ss = st.session_state
    for key, value in (("job_id", None), ("follow_job", False), ("link_warnings", []), ("flash", []),
                       ("opened", [])):
        if key not in ss:
            ss[key] = value
    if "owner" not in ss:
        ss["owner"] = secrets.token_hex(8)
    if "space" not in ss:
        ss["settings"], ss["settings_warnings"] = read_settings(os.environ, _secrets())
        ss["space"] = _open_space(ss["settings"])


def _open_space(server) -> spaces.Space:
    """Local mode: the one runs folder. Shared mode: the space of the key in the address, or a new key put there
    (a reload keeps the address, so the session comes back to its space)."""
    if not server.shared:
        return spaces.open_space(server)
    key = st.query_params.get(SPACE_KEY)
    if spaces.valid_key(key):
        return spaces.open_space(server, key)
    if key is not None:
        st.session_state["flash"].append(("warning", "The space key in this address is not valid; this session "
                                                     "has a new, empty space."))
    key = spaces.new_key()
    st.query_params[SPACE_KEY] = key
    return spaces.open_space(server, key)


def _secrets() -> dict:
    try:
        return st.secrets.to_dict() if st.secrets.load_if_toml_exists() else {}
    except Exception:  # noqa: BLE001 - unreadable secrets count as none
        return {}


def owner() -> str:
    return st.session_state["owner"]


# --- jobs ------------------------------------------------------------------------------------------------------------
def backend():
    """This server's job backend (vae_tfp.jobs.JobBackend), one per process: its workers outlive reruns."""
    return _backend(*_backend_key())


def reaper() -> jobs.SessionReaper:
    """Ends closed sessions' jobs (one per backend)."""
    return _reaper(*_backend_key())


def _backend_key() -> tuple:
    limits = read_settings(os.environ, _secrets())[0].job_limits()  # the server's settings (bad values: defaults)
    return jobs.backend_kind(), (limits.max_running, limits.max_queued, limits.max_per_session)


@st.cache_resource(show_spinner=False)
def _backend(kind: str, limits: tuple):
    made = jobs.make_backend(kind, jobs.JobLimits(*limits))
    _reaper(kind, limits).backend = made
    return made


@st.cache_resource(show_spinner=False)
def _reaper(kind: str, limits: tuple) -> jobs.SessionReaper:
    return jobs.SessionReaper()  # its backend arrives when that is made: no backend, no jobs to end


def job_status() -> JobStatus | None:
    """This session's latest job, where it stands now (None: it has none, or the server forgot it)."""
    job_id = st.session_state.get("job_id")
    if job_id is None:
        return None
    try:
        return backend().status(job_id)
    except KeyError:
        return None


# --- this session's memory -------------------------------------------------------------------------------------------
class SessionMemory:
    """What one browser session holds in the page's process; released when the session ends."""

    def __init__(self, owner_id: str, grace: float, reaper_ref: jobs.SessionReaper):
        self.owner = owner_id
        self.grace = grace  # seconds after the connection closed before the session's jobs are ended
        self.reaper = reaper_ref
        self.loaded = None  # {"key", "model", "dataset", "data", "info"}: one loaded run
        self.memo = OrderedDict()
        self.live_history = None  # {"path", "offset", "records"}

    def release(self) -> None:
        self.loaded, self.live_history = None, None
        self.memo.clear()


def session_memory() -> SessionMemory:
    """This session's memory, created on its first run (and again on the first run after a reconnect)."""
    memory = _session_memory(owner())
    st.session_state["session_memory"] = weakref.ref(memory)  # for tests and debugging; never keeps it alive
    return memory


@st.cache_resource(scope="session", on_release=lambda memory: _session_ended(memory), show_spinner=False)
def _session_memory(owner_id: str) -> SessionMemory:
    r = reaper()
    r.returned(owner_id)  # a session back within its grace time keeps its jobs
    return SessionMemory(owner_id, float(st.get_option("server.disconnectedSessionTTL")), r)


def _session_ended(memory: SessionMemory) -> None:
    """Streamlit released the session's resources (its connection closed). Runs on the server's thread: no st.*,
    nothing from session state; quick."""
    memory.release()
    memory.reaper.released(memory.owner, memory.grace)
    _collect_soon()


_collect_lock = threading.Lock()
_collect_timer = []


def _collect_soon(delay: float = 2.0) -> None:
    """One full garbage collection a moment after sessions end (several closing together share it): a released
    model is a web of reference cycles, and the server does not collect after every run (runner.postScriptGC is
    off in .streamlit/config.toml: it cost ~50 ms per script or fragment run)."""
    def collect():
        with _collect_lock:
            _collect_timer.clear()
        gc.collect()
        _trim_heap()

    with _collect_lock:
        if not _collect_timer:
            timer = threading.Timer(delay, collect)
            timer.daemon = True
            _collect_timer.append(timer)
            timer.start()


def _trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc), so that the process's memory falls when sessions end."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def prewarm() -> None:
    """After the first paint, once per process: import TensorFlow (through vae_tfp.evaluation) in the background,
    and start the job backend, whose workers import it in their own processes."""
    _prewarm_thread()
    backend()


def load_tensorflow() -> None:
    """Import TensorFlow and Keras (through vae_tfp.evaluation, which every `vae_tfp.explain` view module uses) and
    keep Streamlit from resetting Keras between reruns.

    The first time, the objects alive then (TensorFlow's ~500k module-level objects, which live as long as the
    process) are moved out of the garbage collector's sight with `gc.freeze()`: every full collection (Python's
    own, and Streamlit's after each script run where `runner.postScriptGC` is on) would otherwise walk them, ~0.2 s
    each once TensorFlow is loaded, holding up the rerun's messages."""
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


# --- data -------------------------------------------------------------------------------------------------------
def dataset(name: str, seed: int = 0):
    """A data set by the name a config gives it: built in (shared read-only between sessions), or an upload of this
    session (cached for this session only)."""
    if uploads.is_upload(name):
        return _file_dataset(*stamped(str(space().dataset_path(name))), name)
    return _builtin_dataset(name, seed)


def stamped(path: str) -> tuple[str, int]:
    """(path, its modification time): a file's cache key, so a replaced file is read again."""
    return path, Path(path).stat().st_mtime_ns if Path(path).exists() else 0


@st.cache_resource(max_entries=3, show_spinner="Loading the data set…")
def _builtin_dataset(name: str, seed: int = 0):
    from vae_tfp.data import load

    return load(name, seed=seed)


@st.cache_resource(max_entries=2, scope="session", show_spinner="Loading your data set…")
def _file_dataset(path: str, mtime: int, name: str):
    """An upload (by its path, which holds the space's folder) or a run's carried test split, for this session."""
    if Path(path).name == uploads.TEST_DATA:
        return uploads.read_test_split(Path(path), name)
    return uploads.load(Path(path).parent, name)


def prepared(config, run=None):
    """(Dataset, Prepared) for a config (and the run it belongs to: the test split a run carries wins), as the
    trainer prepares them. Built-in data is shared read-only between sessions, the rest cached per session.
    SpaceError for data this server does not read."""
    kind, where = space().data_source(config, run)
    if kind == "builtin":
        return _prepared(config.dataset, config.likelihood, config.binarization, config.seed)
    return _prepared_file(*stamped(where), config.dataset, config.likelihood, config.binarization, config.seed)


@st.cache_resource(max_entries=2, scope="session", show_spinner="Preparing the data…")
def _prepared_file(path: str, mtime: int, name: str, likelihood: str, binarization: str, seed: int):
    from vae_tfp.config import RunConfig
    from vae_tfp.explain.data import prepared_data

    config = RunConfig(dataset=name, likelihood=likelihood, binarization=binarization, seed=seed)
    return prepared_data(config, dataset=_file_dataset(path, mtime, name))


@st.cache_resource(max_entries=2, show_spinner="Preparing the data…")
def _prepared(dataset_name: str, likelihood: str, binarization: str, seed: int):
    from vae_tfp.config import RunConfig
    from vae_tfp.explain.data import prepared_data

    return prepared_data(RunConfig(dataset=dataset_name, likelihood=likelihood, binarization=binarization, seed=seed))


def memo(token, name: str, args: tuple, compute):
    """compute() once per (model, view, inputs) in this session; the least recently used results are dropped."""
    cache = session_memory().memo
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
    """The model the views show: this session's finished (or stopped) training, else the picked saved run; either
    loaded from its run directory."""
    ss = st.session_state
    status = job_status() if ss.get("follow_job") else None
    if status is not None:
        if status.active:
            return Active("training", "Training is under way (progress above). The views show the model when it "
                                      "finishes, or when you press Stop.")
        if status.run_dir is None:
            return Active("error", status.message or "Training stopped before its first step; there is no model "
                                                     "yet.")
        try:
            run = open_run(status.run_dir)
        except ValueError as err:
            return Active("error", str(err))
        return _loaded(run)
    name = ss.get("picked_run")
    if not name or name == NO_RUN:
        return Active("none", "No model yet: press **Train** in the sidebar, or pick a saved run there.")
    try:
        run = space().run(name)
    except ValueError as err:
        return Active("error", str(err))
    return _loaded(run)


def shown_run():
    """The run the views show (this session's finished job, else the picked saved run), read from its JSON files
    only (no model is loaded); None while there is none or the job still trains."""
    ss = st.session_state
    status = job_status() if ss.get("follow_job") else None
    try:
        if status is not None:
            return open_run(status.run_dir) if status.finished and status.run_dir else None
        name = ss.get("picked_run")
        return space().run(name) if name and name != NO_RUN else None
    except ValueError:
        return None


def shown_token() -> tuple | None:
    """The token (`Active.token`) of the model the views show, from its files only (no model is loaded); None while
    there is none or the job still trains."""
    run = shown_run()
    if run is None or not run.has_weights():
        return None
    return _token(run)


def _token(run) -> tuple:
    return (str(run.path), run.weights_path.stat().st_mtime_ns)


def _loaded(run) -> Active:
    """The run's model, loaded into this session's memory once per weights file (one loaded run per session)."""
    if not run.has_weights():
        return Active("none", f"Run **{run.name}** has no weights yet (it is still starting, or it failed before "
                              "its first checkpoint).")
    key = _token(run)
    memory = session_memory()
    loaded = memory.loaded
    if loaded is None or loaded["key"] != key:
        memory.loaded = None  # the previous model goes before the next one is built
        try:
            with st.spinner(f"Loading run {run.name}…"):
                from vae_tfp.runs import load_model

                load_tensorflow()
                config = run.config()
                model = load_model(run)
                data_set, data = prepared(config, run)
        except Exception as err:  # noqa: BLE001 - a broken or foreign run: say so
            return Active("error", f"Run **{run.name}** cannot be shown here: {type(err).__name__}: {err}")
        loaded = {"key": key, "model": model, "dataset": data_set, "data": data, "info": run.data_info()}
        memory.loaded = loaded
    return Active("ready", run=run, model=loaded["model"], dataset=loaded["dataset"], data=loaded["data"],
                  info=loaded["info"], token=key)


def saved_runs() -> list[dict]:
    """This session's own runs (local mode: every run in the runs folder)."""
    return space().runs()


def opened_runs() -> list[dict]:
    """The published runs this session opened by link, as picker rows (a withdrawn one is left out)."""
    rows = []
    for ref in st.session_state.get("opened", []):
        try:
            rows.append(space().published_row(ref))
        except ValueError:
            continue
    return rows


def ready() -> "Active | None":
    """The active model for a view, or None after saying on the page why there is none yet."""
    act = active()
    if not act.ready:
        st.info(act.message)
        return None
    return act

