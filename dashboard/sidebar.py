"""The sidebar: every training choice read into one `RunConfig`; Train / Stop / Resume; the saved-run picker with
what this session may do with the picked run (resume, download, publish, delete: `vae_tfp.spaces.Space.access`);
the data uploader (`dashboard.uploads`) and the bundle uploader.

Train and Resume submit a job to the server's job backend (`dashboard.state.backend()`, worker processes); Stop asks
it to stop (a queued job is dropped, a running one keeps its model). A submit the backend refuses (a full queue,
this session's share of jobs, a run another job trains) is said on the page with the limit and its value.

The widgets are generated from the RunConfig fields' metadata (`vae_tfp.config.SETTINGS`: label, help, the range the
dashboard offers, step, format, choices with their words, the group and row it sits in, and when it applies, e.g.
sigma only for a likelihood that has one). A choice that does not fit the data is explained right under it (from
`vae_tfp.data.prepare`'s note or error), and a model larger than `vae_tfp.budget` allows keeps Train off with the
reason. The config is mirrored into the URL's query parameters with `vae_tfp.sharing`, so a copied link opens the
same setup; a link is read once, when a session starts, and whatever in it is wrong (or outside what the widgets
offer) is named in a warning. This server's caps (`vae_tfp.settings`: epochs, latent dimension) narrow the widgets'
ranges and are named where a link or a saved run goes over them. In shared mode the run picker lists this session's
own runs and the published runs it opened by link (?pub=<id>, read-only); the address also holds the session's space
key (?space=...), so the setup is shared through a link without it. Nothing here imports TensorFlow (the sidebar
paints before it has loaded).
"""

from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from dashboard import state, uploads
from vae_tfp import budget, families, sharing, spaces
from vae_tfp import config as C
from vae_tfp.config import RunConfig
from vae_tfp.datasets.registry import DATASETS
from vae_tfp.datasets.uploads import is_upload
from vae_tfp.datasets.user import megabytes
from vae_tfp.presets import LESSON_KEY, PRESETS, lesson_words, preset_config, suggested

NO_PRESET = "—"
VIEW_KEY, IMAGE_KEY, RUN_KEY = "view", "img", "run"  # query parameters owned by the views / the run picker
NOT_CONFIG = (VIEW_KEY, IMAGE_KEY, RUN_KEY, LESSON_KEY, state.SPACE_KEY, state.PUBLISHED_KEY)
WIDGET_FIELDS = tuple(C.SETTINGS)  # every setting has a widget
SUBHEADED = ("Objective", "Optimisation")  # groups under their own subheader; Data and Model sit under "Setup"


def _key(name: str) -> str:
    return f"w_{name}"


# --- datasets and how a likelihood fits them ---------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def builtin_datasets() -> list[dict]:
    from vae_tfp.data import list_datasets

    return list_datasets()


def datasets() -> list[dict]:
    """The built-in data sets and this session's uploads (name, description, kind, available)."""
    return builtin_datasets() + [{"name": d["name"], "description": d["description"], "kind": d["kind"],
                                  "available": True, "label": d["label"]} for d in state.space().datasets()]


def available_datasets() -> list[str]:
    return [d["name"] for d in datasets() if d["available"]]


def fit_report(dataset_name: str, likelihood: str, binarization: str) -> tuple[str, str, str]:
    """(level, message, note): how the data is turned into what `likelihood` models, and whether that fits.
    level is "" (fits), "info" (fits after a conversion worth knowing) or "error" (does not fit); the words come from
    `vae_tfp.explain.advice`, which the command line shares."""
    source = state.stamped(str(state.space().dataset_path(dataset_name))) if is_upload(dataset_name) else ()
    return _fit_report(dataset_name, source, likelihood, binarization)


@st.cache_data(max_entries=64, show_spinner=False)
def _fit_report(dataset_name: str, source: tuple, likelihood: str, binarization: str) -> tuple[str, str, str]:
    """`source`: an upload's (file, time) (part of the cache key: two sessions' uploads may share a name)."""
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


def offered(name: str) -> tuple:
    """The range a number's widget offers: its field's UI range, narrowed by this server's cap on it."""
    return state.settings().offered(name, C.SETTINGS[name].ui)


