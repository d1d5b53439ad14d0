"""vae-tfp dashboard: train, inspect and share a variational autoencoder without writing code.

Run from the repository root (so that `vae_tfp` and `dashboard` import):

    .venv/bin/python -m streamlit run dashboard/app.py

This file only wires: session state and this session's memory (released, and its jobs ended, when the session
closes: see `dashboard.state`), the title (drawn first, so it paints before the sidebar has loaded a data set),
the sidebar (-> one RunConfig, mirrored into the URL), the data preview, the live training progress and one tab per
view. Only the open tab computes; TensorFlow loads after the first paint. The tabs and the views are one fragment:
switching views reruns only them, not the sidebar and the header (a third of the messages a full rerun sends to the
browser), and a view seen before shows at once (`dashboard.tabs`); a view's widget reruns that view only; whatever
changes the model on screen reruns the whole page.
"""

import streamlit as st

from dashboard import intro, sidebar, state, tabs
from dashboard.views import LABELS, VIEWS, training

st.set_page_config(page_title="vae-tfp dashboard", page_icon=":material/blur_on:", layout="wide")
state.init()
state.session_memory()  # every run: a session back from a short disconnect keeps its jobs
sidebar.read_link(LABELS)
intro.header()
next_config = sidebar.render()
intro.preview()
training.progress()
intro.on_screen(next_config)


@st.fragment(key=tabs.FRAGMENT_KEY)
def views() -> None:
    tabs.render(VIEWS, sidebar.VIEW_KEY)


views()
state.prewarm()
