"""The view tabs. The open view is drawn first; the views seen before, for the same model and the same test image, are
drawn after it into their own (hidden) tabs, so that clicking one of them shows it at once, from what the browser
already holds, while the rerun the click starts draws it again (its figures are memoized: unchanged, so the browser
does not redraw them). Each view is its own fragment inside the tabs' fragment: a widget in the open view reruns
that view only.

What resets the set of views kept drawn: another model on screen (a finished training, another run picked), a
training under way (its views say so and nothing else), and another test image (`image_index`): a view drawn for
the old image would show it for a moment. After a reset only the open view computes, as each view does on its first
visit.

One widget is shared by several views (Reconstructions, What is p(x)?, Latent space): the test image's number (?img=,
`image_index`). A view drawn hidden gets its own copy of that widget (same label, same value; a widget key may appear
once per page), replaced by the shared one when its tab opens.
"""

import contextvars
from contextlib import contextmanager

import streamlit as st

from dashboard import state

FRAGMENT_KEY = "views"  # the tabs' fragment, rerun when the test image changes
IMAGE_KEY = "img"  # the shared test image number, kept in the URL
_SHOWN_IMAGE = "image_shown"  # the test image number the views last drew
_KEPT = "views_kept"  # (key, [labels]): the views drawn for the model and image of that key, in order of visit
_hidden = contextvars.ContextVar("drawing_hidden", default=False)  # per script thread: each session its own


def drawing_hidden() -> bool:
    """True while a view is drawn into a tab that is not open."""
    return _hidden.get()


@contextmanager
def _drawn_hidden():
    token = _hidden.set(True)
    try:
        yield
    finally:
        _hidden.reset(token)


def render(views, view_key: str) -> None:
    """The tabs of `views` ((label, module with render()), ...), bound to ?`view_key`=; call inside the fragment
    keyed FRAGMENT_KEY."""
    labels = [label for label, _ in views]
    tabs = st.tabs(labels, key=view_key, bind="query-params")
    opened = next((i for i, tab in enumerate(tabs) if tab.open), 0)
    with tabs[opened]:
        _view(views[opened][1])
    for label in kept_views(labels[opened]):
        i = labels.index(label)
        with tabs[i], _drawn_hidden():
            _view(views[i][1])


@st.fragment
def _view(module) -> None:
    module.render()


def kept_views(opened: str) -> list[str]:
    """The views to draw hidden beside the open one `opened` (which joins the set): those visited since the model
    on screen or the test image last changed; none while no model is ready."""
    ss = st.session_state
    token = state.shown_token()
    key = None if token is None else (token, ss.get(_SHOWN_IMAGE, 0))
    held = ss.get(_KEPT)
    if key is None or held is None or held[0] != key:
        held = ss[_KEPT] = (key, [])
    if key is None:
        return []
    if opened not in held[1]:
        held[1].append(opened)
    return [label for label in held[1] if label != opened]


def _image_changed() -> None:
    """The shared test image changed: rerun every view drawn (the open one, and the hidden ones drop out)."""
    st.rerun(FRAGMENT_KEY)


def image_index(n_test: int, label: str = "Test image #") -> int:
    """The test example's number, shared by the views and kept in the URL (?img=...)."""
    top = max(0, n_test - 1)
    ss = st.session_state
    if drawing_hidden():
        key = f"{IMAGE_KEY}:{label}"
        ss[key] = min(int(ss.get(_SHOWN_IMAGE, 0)), top)
        return int(st.number_input(label, min_value=0, max_value=top, step=1, key=key))
    value = int(st.number_input(label, min_value=0, max_value=top, value=0, step=1, key=IMAGE_KEY,
                                bind="query-params", on_change=_image_changed))
    ss[_SHOWN_IMAGE] = value
    return value