def within_offer(config: RunConfig, source: str, given=None) -> tuple[RunConfig, list[str]]:
    """The config with every number outside the range its widget offers (a narrower one than the config allows,
    and this server's caps) set back to the default, and a warning naming each: "{source} parameter latent_dim=128 is
    outside ..." or "... is over this server's limit of 32". `given`: the fields the source set itself (default: all);
    a value that only came from the data set's suggestion is narrowed without a word."""
    warnings = []
    caps = state.settings().caps()
    for name, setting in C.SETTINGS.items():
        if C.kind(name) not in ("int", "float") or setting.ui is None:
            continue
        lo, hi = offered(name)
        value = getattr(config, name)
        if not lo <= value <= hi:
            default = min(C.DEFAULTS[name], hi)
            if given is not None and name not in given:
                config = config.replace(**{name: min(max(value, lo), hi)})
                continue
            if name in caps and value > caps[name] and setting.ui[0] <= value <= setting.ui[1]:
                warnings.append(f"{source} parameter {name}={value!r} is over this server's limit of {caps[name]}; "
                                f"using {default!r}.")
            else:
                warnings.append(f"{source} parameter {name}={value!r} is outside what the dashboard offers ([{lo}, "
                                f"{hi}]); using {default!r}.")
            config = config.replace(**{name: default})
    return config, warnings


def read_link(view_labels) -> None:
    """Once per session: the URL's query parameters -> the widgets; problems -> st.session_state.link_warnings."""
    ss = st.session_state
    if ss.get("link_read"):
        return
    ss["link_read"] = True
    params = st.query_params.to_dict()
    config, warnings = sharing.config_from_query(params, datasets=available_datasets(), ignore=NOT_CONFIG)
    config, outside = within_offer(config, "Link", given=set(params))
    warnings += outside
    seed_widgets(config)
    run = params.get(RUN_KEY)
    if run:
        if run in [r["name"] for r in state.saved_runs()]:
            ss["picked_run"] = run
        else:
            where = "your space" if state.space().shared else str(state.root())
            warnings.append(f"Link parameter run={run!r}: no saved run of that name in {where}.")
    published = params.get(state.PUBLISHED_KEY)
    if published:
        ref = spaces.published_ref(published)
        try:
            state.space().run(ref)
        except ValueError as err:
            warnings.append(f"Link parameter {state.PUBLISHED_KEY}={published[:40]!r}: {err}.")
        else:
            ss["opened"] = [*ss.get("opened", []), ref] if ref not in ss.get("opened", []) else ss["opened"]
            ss["picked_run"] = ref
    view = params.get(VIEW_KEY)
    if view is not None and view not in view_labels:
        warnings.append(f"Link parameter view={view!r} is not a view; allowed: {', '.join(view_labels)}.")
    lesson = params.get(LESSON_KEY)
    if lesson is not None and lesson in PRESETS:  # the link's own setup stays: the lesson's words come beside it
        ss["preset"], ss["lesson"] = lesson, lesson_words(lesson)
    elif lesson is not None:
        warnings.append(f"Link parameter {LESSON_KEY}={lesson[:40]!r} is not a lesson; allowed: {', '.join(PRESETS)}.")
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
        if spaces.is_published(picked):
            wanted[state.PUBLISHED_KEY] = spaces.publication_of(picked)
        else:
            wanted[RUN_KEY] = picked
    lesson = st.session_state.get("preset")
    if lesson in PRESETS:  # the lesson picked in the sidebar: its words open with the link
        wanted[LESSON_KEY] = lesson
    keys = (*sharing.LINK_FIELDS, RUN_KEY, state.PUBLISHED_KEY, LESSON_KEY) if config is not None \
        else (RUN_KEY, state.PUBLISHED_KEY)  # an invalid setup: link kept
    for key in keys:
        if key in wanted:
            if qp.get(key) != wanted[key]:
                qp[key] = wanted[key]
        elif key in qp:
            del qp[key]


# --- callbacks ------------------------------------------------------------------------------------------------------
def _train() -> None:
    """Train what the widgets hold now: a value changed in the same browser round trip as the click (typed, then
    Train pressed) reaches this callback after the button was drawn with the previous config."""
    from vae_tfp.jobs import JobSpec

    config, problem = _config_from_widgets()
    problem = problem or state.settings().config_problem(config)
    if problem:
        st.session_state["flash"] = [("error", f"Training was not started: {problem}")]
        return
    if not _room_for_a_run():
        return
    _submit(JobSpec(config=config, runs_root=str(state.root()), data_root=str(state.space().data_root),
                    owner=state.owner()), "Training")


