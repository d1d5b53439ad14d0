"""The sidebar: every training choice read into one `RunConfig`; Train / Stop / Resume; the saved-run picker.

A choice that does not fit the data is explained right under it (from `vae_tfp.data.prepare`'s note or error).
The config is mirrored into the URL's query parameters with `vae_tfp.sharing`, so a copied link opens the same
setup; a link is read once, when a session starts, and whatever in it is wrong is named in a warning. Nothing here
imports TensorFlow (the sidebar paints before it has loaded).
"""


import streamlit as st

from dashboard import state
from dashboard.jobs import TrainingJob
from vae_tfp import sharing
from vae_tfp.config import (
    BINARIZATIONS,
    KL_METHODS,
    LIKELIHOOD_HELP,
    LIKELIHOOD_NAMES,
    LR_SCHEDULES,
    NETWORK_NAMES,
    POSTERIOR_NAMES,
    PRIOR_NAMES,
    SIGMA_MODES,
    RunConfig,
)

VIEW_KEY, IMAGE_KEY, RUN_KEY = "view", "img", "run"  # query parameters owned by the views / the run picker
NOT_CONFIG = (VIEW_KEY, IMAGE_KEY, RUN_KEY)
SELECTS = {"likelihood": LIKELIHOOD_NAMES, "binarization": BINARIZATIONS, "prior": PRIOR_NAMES,
           "posterior": POSTERIOR_NAMES, "network": NETWORK_NAMES, "sigma_mode": SIGMA_MODES, "kl": KL_METHODS,
           "lr_schedule": LR_SCHEDULES}
NUMBERS = {  # field: (min, max, step, format) of its number input
    "latent_dim": (1, 64, 1, None), "prior_components": (1, 50, 1, None), "sigma": (0.001, 10.0, 0.01, "%.3f"),
    "beta": (0.0, 100.0, 0.1, "%.2f"), "warmup_epochs": (0.0, 1000.0, 1.0, "%.1f"),
    "free_bits": (0.0, 10.0, 0.05, "%.2f"), "iwae_k": (1, 100, 1, None), "epochs": (1, 10_000, 1, None),
    "batch_size": (1, 4096, 1, None), "lr": (1e-6, 1.0, 1e-4, "%.1e"), "seed": (0, 2**31 - 1, 1, None),
    "eval_every": (1, 1000, 1, None),
}
WIDGET_FIELDS = ("dataset", "hidden", *SELECTS, *NUMBERS)
POSTERIOR_WORDS = {"diagonal": "diagonal Gaussian N(mu(x), diag sigma(x)^2)",
                   "full": "full-covariance Gaussian N(mu(x), L(x) L(x)^T)"}
PRIOR_WORDS = {"standard_normal": "standard normal N(0, I)", "mixture": "mixture of Gaussians (learned)"}
BINARIZATION_WORDS = {"dynamic": "dynamic: re-sampled each epoch", "static": "static: sampled once",
                      "threshold": "thresholded at 0.5"}


def _key(name: str) -> str:
    return f"w_{name}"


# --- datasets and how a likelihood fits them ---------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def datasets() -> list[dict]:
    from vae_tfp.data import list_datasets

    return list_datasets()


def available_datasets() -> list[str]:
    return [d["name"] for d in datasets() if d["available"]]


@st.cache_data(max_entries=64, show_spinner=False)
def fit_report(dataset_name: str, likelihood: str, binarization: str) -> tuple[str, str, str]:
    """(level, message, note): how the data is turned into what `likelihood` models, and whether that fits.
    level is "" (fits), "info" (fits after a conversion worth knowing) or "error" (does not fit); the words come from
    `vae_tfp.explain.advice`, which the command line shares."""
    from vae_tfp.explain.advice import fit_report as advice

    level, message, note = advice(state.dataset(dataset_name), likelihood, binarization)
    if level == "error":
        message += " Train stays off until the likelihood fits."
    return level, message, note


# --- link -> widgets (once per session) ------------------------------------------------------------------------------
def _widget_value(config: RunConfig, name: str):
    value = getattr(config, name)
    return ",".join(map(str, value)) if name == "hidden" else value


