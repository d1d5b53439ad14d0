"""Your own data in the browser: an uploaded .npz or zip of PNG images becomes a data set of this session (it shows
in the Dataset picker as "<name> (your upload)"), kept in the session's data root (`vae_tfp.spaces.Space`).

The file is validated by `vae_tfp.datasets.user.dataset_from_upload` under this server's `UploadLimits` (file size,
examples, size in memory, pixels per image, what the zip holds); every refusal is a message in words under the
title. Streamlit's own cap (`server.maxUploadSize` in .streamlit/config.toml) is the transport limit, set above this
server's upload cap, so a file that is too large reaches this code and is named with its size and the cap ("the file
is 80.0 MB; this server takes at most 50 MB") instead of only a red icon; the widget accepts any file type for the
same reason; Streamlit's own note of its transport cap under the widget is hidden, the caption states the cap that
applies. After each upload the widget is replaced by a fresh one, so the file's bytes do not stay in memory.
"""

from pathlib import Path

import streamlit as st

from dashboard import state
from vae_tfp.datasets.user import UserDataError, dataset_from_upload, megabytes

COUNTER = "data_upload_n"  # the uploader's key is data_upload_<n>; n grows after each upload


def uploader_key() -> str:
    return f"data_upload_{st.session_state.get(COUNTER, 0)}"


# Streamlit writes its transport cap ("256MB per file") under every uploader; the cap that applies is this server's,
# stated in the caption, so that note is hidden for the uploaders here (if the selector stops matching, it shows again)
HIDE_TRANSPORT_CAP = """<style>
[class*="st-key-data_upload_"] [data-testid="stFileUploaderDropzoneInstructions"],
.st-key-bundle_upload [data-testid="stFileUploaderDropzoneInstructions"] {display: none;}
</style>"""


def render() -> None:
    limits = state.settings().upload_limits()
    held = state.space().datasets()
    st.html(HIDE_TRANSPORT_CAP)
    with st.expander("Your own data (.npz or a zip of PNGs)", expanded=False):
        st.file_uploader("Upload a data set", key=uploader_key(), on_change=_uploaded, args=(uploader_key(),),
                         help="An .npz with arrays x_train and x_test (optional y_train, y_test, levels), or a single "
                              "x (split 90/10); 2-D arrays are points, 3-D or 4-D arrays are images (integers 0..255, "
                              "floats in [0, 1], or integers below a declared 'levels'). Or a zip of equally sized PNG "
                              "images: at its top (no labels) or one folder per class (the folder is the label). "
                              "Nothing is unpickled or executed.")
        st.caption(f"At most {megabytes(limits.max_file_bytes)} per file, {limits.max_examples:,} examples and "
                   f"{megabytes(limits.max_dataset_bytes)} in memory (float32)"
                   + (" · private to your space" if state.space().shared else "") + ".")
        for row in held:
            st.caption(row["description"])
            st.button(f"Remove {row['label']}", key=f"remove_{row['label']}", on_click=_remove, args=(row["name"],),
                      width="stretch",
                      help="Delete this data set (runs trained on it can no longer be shown or resumed here).")


def _uploaded(key: str) -> None:
    ss = st.session_state
    upload = ss.get(key)
    ss[COUNTER] = ss.get(COUNTER, 0) + 1  # a fresh widget on the next run: the file's bytes are let go
    if upload is None:
        return
    limits = state.settings().upload_limits()
    if upload.size > limits.max_file_bytes:  # before reading it
        ss["flash"] = [("error", f"**{upload.name}** was not added: the file is {megabytes(upload.size)}; this "
                                 f"server takes at most {megabytes(limits.max_file_bytes)} per upload.")]
        return
    try:
        with st.spinner(f"Checking {upload.name}…"):
            dataset = dataset_from_upload(upload.getvalue(), upload.name, limits)
            name = state.space().add_dataset(dataset, Path(upload.name).stem, upload.name)
    except UserDataError as err:
        ss["flash"] = [("error", f"**{upload.name}** was not added: {err}")]
        return
    except Exception as err:  # noqa: BLE001 - whatever the file is, the page shows a message
        ss["flash"] = [("error", f"**{upload.name}** was not added: {type(err).__name__}: {err}")]
        return
    ss["w_dataset"] = name
    shape = "x".join(map(str, dataset.event_shape))
    ss["flash"] = [("success", f"Added **{upload.name}** as the data set **{name.split(':', 1)[1]}**: "
                               f"{len(dataset.x_train):,} train / {len(dataset.x_test):,} test "
                               f"{'images' if dataset.kind == 'image' else 'points'} of shape {shape}"
                               + (f", {dataset.levels} grey levels" if dataset.levels else "")
                               + ". It is picked in the Dataset list above.")]


def _remove(name: str) -> None:
    state.space().remove_dataset(name)
    if st.session_state.get("w_dataset") == name:
        st.session_state["w_dataset"] = "digits"
    st.session_state["flash"] = [("info", f"Removed the data set **{name.split(':', 1)[1]}**.")]