def _config_from_widgets() -> tuple[RunConfig | None, str]:
    """The config the widgets hold and the first reason it cannot be trained ("" if none): the checks `render`
    shows beside the widgets, in the same words."""
    ss = st.session_state
    try:
        config = RunConfig.from_dict({name: ss[_key(name)] for name in WIDGET_FIELDS if _key(name) in ss})
    except ValueError as err:
        return None, str(err)
    level, message, _ = fit_report(config.dataset, config.likelihood, config.binarization)
    if level == "error":
        return None, message
    data_set = state.dataset(config.dataset)
    if families.networks.get(config.network).images_only and data_set.kind != "image":
        return None, _images_only(config.network, config.dataset)
    return config, budget.problem_for(config, data_set) or ""


def _images_only(network: str, dataset_name: str) -> str:
    return f"{network} networks need images; {dataset_name} holds points. Pick mlp or linear."


def _room_for_a_run() -> bool:
    """Make room on the runs' disk before a new run (the oldest unpublished runs go when over this server's limit);
    False, with a message, when there is none."""
    report = spaces.enforce_disk_limit(state.settings())
    if report.over:
        st.session_state["flash"] = [("error", report.message())]
        return False
    return True


def _resume(ref) -> None:
    """Resume a run this session owns (`Space.require` refuses a published or foreign one, in words)."""
    from vae_tfp.jobs import JobSpec

    try:
        run = state.space().require(ref, "resume")
    except ValueError as err:
        st.session_state["flash"] = [("error", str(err))]
        return
    _submit(JobSpec(resume=str(run.path), data_root=str(state.space().data_root), owner=state.owner()), "Resuming")


def _submit(spec, what: str) -> None:
    from vae_tfp.jobs import JobRefused

    try:
        job_id = state.backend().submit(spec)
    except (JobRefused, ValueError) as err:
        st.session_state["flash"] = [("error", f"{what} was not started: {err}")]
        return
    st.session_state["job_id"], st.session_state["follow_job"] = job_id, True


def _stop() -> None:
    job_id = st.session_state.get("job_id")
    if job_id is not None:
        state.backend().stop(job_id, owner=state.owner())


def _dataset_changed() -> None:
    """A data set was picked: the settings any data set suggests take this one's values (`presets.suggested`), so
    a likelihood or a network that suited the previous data set does not stay behind."""
    ss = st.session_state
    config, _ = within_offer(suggested(ss[_key("dataset")]), "Data set", given=())
    for name in sorted({k for info in DATASETS.values() for k in info.defaults}):
        ss[_key(name)] = _widget_value(config, name)


def _presets() -> None:
    """One-click lessons (`vae_tfp.presets`): a preset fills the sidebar and opens its view; the person trains."""
    st.selectbox("Lessons: one click sets them up", [NO_PRESET, *PRESETS], key="preset", on_change=_use_preset,
                 format_func=lambda n: "— pick a lesson —" if n == NO_PRESET else PRESETS[n].title,
                 help="Each lesson fills the setup below and opens the view that shows it; press Train. The page's "
                      "address then holds the lesson's setup: copy it to share the lesson.")
    lesson = st.session_state.get("lesson")
    if lesson:
        st.info(lesson)


def _use_preset() -> None:
    ss = st.session_state
    name = ss.get("preset")
    if name in (None, NO_PRESET):
        ss["lesson"] = None
        return
    preset = PRESETS[name]
    config, warnings = within_offer(preset_config(name), "Lesson", given=set(preset.settings))
    seed_widgets(config)
    ss[VIEW_KEY] = preset.view
    ss["lesson"] = lesson_words(name)
    ss["follow_job"] = False
    ss["flash"] = [("warning", w) for w in warnings]


def _picked() -> None:
    st.session_state["follow_job"] = False


def _use_settings(config: RunConfig) -> None:
    config, warnings = within_offer(config, "Saved-run")
    seed_widgets(config)
    st.session_state["flash"] = [("warning", w) for w in warnings]