def seed_widgets(config: RunConfig) -> None:
    """Put a config's values into the sidebar's widgets (before they are drawn, or from a callback)."""
    for name in WIDGET_FIELDS:
        st.session_state[_key(name)] = _widget_value(config, name)
    st.session_state["cfg_extra"] = {"checkpoint_every": config.checkpoint_every}


def read_link(view_labels) -> None:
    """Once per session: the URL's query parameters -> the widgets; problems -> st.session_state.link_warnings."""
    ss = st.session_state
    if ss.get("link_read"):
        return
    ss["link_read"] = True
    params = st.query_params.to_dict()
    config, warnings = sharing.config_from_query(params, datasets=available_datasets(), ignore=NOT_CONFIG)
    for name, (lo, hi, _, _) in NUMBERS.items():
        value = getattr(config, name)
        if not lo <= value <= hi:
            warnings.append(f"Link parameter {name}={value!r} is outside what the dashboard offers ([{lo}, {hi}]); "
                            f"using {getattr(RunConfig(), name)!r}.")
            config = config.replace(**{name: getattr(RunConfig(), name)})
    seed_widgets(config)
    run = params.get(RUN_KEY)
    if run:
        if run in [r["name"] for r in state.saved_runs()]:
            ss["picked_run"] = run
        else:
            warnings.append(f"Link parameter run={run!r}: no saved run of that name in {state.root()}.")
    view = params.get(VIEW_KEY)
    if view is not None and view not in view_labels:
        warnings.append(f"Link parameter view={view!r} is not a view; allowed: {', '.join(view_labels)}.")
    image = params.get(IMAGE_KEY)
    if image is not None and not (image.isdigit() and len(image) < 7):
        warnings.append(f"Link parameter img={image!r} must be a test image number (0, 1, 2, ...).")
    ss["link_warnings"] = warnings


def write_link(config: RunConfig | None) -> None:
    """Mirror the config (and the picked run) into the URL; keys the views own are left alone."""
    qp = st.query_params
    wanted = sharing.config_to_query(config) if config is not None else {}
    picked = st.session_state.get("picked_run")
    if picked and picked != state.NO_RUN:
        wanted[RUN_KEY] = picked
    keys = (*sharing.LINK_FIELDS, RUN_KEY) if config is not None else (RUN_KEY,)  # an invalid setup: link kept
    for key in keys:
        if key in wanted:
            if qp.get(key) != wanted[key]:
                qp[key] = wanted[key]
        elif key in qp:
            del qp[key]


# --- callbacks ------------------------------------------------------------------------------------------------------
def _train(config: RunConfig) -> None:
    job = TrainingJob(config, runs_root=state.root())
    st.session_state["job"], st.session_state["follow_job"] = job, True
    job.run() if state.sync_mode() else job.start()


def _resume(run_path) -> None:
    job = TrainingJob(resume_from=run_path, runs_root=state.root())
    st.session_state["job"], st.session_state["follow_job"] = job, True
    job.run() if state.sync_mode() else job.start()


def _stop() -> None:
    job = st.session_state.get("job")
    if job is not None:
        job.stop()


def _picked() -> None:
    st.session_state["follow_job"] = False


def _use_settings(config: RunConfig) -> None:
    seed_widgets(config)


def _upload() -> None:
    from vae_tfp.runs import safe_name

    upload = st.session_state.get("bundle_upload")
    if upload is None:
        return
    try:
        name = safe_name(upload.name.rsplit(".", 1)[0])
    except ValueError:
        name = None
    try:
        with st.spinner("Checking the bundle…"):
            run = sharing.import_bundle(upload.getvalue(), state.root(), name=name)
    except sharing.BundleError as err:
        st.session_state["flash"] = [("error", f"**{upload.name}** was not opened: {err}")]
        return
    except Exception as err:  # noqa: BLE001 - whatever the file is, the page shows a message
        st.session_state["flash"] = [("error", f"**{upload.name}** was not opened: {type(err).__name__}: {err}")]
        return
    st.session_state["picked_run"], st.session_state["follow_job"] = run.name, False
    st.session_state["flash"] = [("success", f"Opened **{upload.name}** as run **{run.name}**.")]


