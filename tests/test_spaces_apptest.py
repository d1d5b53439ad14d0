"""The dashboard in shared mode under streamlit.testing.v1.AppTest, one AppTest per browser session: two sessions
cannot see each other's runs or uploaded data, a published link opens read-only in another session, a run trained
on uploaded data travels through a bundle into a third space and opens there from the data the bundle carries,
every upload refusal reaches the page in words, and this server's limits are read from the environment and shown.

Training runs synchronously (VAE_TFP_DASHBOARD_SYNC=1) on a tiny uploaded data set, one epoch, so every test is
bounded whatever the machine."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import open_tab
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TFP_MODE", "shared")
    monkeypatch.setenv("VAE_TFP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    monkeypatch.delenv("VAE_TFP_RUNS", raising=False)
    return tmp_path / "home"


def app(query=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def faces_npz(n=60) -> bytes:
    x = np.random.default_rng(0).integers(0, 256, (n, 8, 8))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=np.arange(n) % 3)
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Put a file into the data uploader (its key grows after each upload: data_upload_<n>)."""
    n = at.session_state["data_upload_n"] if "data_upload_n" in at.session_state else 0
    return at.sidebar.file_uploader(key=f"data_upload_{n}").set_value((name, data, "application/octet-stream")).run()


def train(at: AppTest, epochs=1) -> AppTest:
    at.sidebar.number_input(key="w_epochs").set_value(epochs)
    at.sidebar.number_input(key="w_batch_size").set_value(32)
    return at.sidebar.button(key="train_button").click().run()


def picker(at: AppTest) -> list[str]:
    return at.sidebar.selectbox(key="picked_run").options


def heatmaps(at: AppTest) -> int:
    """Images in the open view's image grids (one heatmap per grid, its image count in layout.meta)."""
    return sum((json.loads(c.proto.spec)["layout"].get("meta") or {}).get("images", 0)
               for c in open_tab(at).get("plotly_chart"))


def trained_on_upload():
    """A session that uploaded faces.npz and trained one epoch on it."""
    a = upload(app(), "faces.npz", faces_npz())
    assert "Added **faces.npz** as the data set **faces**" in texts(a.main.success)
    assert a.sidebar.selectbox(key="w_dataset").value == "upload:faces"
    assert "faces (your upload)" in a.sidebar.selectbox(key="w_dataset").options
    a = train(a)
    assert not a.exception and "Last training: **completed**" in texts(a.sidebar.caption)
    return a


def test_two_sessions_cannot_see_each_others_runs_or_data(server):
    a = trained_on_upload()
    b = app()
    key_a, key_b = a.query_params["space"], b.query_params["space"]
    assert key_a != key_b and len(key_a) == 32
    setup_link = texts(a.sidebar.code)  # "Share the setup only": the setup without the space key
    assert "dataset=upload%3Afaces" in setup_link and "epochs=1" in setup_link and key_a not in setup_link
    run = a.session_state["picked_run"]
    assert run.startswith("upload-faces-bernoulli") or run.startswith("faces-bernoulli")
    assert any(run in o for o in picker(a)) and picker(b) == ["— none —"]
    assert "faces (your upload)" not in b.sidebar.selectbox(key="w_dataset").options
    nosy = app({"run": run, "dataset": "upload:faces"})  # a third session naming the first one's run and data
    warning = texts(nosy.main.warning)
    assert f"run={run!r}: no saved run of that name in your space" in warning
    assert "dataset='upload:faces' was ignored" in warning and picker(nosy) == ["— none —"]
    back = app({"space": key_a})  # a reload of the first session's address: the same space
    assert any(run in o for o in picker(back)) and "faces (your upload)" in back.sidebar.selectbox(
        key="w_dataset").options