def _upload() -> None:
    from vae_tfp.runs import safe_name

    upload = st.session_state.get("bundle_upload")
    if upload is None:
        return
    try:
        name = safe_name(upload.name.rsplit(".", 1)[0])
    except ValueError:
        name = None
    cap = min(sharing.MAX_BUNDLE_BYTES, state.settings().upload_limits().max_file_bytes)
    if upload.size > cap:
        st.session_state["flash"] = [("error", f"**{upload.name}** was not opened: the file is "
                                               f"{megabytes(upload.size)}; this server takes at most "
                                               f"{megabytes(cap)} per bundle.")]
        return
    if not _room_for_a_run():
        return
    try:
        with st.spinner("Checking the bundle…"):
            run = sharing.import_bundle(upload.getvalue(), state.root(), name=name, max_bytes=cap)
    except sharing.BundleError as err:
        st.session_state["flash"] = [("error", f"**{upload.name}** was not opened: {err}")]
        return
    except Exception as err:  # noqa: BLE001 - whatever the file is, the page shows a message
        st.session_state["flash"] = [("error", f"**{upload.name}** was not opened: {type(err).__name__}: {err}")]
        return
    st.session_state["picked_run"], st.session_state["follow_job"] = run.name, False
    st.session_state["flash"] = [("success", f"Opened **{upload.name}** as run **{run.name}**.")]


# --- drawing --------------------------------------------------------------------------------------------------------
def _values() -> dict:
    """The settings as the widgets hold them now (defaults for widgets not drawn yet)."""
    ss = st.session_state
    return {name: ss.get(_key(name), C.DEFAULTS[name]) for name in WIDGET_FIELDS}


def _widget(name: str, infos: dict):
    """The widget of one RunConfig field, made from its Setting; a widget that applies only sometimes keeps its value
    while hidden."""
    setting = C.SETTINGS[name]
    kind, key = C.kind(name), _key(name)
    keep = {"persist_state": "session"} if setting.applies is not None else {}
    if name == "dataset":  # a name from the registry, or this session's upload (a link cannot name a path)
        names = available_datasets()
        shown = {n: f"{infos[n]['label']} (your upload)" if infos[n].get("label") else n for n in names}
        listed = "\n\n".join(f"**{shown[n]}**: {infos[n]['description']}" for n in names)
        return st.selectbox(setting.label, names, key=key, help=f"{setting.help}\n\n{listed} \n\nPicking a data set "
                            "fills in the settings it suggests (a likelihood that fits it, epochs, ...).",
                            format_func=shown.get, on_change=_dataset_changed, **keep)
    if kind == "choice":
        if setting.show_words:
            return st.selectbox(setting.label, list(setting.choices), key=key, format_func=setting.choices.get,
                                help=setting.help, **keep)
        listed = "\n\n".join(f"**{n}**: {words}" for n, words in setting.choices.items())
        return st.selectbox(setting.label, list(setting.choices), key=key, help=f"{setting.help}\n\n{listed}",
                            **keep)
    if kind in ("int", "float"):
        number = int if kind == "int" else float
        lo, hi = offered(name)
        cap = state.settings().caps().get(name)
        help_text = setting.help + (f" This server allows at most {cap}." if cap is not None else "")
        return st.number_input(setting.label, min_value=number(lo), max_value=number(hi), step=number(setting.step),
                               format=setting.format, key=key, help=help_text, **keep)
    return st.text_input(setting.label, key=key, help=setting.help, **keep)


def _group(group: str, infos: dict, before=None) -> None:
    """The widgets of one group in field order; fields sharing a row sit side by side. `before` maps a field name to
    something drawn just before its widget."""
    names = [n for n, s in C.SETTINGS.items() if s.group == group]
    i = 0
    while i < len(names):
        values = _values()
        if before and names[i] in before:
            before[names[i]]()
        row = [names[i]]
        while C.SETTINGS[row[0]].row and i + len(row) < len(names) \
                and C.SETTINGS[names[i + len(row)]].row == C.SETTINGS[row[0]].row:
            row.append(names[i + len(row)])
        i += len(row)
        shown = [n for n in row if C.SETTINGS[n].applies_to(values)]
        if len(shown) == 1:
            _widget(shown[0], infos)
        elif shown:
            for column, name in zip(st.columns(len(shown)), shown):
                with column:
                    _widget(name, infos)


def _fit_message(problems: list) -> None:
    """What the data becomes under the chosen likelihood, and whether that fits (under the likelihood's widgets)."""
    ss = st.session_state
    likelihood = ss[_key("likelihood")]
    level, message, note = fit_report(ss[_key("dataset")], likelihood, ss.get(_key("binarization"), "dynamic"))
    st.caption(f"Models {families.likelihoods.get(likelihood).words}. " + (f"Your data: {note}" if note else ""))
    if level == "error":
        st.error(message)
        problems.append(message)
    elif level == "info":
        st.info(message)