# --- drawing --------------------------------------------------------------------------------------------------------
def _select(label, name, help=None, format_func=str, **kw):
    return st.selectbox(label, SELECTS[name], key=_key(name), help=help, format_func=format_func, **kw)


def _number(label, name, help=None, **kw):
    lo, hi, step, fmt = NUMBERS[name]
    return st.number_input(label, min_value=lo, max_value=hi, step=step, format=fmt, key=_key(name), help=help,
                           **kw)


def render() -> RunConfig | None:
    """Draw the sidebar; returns the config it describes (None while a choice is invalid)."""
    ss = st.session_state
    if _key("dataset") not in ss:
        seed_widgets(RunConfig())
    problems = []
    with st.sidebar:
        st.header("Setup")
        infos = {d["name"]: d for d in datasets()}
        names = available_datasets()
        if ss[_key("dataset")] not in names:
            ss[_key("dataset")] = RunConfig().dataset
        dataset_name = st.selectbox("Dataset", names, key=_key("dataset"),
                                    help="\n\n".join(f"**{n}**: {infos[n]['description']}" for n in names))
        missing = [n for n, d in infos.items() if not d["available"]]
        st.caption(infos[dataset_name]["description"] + (f" Not available offline: {', '.join(missing)}."
                                                          if missing else ""))

        likelihood = _select("Likelihood p(x|z)", "likelihood",
                             help="\n\n".join(f"**{n}**: {m} (data as *{r}*)" for n, (m, r) in
                                              LIKELIHOOD_HELP.items()))
        if likelihood == "bernoulli":
            _select("Binarization", "binarization", format_func=lambda b: BINARIZATION_WORDS[b],
                    persist_state="session")
        if likelihood == "gaussian":
            c1, c2 = st.columns(2)
            with c1:
                _number("sigma", "sigma", help="The Gaussian's standard deviation (its start value when learned).",
                        persist_state="session")
            with c2:
                _select("sigma is", "sigma_mode", persist_state="session",
                        format_func={"fixed": "fixed", "shared": "learned, shared",
                                     "per_dim": "learned per pixel"}.get)
        level, message, note = fit_report(dataset_name, likelihood, ss.get(_key("binarization"), "dynamic"))
        st.caption(f"Models {LIKELIHOOD_HELP[likelihood][0]}. " + (f"Your data: {note}" if note else ""))
        if level == "error":
            st.error(message)
            problems.append(message)
        elif level == "info":
            st.info(message)

        _number("Latent dimension", "latent_dim", help="The size of z. 2 allows the latent-plane pictures and "
                                                        "log p(x) by quadrature.")
        prior = _select("Prior p(z)", "prior", format_func=PRIOR_WORDS.get)
        _select("Posterior q(z|x)", "posterior", format_func=POSTERIOR_WORDS.get)
        if prior == "mixture":
            _number("Mixture components", "prior_components", persist_state="session")

        st.subheader("Objective")
        c1, c2 = st.columns(2)
        with c1:
            _number("β (KL weight)", "beta", help="Loss = -E_q[log p(x|z)] + β KL(q(z|x) || p(z)); β = 1 is the ELBO.")
            _number("Free bits (nats/dim)", "free_bits", help="A floor on each latent dimension's KL.")
        with c2:
            _number("KL warm-up (epochs)", "warmup_epochs", help="β rises linearly from 0 over this many epochs.")
            _number("IWAE k", "iwae_k", help="k > 1 trains the importance-weighted bound with k samples.")

        st.subheader("Optimisation")
        c1, c2 = st.columns(2)
        with c1:
            _number("Epochs", "epochs")
            _number("Learning rate", "lr")
        with c2:
            _number("Batch size", "batch_size")
            _number("Seed", "seed")
        with st.expander("Networks and more"):
            network = _select("Network", "network", help="mlp; conv (images only); linear (with a Gaussian "
                                                         "likelihood: the linear-Gaussian model, exact log p(x)).")
            st.text_input("Hidden widths (encoder; the decoder mirrors them)", key=_key("hidden"))
            _select("KL estimate", "kl", help="analytic where a closed form exists, else Monte Carlo")
            _select("Learning-rate schedule", "lr_schedule")
            _number("Test ELBO every (epochs)", "eval_every")

        config = None
        try:
            values = {name: ss[_key(name)] for name in WIDGET_FIELDS if _key(name) in ss}
            config = RunConfig.from_dict({**values, **ss.get("cfg_extra", {})})
        except ValueError as err:
            st.error(str(err))
            problems.append(str(err))
        if config is not None and network == "conv" and infos[dataset_name]["kind"] != "image":
            problems.append("conv networks need images")
            st.error(f"conv networks need images; {dataset_name} holds points. Pick mlp or linear.")
        _controls(config, problems)
        _saved_runs()
        st.caption("This page's address holds the setup above: copy it to share it.")
    write_link(config)
    return None if problems else config