def test_a_published_link_opens_read_only(server):
    a = trained_on_upload()
    a = a.sidebar.button(key="publish_button").click().run()
    assert "Published **" in texts(a.main.success)
    space = a.session_state["space"]
    pid = space.runs()[0]["published"]
    assert f"?pub={pid}" in texts(a.sidebar.code)

    b = app({"pub": pid, "view": "Reconstructions"})
    assert not b.exception and not b.main.warning, texts(b.main.warning)
    assert b.session_state["picked_run"] == f"published:{pid}"
    assert "Shared with you, read-only" in texts(b.sidebar.caption)
    for key in ("resume_button", "delete_button", "publish_button", "unpublish_button"):
        with pytest.raises(KeyError):
            b.sidebar.button(key=key)
    assert [d for d in b.sidebar.get("download_button")]  # download is offered
    assert heatmaps(b) == 18  # the views work from the test split the publication carries
    assert b.query_params["pub"] == pid and "run" not in b.query_params

    # the bundle a viewer downloads opens in a third space from the data it carries, never from the owner's upload
    bundle = b.session_state["space"].export_bundle(f"published:{pid}")
    c = app({"view": "Reconstructions"})
    c = c.sidebar.file_uploader(key="bundle_upload").set_value(("shared.zip", bundle, "application/zip")).run()
    assert not c.exception and "Opened **shared.zip**" in texts(c.main.success)
    opened = c.session_state["space"].run(c.session_state["picked_run"])
    assert opened.config().dataset == "bundle:faces" and (opened.path / "test_data.npz").is_file()
    assert heatmaps(c) == 18
    assert "faces (your upload)" not in c.sidebar.selectbox(key="w_dataset").options
    resume = c.sidebar.button(key="resume_button")  # an imported run has no checkpoint to resume from
    assert resume.disabled

    a.sidebar.button(key="unpublish_button").click().run()  # the owner withdraws it: the link stops working
    gone = app({"pub": pid})
    assert "no published run" in texts(gone.main.warning) and gone.session_state["picked_run"] == "—"


def test_a_user_data_run_round_trips_through_a_bundle(server):
    a = trained_on_upload()
    ref = a.session_state["picked_run"]
    bundle = a.session_state["space"].export_bundle(ref)
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        assert "test_data.npz" in zf.namelist()
    b = app({"view": "Reconstructions"})
    b = b.sidebar.file_uploader(key="bundle_upload").set_value(("faces-run.zip", bundle, "application/zip")).run()
    assert not b.exception and "Opened **faces-run.zip**" in texts(b.main.success)
    assert heatmaps(b) == 18
    original = a.session_state["space"].load_dataset("upload:faces")
    carried = b.session_state["space"].run_dataset(b.session_state["space"].run(b.session_state["picked_run"]))
    np.testing.assert_array_equal(carried.x_test, original.x_test)


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name, make, words", [
    ("big.npz", lambda: b"\0" * (3 * 2**20 // 2), "the file is 1.5 MB; this server takes at most 1 MB per upload"),
    ("notes.txt", lambda: b"hello", "is neither an .npz file nor a zip of PNG images"),
    ("deep.zip", lambda: _zip({"a/b/c/x.png": b"x"}), "is nested too deep"),
    ("many.npz", lambda: faces_npz(300), "holds 300 examples; this server takes at most 200"),
])
def test_each_upload_refusal_is_said_in_words(server, monkeypatch, name, make, words):
    monkeypatch.setenv("VAE_TFP_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("VAE_TFP_MAX_EXAMPLES", "200")
    at = upload(app(), name, make())
    assert not at.exception
    assert f"**{name}** was not added" in texts(at.main.error) and words in texts(at.main.error), \
        texts(at.main.error)
    assert at.session_state["space"].datasets() == []
    assert at.session_state["data_upload_n"] == 1  # a fresh uploader: the refused file is let go


def test_the_limits_come_from_the_environment_and_are_shown(server, monkeypatch):
    monkeypatch.setenv("VAE_TFP_MAX_EPOCHS", "7")
    monkeypatch.setenv("VAE_TFP_MAX_LATENT", "4")
    monkeypatch.setenv("VAE_TFP_MAX_JOBS", "3")
    monkeypatch.setenv("VAE_TFP_MAX_RUNS_MB", "123")
    at = app({"epochs": "50", "latent_dim": "3"})
    assert not at.exception
    note = texts(at.main.markdown)
    for line in ("trainings at once: 3", "epochs per training: 7", "latent dimension: 4", "disk for runs: 123 MB"):
        assert line in note, line
    assert "Shared server" in texts(at.main.caption)
    assert at.sidebar.number_input(key="w_epochs").max == 7 and at.sidebar.number_input(key="w_latent_dim").max == 4
    assert "epochs=50 is over this server's limit of 7; using 7" in texts(at.main.warning)
    assert at.sidebar.number_input(key="w_latent_dim").value == 3
    assert "This server allows at most 7" in at.sidebar.number_input(key="w_epochs").help


def test_a_bad_space_key_gets_a_new_space_and_a_bad_setting_is_named(server, monkeypatch):
    monkeypatch.setenv("VAE_TFP_MAX_EPOCHS", "many")
    at = app({"space": "../../etc"})
    assert not at.exception
    assert "space key in this address is not valid" in texts(at.main.warning)
    assert "VAE_TFP_MAX_EPOCHS='many' is not a whole number" in texts(at.main.warning)
    assert at.query_params["space"] != "../../etc" and len(at.query_params["space"]) == 32