def render() -> RunConfig | None:
    """Draw the sidebar; returns the config it describes (None while a choice is invalid)."""
    ss = st.session_state
    if _key("dataset") not in ss:
        seed_widgets(within_offer(suggested(RunConfig().dataset), "Data set", given=())[0])
    problems = []
    with st.sidebar:
        _presets()
        controls = st.container()  # Train and Stop, drawn once the config below is known: above the fold on a laptop
        st.header("Setup")
        infos = {d["name"]: d for d in datasets()}
        if ss[_key("dataset")] not in available_datasets():
            ss[_key("dataset")] = RunConfig().dataset
        _group("Data", infos)
        uploads.render()
        dataset_name = ss[_key("dataset")]
        missing = [n for n, d in infos.items() if not d["available"]]
        st.caption(infos[dataset_name]["description"] + (f" Not available offline: {', '.join(missing)}."
                                                          if missing else ""))
        _group("Model", infos, before={"latent_dim": lambda: _fit_message(problems)})
        for group in SUBHEADED:
            st.subheader(C.GROUPS[group])
            _group(group, infos)
        with st.expander(C.GROUPS["Advanced"]):
            _group("Advanced", infos)

        config = None
        try:
            values = {name: ss[_key(name)] for name in WIDGET_FIELDS if _key(name) in ss}
            config = RunConfig.from_dict(values)
        except ValueError as err:
            st.error(str(err))
            problems.append(str(err))
        if config is not None and families.networks.get(config.network).images_only \
                and infos[dataset_name]["kind"] != "image":
            problems.append(_images_only(config.network, dataset_name))
            st.error(problems[-1])
        elif config is not None and not problems:
            size = budget.problem_for(config, state.dataset(dataset_name)) or state.settings().config_problem(config)
            if size:
                st.error(size)
                problems.append(size)
        with controls:
            _controls(config, problems)
        _saved_runs()
        _link_note(config)
    write_link(config)
    return None if problems else config


def _link_note(config) -> None:
    if not state.space().shared:
        st.caption("This page's address holds the setup above: copy it to share it.")
        return
    st.caption("This page's address holds the setup above **and your private space key** (`space=`): keep it to "
               "come back to your runs and data; anyone you give the full address to sees them too.")
    if config is not None:
        with st.expander("Share the setup only"):
            st.caption("This link opens the same setup in the other person's own space (no key, no runs):")
            query = urlencode(sharing.config_to_query(config))
            st.code(f"{st.context.url or ''}{'?' + query if query else ''}", language=None)


def _controls(config, problems) -> None:
    """Train and Stop, and how the last training went; a problem with the setup below is named here too, so a greyed
    Train says why."""
    status = state.job_status()
    running = status is not None and status.active
    c1, c2 = st.columns(2)
    c1.button("Train", type="primary", width="stretch", disabled=running or bool(problems) or config is None,
              on_click=_train, key="train_button")
    c2.button("Stop", width="stretch", disabled=not running, on_click=_stop, key="stop_button")
    if problems and not running:
        st.caption("Train is off until the setup below is fixed (its message is in red).")
    if status is None:
        return
    if status.state == "queued":
        st.caption(f"Waiting in the queue (position {status.queue_position})… the live progress is on the page.")
    elif running:
        st.caption("Training… the live progress is on the page.")
    else:
        st.caption(f"Last training: **{status.state}** after {status.step} steps ({status.epoch} epochs).")


def _saved_runs() -> None:
    ss = st.session_state
    space = state.space()
    st.subheader("Saved runs" if not space.shared else "Your runs")
    rows = {r["ref"]: r for r in state.saved_runs() + state.opened_runs()}
    refs = [state.NO_RUN] + list(rows)
    status = state.job_status()
    if ss.get("follow_job") and status is not None and status.run_dir is not None:
        name = Path(status.run_dir).name
        if name in rows and Path(rows[name]["path"]).resolve() == Path(status.run_dir).resolve():
            ss["picked_run"] = name
    if ss.get("picked_run") not in refs:
        ss["picked_run"] = state.NO_RUN

    def label(ref):
        r = rows.get(ref)
        if r is None:
            return "— none —"
        elbo = f", test ELBO {r['test_elbo']:.1f}" if isinstance(r.get("test_elbo"), (int, float)) else ""
        shared = "shared with you, read-only · " if spaces.is_published(ref) else \
            ("published · " if r.get("published") else "")
        return f"{r['name']} ({shared}{r['status']}{elbo})"

    where = "your space (private to this address)" if space.shared else str(state.root())
    picked = st.selectbox("Show a run", refs, key="picked_run", format_func=label, on_change=_picked,
                          help=f"Runs in {where}; the views show the picked one.")
    if picked != state.NO_RUN:
        _run_actions(picked, rows[picked], running=status is not None and status.active)
    cap = min(sharing.MAX_BUNDLE_BYTES, state.settings().upload_limits().max_file_bytes)
    st.file_uploader("Open a run bundle (.zip)", type=["zip"], key="bundle_upload", on_change=_upload,
                     help=f"A zip from 'Download run bundle'; at most {cap // 2**20} MB. Only weights, JSON and "
                          "numeric arrays are read; nothing is unpickled or executed.")