def _controls(config, problems) -> None:
    job = st.session_state.get("job")
    running = job is not None and job.running
    c1, c2 = st.columns(2)
    c1.button("Train", type="primary", width="stretch", disabled=running or bool(problems) or config is None,
              on_click=_train, args=(config,), key="train_button")
    c2.button("Stop", width="stretch", disabled=not running, on_click=_stop, key="stop_button")
    if job is not None:
        snap = job.snapshot()
        if running:
            st.caption("Training… the live progress is on the page.")
        else:
            st.caption(f"Last training: **{snap.state}** after {snap.step} steps ({snap.epoch} epochs).")


def _saved_runs() -> None:
    ss = st.session_state
    st.subheader("Saved runs")
    runs = state.saved_runs()
    rows = {r["name"]: r for r in runs}
    names = [state.NO_RUN] + list(rows)
    job = ss.get("job")
    if ss.get("follow_job") and job is not None and job.run_dir is not None and job.run_dir.name in rows:
        ss["picked_run"] = job.run_dir.name
    if ss.get("picked_run") not in names:
        ss["picked_run"] = state.NO_RUN

    def label(name):
        r = rows.get(name)
        if r is None:
            return "— none —"
        elbo = f", test ELBO {r['test_elbo']:.1f}" if isinstance(r.get("test_elbo"), (int, float)) else ""
        return f"{name} ({r['status']}{elbo})"

    picked = st.selectbox("Show a saved run", names, key="picked_run", format_func=label, on_change=_picked,
                          help=f"Runs in {state.root()}; the views show the picked one.")
    if picked != state.NO_RUN:
        _run_actions(picked, rows[picked], running=job is not None and job.running)
    st.file_uploader("Open a run bundle (.zip)", type=["zip"], key="bundle_upload", on_change=_upload,
                     help=f"A zip from 'Download run bundle'; at most {sharing.MAX_BUNDLE_BYTES // 2**20} MB. Only "
                          "weights and JSON are read; nothing is unpickled or executed.")


def _run_actions(name: str, row: dict, running: bool) -> None:
    from vae_tfp.runs import get_run

    run = get_run(name, state.root())
    try:
        config = run.config()
    except ValueError:
        return
    c1, c2 = st.columns(2)
    can_resume = row["status"] in ("stopped", "unfinished") and run.checkpoint_state() is not None
    c1.button("Resume", width="stretch", disabled=running or not can_resume, on_click=_resume, args=(run.path,),
              key="resume_button", help="Continue this run from its last checkpoint to its configured epochs.")
    c2.button("Reuse setup", width="stretch", help="Put this run's settings into the widgets above.",
              on_click=_use_settings, args=(config,), key="use_settings",
              disabled=config.dataset not in available_datasets())
    if run.has_weights():
        st.download_button("Download run bundle", data=lambda: sharing.export_bundle(run), file_name=f"{name}.zip",
                           mime="application/zip", width="stretch", key="bundle_download",
                           help="config, weights, metrics and history as a zip; open it here with the uploader.")
