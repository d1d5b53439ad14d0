"""The first paint: title, a short explanation, messages, and a preview of the chosen data set (numpy only, so it
shows while TensorFlow is still importing)."""

import numpy as np
import streamlit as st

from dashboard import figures, state

EXPLANATION = """
A **variational autoencoder** has three distributions: a prior **p(z)** over a small latent code z, a
**likelihood p(x|z)** whose parameters a *decoder* network computes from z, and an approximate posterior
**q(z|x)** whose parameters an *encoder* network computes from x. Training maximises the **ELBO**,
E_q[log p(x|z)] − KL(q(z|x) || p(z)), a lower bound on log p(x). Pick a setup in the sidebar, press **Train**,
then look at each part in the views below.
"""


# A laptop (1280 x 800) shows the title, the explanation and the view tabs above the fold: less padding above the
# page, a title on one line, and a sidebar wide enough for its choices' words.
COMPACT = """<style>
.block-container {padding-top: 2.2rem;}
h1 {font-size: 1.9rem !important; padding-top: 0.2rem !important;}
section[data-testid="stSidebar"] {min-width: 330px;}
</style>"""


def render() -> None:
    header()
    preview()


def header() -> None:
    """Title, explanation, this server's note and messages: no data set is needed, so this paints first. The
    explanation is open until there is a model to look at, then folded, so the views start high on a laptop."""
    st.markdown(COMPACT, unsafe_allow_html=True)
    st.title("vae-tfp · variational autoencoders, inspected")
    first_visit = st.session_state.get("picked_run") in (None, state.NO_RUN) and st.session_state.get("job_id") is None
    with st.expander("What a VAE is, in five lines", expanded=first_visit):
        st.markdown(EXPLANATION)
    server_note()
    for level, text in st.session_state.get("flash", []):
        getattr(st, level)(text)
    st.session_state["flash"] = []
    warnings = st.session_state.get("link_warnings") or []
    if warnings:
        st.warning("Parts of this link could not be used:\n\n" + "\n".join(f"- {w}" for w in warnings))
        if st.button("Dismiss", key="dismiss_link_warnings"):
            st.session_state["link_warnings"] = []
            st.rerun()


def server_note() -> None:
    """Shared mode: whose runs this page shows and the limits that apply (`vae_tfp.settings`); any setting the
    operator gave that could not be used."""
    server = state.settings()
    for warning in st.session_state.get("settings_warnings") or []:
        st.warning(f"Server setting ignored: {warning}")
    if not server.shared:
        return
    st.caption("**Shared server.** Your runs and uploaded data live in a private space that this page's address "
               "opens (it holds your space key): keep the address to come back. Others see a run only when you "
               "publish it, as a read-only link.")
    with st.expander("This server's limits"):
        st.markdown("\n".join(f"- {line}" for line in server.describe()))


def on_screen(next_config=None) -> None:
    """Which model and which data the views show, when that is a saved, uploaded or resumed run: the sidebar
    describes the next training (`next_config`, the sidebar's config; None while its choices are invalid), not
    necessarily the run on screen."""
    run = state.shown_run()
    if run is None:
        return
    try:
        config, info, metrics = run.config(), run.data_info(), run.metrics()
    except (OSError, ValueError):
        return
    shape = "×".join(str(d) for d in info.get("event_shape", []))
    what = "points" if info.get("kind") == "points" else "images"
    text = (f"**On screen: run {run.name}** · data {info.get('dataset', config.dataset)} ({info.get('n_train', '?')} "
            f"train / {info.get('n_test', '?')} test {what} of shape {shape}, as {info.get('representation')}) · "
            f"p(x|z) {config.likelihood} · latent {config.latent_dim} · prior {config.prior} · "
            f"{metrics.get('status', 'unfinished')} after {metrics.get('epochs', '?')} epochs")
    if next_config != config:
        text += " · *the sidebar holds another setup: it is what Train trains next*"
    st.caption(text)


def preview() -> None:
    """The chosen data set (after the sidebar, which settles the dataset widget)."""
    _preview(st.session_state.get("w_dataset", "digits"))


def _data_words(name: str) -> str:
    """"The data", or, while the views show a run of other data, words that say this is the next training's."""
    run = state.shown_run()
    try:
        shown = run.data_info().get("dataset") if run is not None else None
    except (OSError, ValueError):
        shown = None
    if shown is None or shown == name:
        return "The data"
    return f"The next training's data (the run on screen has {shown})"


def _preview(name: str) -> None:
    expanded = False  # one click away: the explanation above is what a first visit reads first
    try:
        ds = state.dataset(name)
    except Exception as err:  # noqa: BLE001 - a data set that cannot load says why
        st.error(f"Data set {name!r} cannot be loaded: {err}")
        return
    with st.expander(f"{_data_words(name)}: {name} · {len(ds.x_train)} train / {len(ds.x_test)} test · "
                     f"example shape {list(ds.event_shape)}", expanded=expanded):
        st.caption(ds.description)
        # built once per data set in this session (every rerun draws the page, folded or not)
        token = ("data", name, ds.x_train.shape, hash(ds.x_train[:8].tobytes()))
        fig = state.figure(token, "preview", (), lambda: _preview_figure(name, ds))
        figures.chart(fig, width="content" if ds.kind == "image" else "stretch",
                      config=figures.plot_config(f"{name}-preview"), key="preview")
        values = state.memo(token, "distinct", (), lambda: len(np.unique(ds.x_train[:200])))
        st.caption(f"Values: {'grey levels 0..' + str(ds.levels - 1) if ds.kind == 'image' else 'real numbers'}"
                   f" ({values} distinct values in the first 200 examples).")


def _preview_figure(name: str, ds):
    if ds.kind == "image":
        k = 8
        titles = [ds.label_names[int(y)] if ds.label_names is not None and ds.y_train is not None else ""
                  for y in (ds.y_train[:k] if ds.y_train is not None else [0] * k)]
        return figures.image_grid(ds.x_train[:k], cols=k, titles=titles, zmin=0, zmax=ds.levels - 1, px=96)
    x = ds.x_test[:1000]  # [n, D]
    fig = figures.points_figure(x, title=f"{name}: test points" +
                                (f" (first two of {x.shape[1]} coordinates)" if x.shape[1] > 2 else ""))
    fig.update_layout(height=380)
    return fig