def _run_actions(ref: str, row: dict, running: bool) -> None:
    space = state.space()
    try:
        run, access = space.run(ref), space.access(ref)
        config = run.config()
    except ValueError:
        return
    from vae_tfp.jobs import lock_holder

    if access.why:
        st.caption(access.why)
    c1, c2 = st.columns(2)
    if access.owned:
        busy = lock_holder(run.path) is not None
        c1.button("Resume", width="stretch", disabled=running or busy or not access.resume, on_click=_resume,
                  args=(ref,), key="resume_button",
                  help="A job is training this run now." if busy else
                  "Continue this run from its last checkpoint to its configured epochs.")
    c2.button("Reuse setup", width="stretch", help="Put this run's settings into the widgets above.",
              on_click=_use_settings, args=(config,), key="use_settings",
              disabled=config.dataset not in available_datasets())
    if run.has_weights() and access.download:
        st.download_button("Download run bundle", data=lambda: _bundle(ref), file_name=f"{row['name']}.zip",
                           mime="application/zip", width="stretch", key="bundle_download",
                           help="config, weights, metrics and history (and the test split of uploaded data) as a "
                                "zip; open it here with the uploader.")
    if access.owned and space.shared:
        _publish_controls(ref, row, access)
    if access.delete:
        with st.popover("Delete…", width="stretch"):
            st.caption(f"Delete **{row['name']}** and its files for good"
                       + (" (its published link stops working)." if row.get("published") else "."))
            st.button("Delete this run", key="delete_button", on_click=_delete, args=(ref,), type="primary",
                      disabled=running)


def _bundle(ref: str) -> bytes:
    return state.space().export_bundle(ref)


def published_link(pid: str) -> str:
    return f"{st.context.url or ''}?{state.PUBLISHED_KEY}={pid}"


def _publish_controls(ref: str, row: dict, access) -> None:
    pid = row.get("published")
    if pid:
        st.caption("Published: anyone with this link can view and download this run (not change it). Publish "
                   "again to update it with the run as it is now.")
        st.code(published_link(pid), language=None)
    c1, c2 = st.columns(2)
    c1.button("Publish again" if pid else "Publish", width="stretch", disabled=not access.publish, on_click=_publish,
              args=(ref,), key="publish_button",
              help="A read-only copy others can open by link: they can look at it and download it, not resume, "
                   "change or delete it.")
    if pid:
        c2.button("Unpublish", width="stretch", on_click=_unpublish, args=(ref,), key="unpublish_button",
                  help="Withdraw the copy: the link stops working.")


def _publish(ref: str) -> None:
    try:
        with st.spinner("Publishing…"):
            pid = state.space().publish(ref)
    except ValueError as err:
        st.session_state["flash"] = [("error", f"**{ref}** was not published: {err}")]
        return
    st.session_state["flash"] = [("success", f"Published **{ref}**: anyone with the link "
                                             f"`{published_link(pid)}` can view and download it.")]


def _unpublish(ref: str) -> None:
    try:
        state.space().unpublish(ref)
    except ValueError as err:
        st.session_state["flash"] = [("error", str(err))]
        return
    st.session_state["flash"] = [("info", f"**{ref}** is no longer published; its link stops working.")]


def _delete(ref: str) -> None:
    try:
        state.space().delete(ref)
    except (ValueError, OSError) as err:
        st.session_state["flash"] = [("error", f"**{ref}** was not deleted: {err}")]
        return
    st.session_state["picked_run"] = state.NO_RUN
    state.session_memory().loaded = None
    st.session_state["flash"] = [("info", f"Deleted **{ref}**.")]
