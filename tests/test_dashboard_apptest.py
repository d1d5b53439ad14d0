"""The dashboard under streamlit.testing.v1.AppTest: every view runs without an exception, sidebar changes reach the
config and the URL, a short training fills the curve and the images, Stop keeps the model and Resume continues,
sessions are isolated, and bad links and bad uploads give a message instead of a traceback.

Jobs train inside submit() here (env VAE_TFP_DASHBOARD_SYNC=1: the dashboard's InlineBackend, no processes), so
every step is deterministic, unless a test needs the real worker processes (the LocalBackend, as the server runs
it; each wait bounded); every run goes to a temporary runs folder (VAE_TFP_RUNS).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import open_tab
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
LABELS = ("Training", "Reconstructions", "Prior vs posterior", "What is p(x)?", "Latent space", "Compare runs")


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    return tmp_path / "runs"


def app(query=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def show(at: AppTest, label: str) -> AppTest:
    at.session_state["view"] = label
    return at.run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts(at: AppTest) -> list[dict]:
    """The Plotly figures of the open view."""
    return [json.loads(c.proto.spec) for c in open_tab(at).get("plotly_chart")]


def traces(at: AppTest) -> list[dict]:
    return [t for spec in charts(at) for t in spec["data"]]


def grid_images(at: AppTest) -> int:
    """How many images the open view's image grids show (`figures.image_grid`: one heatmap per grid, the count in
    its layout.meta)."""
    return sum((spec["layout"].get("meta") or {}).get("images", 0) for spec in charts(at))


def ys(trace):
    """A trace's y values (Plotly sends numeric arrays base64-encoded: {"dtype", "bdata"})."""
    import base64

    import numpy as np

    y = trace["y"]
    return np.frombuffer(base64.b64decode(y["bdata"]), y["dtype"]) if isinstance(y, dict) else np.asarray(y)


def train(at: AppTest, epochs=2, batch=256, **choices) -> AppTest:
    for key, value in choices.items():
        at.sidebar.selectbox(key=f"w_{key}").select(value).run()
    at.sidebar.number_input(key="w_epochs").set_value(epochs)
    at.sidebar.number_input(key="w_batch_size").set_value(batch)
    return at.sidebar.button(key="train_button").click().run()


def finished(at: AppTest) -> bool:
    """The sidebar says how the session's last training ended (what a person sees)."""
    return "Last training:" in texts(at.sidebar.caption)


def wait_until_finished(at: AppTest, timeout=300) -> AppTest:
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        if finished(at):
            return at.run()
        time.sleep(0.5)
    raise AssertionError(f"training did not finish in {timeout} s")


def memory(at: AppTest):
    """The session's memory (dashboard.state.SessionMemory): the loaded model, the memo."""
    return at.session_state["session_memory"]()


def run_status(runs: Path, timeout=300, until=lambda status: True):
    """The job status the worker writes into the (only) run directory, once `until(status)` holds."""
    from vae_tfp.jobs import read_status

    end = time.time() + timeout
    while time.time() < end:
        dirs = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
        status = read_status(dirs[0]) if len(dirs) == 1 else None
        if status is not None and until(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"no run in {runs} reached the expected state within {timeout} s")


def test_first_paint_needs_no_tensorflow(tmp_path):
    """Title, sidebar, explanation and the data preview come up with TensorFlow made unimportable."""
    script = f"""
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=60).run()
assert not at.exception, at.exception
assert "variational autoencoders" in at.title[0].value
assert at.sidebar.selectbox(key="w_likelihood").value == "bernoulli"
assert any("binarized" in i.value for i in at.sidebar.info)
assert len(at.get("plotly_chart")) == 1  # the data preview
print("FIRST PAINT OK")
"""
    env = {"VAE_TFP_RUNS": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(APP).parents[1]),
           "VAE_TFP_DASHBOARD_SYNC": "1"}  # no worker processes either
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert "FIRST PAINT OK" in out.stdout, out.stdout + out.stderr


def test_every_view_without_a_model_says_what_to_do(runs):
    at = app()
    for label in LABELS:
        show(at, label)
        assert not at.exception
        assert open_tab(at).label == label
        assert "Train" in texts(at.main.info) or "No saved runs" in texts(at.main.info)


def test_sidebar_changes_reach_the_config_and_the_link(runs):
    at = app()
    assert any("17 grey levels" in i.value and "continuous_bernoulli" in i.value for i in at.sidebar.info)
    at.sidebar.selectbox(key="w_likelihood").select("gaussian").run()
    at.sidebar.number_input(key="w_sigma").set_value(0.25).run()
    at.sidebar.number_input(key="w_latent_dim").set_value(3).run()
    at.sidebar.text_input(key="w_hidden").input("64, 32").run()
    assert not at.exception
    assert dict(at.query_params) == {"likelihood": "gaussian", "sigma": "0.25", "latent_dim": "3", "hidden": "64,32"}
    assert "density" in texts(at.sidebar.info)  # gaussian on pixels: a density, not comparable
    at.sidebar.selectbox(key="w_likelihood").select("bernoulli").run()
    assert at.sidebar.selectbox(key="w_binarization").value == "dynamic"


def test_a_misfit_is_explained_and_blocks_training(runs):
    at = app()
    at.sidebar.selectbox(key="w_dataset").select("two_moons").run()
    assert at.sidebar.selectbox(key="w_likelihood").value == "gaussian"  # the data set's suggestion fits it
    assert at.sidebar.number_input(key="w_epochs").value == 60
    at.sidebar.selectbox(key="w_likelihood").select("bernoulli").run()
    assert "Only likelihoods with the 'real' representation" in texts(at.sidebar.error)
    assert at.sidebar.button(key="train_button").disabled
    at.sidebar.selectbox(key="w_likelihood").select("gaussian").run()
    assert not at.sidebar.error and not at.sidebar.button(key="train_button").disabled
    at.sidebar.selectbox(key="w_network").select("conv").run()
    assert "conv networks need images" in texts(at.sidebar.error)
    at.sidebar.selectbox(key="w_dataset").select("digits").run()  # back: the image settings return
    assert at.sidebar.selectbox(key="w_likelihood").value == "bernoulli"
    assert at.sidebar.selectbox(key="w_network").value == "mlp" and at.sidebar.number_input(key="w_epochs").value == 300


def test_a_link_opens_the_same_setup(runs):
    at = app({"likelihood": "categorical", "latent_dim": "4", "epochs": "3", "hidden": "32"})
    assert not at.exception and not at.main.warning
    assert at.sidebar.selectbox(key="w_likelihood").value == "categorical"
    assert at.sidebar.number_input(key="w_latent_dim").value == 4
    assert at.sidebar.number_input(key="w_epochs").value == 3
    assert at.sidebar.text_input(key="w_hidden").value == "32"


def test_bad_link_parameters_give_messages_not_tracebacks(runs):
    at = app({"likelihood": "poisson", "latent_dim": "999", "beta": "abc", "colour": "red", "run": "ghost",
              "view": "Nope", "img": "-3", "dataset": "../../etc/passwd.npz"})
    assert not at.exception
    warning = texts(at.main.warning)
    for key in ("likelihood='poisson'", "latent_dim", "beta='abc'", "'colour'", "run='ghost'", "view='Nope'",
                "img='-3'", "dataset='../../etc/passwd.npz'"):
        assert key in warning, key
    assert at.sidebar.selectbox(key="w_likelihood").value == "bernoulli"
    assert at.sidebar.number_input(key="w_latent_dim").value == 2
    at.button(key="dismiss_link_warnings").click().run()
    assert not at.main.warning


def test_a_short_training_fills_the_curve_and_every_view(runs):
    at = app()
    at.sidebar.number_input(key="w_eval_every").set_value(1)
    at = train(at, epochs=2, likelihood="gaussian")
    assert not at.exception
    assert "Last training: **completed**" in texts(at.sidebar.caption)
    names = {t.get("name") for t in traces(at)}
    assert {"ELBO (train)", "ELBO (test)", "E_q[log p(x|z)] (test)", "KL (test)"} <= names
    curve = [t for t in traces(at) if t.get("name") == "ELBO (test)"][0]
    assert len(ys(curve)) == 2  # one test evaluation per epoch: the 2 epochs set just before pressing Train
    assert at.query_params["run"] == at.session_state["picked_run"]

    show(at, "Reconstructions")
    assert grid_images(at) == 18  # 6 test images x (x, E[x|z], x' ~ p(x|z))
    assert "visibly noisy" in texts(at.markdown)
    show(at, "Prior vs posterior")
    assert not at.exception and any(t["type"] == "contour" for t in traces(at))
    show(at, "What is p(x)?")
    assert not at.exception and "log p(x) (quadrature)" in [m.label for m in at.metric]
    show(at, "Latent space")
    assert not at.exception and len(charts(at)) >= 3
    show(at, "Compare runs")
    assert not at.exception and len(at.dataframe) == 1

    # view widgets neither retrain nor retrace: same job, same compiled log-weight function
    show(at, "What is p(x)?")
    model = memory(at).loaded["model"]  # loaded from the run directory the job wrote
    traced = model._eval_log_weights.experimental_get_tracing_count()
    job = at.session_state["job_id"]
    for i in (1, 2, 1, 3):
        at.number_input(key="img").set_value(i).run()
    assert at.session_state["job_id"] == job and len(list(runs.iterdir())) == 1
    assert memory(at).loaded["model"] is model
    assert model._eval_log_weights.experimental_get_tracing_count() == traced
    from dashboard.state import MEMO_SIZE

    for i in range(4, 4 + MEMO_SIZE // 4):  # results and figures of many inputs: the memo stays bounded
        at.number_input(key="img").set_value(i).run()
    assert not at.exception and len(memory(at).memo) <= MEMO_SIZE


def drawn(at: AppTest) -> list[str]:
    """The view tabs that hold something (the open one, and the views drawn hidden beside it)."""
    return [t.label for t in at.tabs if len(t.children)]


def test_views_seen_before_stay_drawn_until_the_model_or_the_image_changes(runs):
    at = train(app(), epochs=1)
    assert drawn(at) == ["Training"]
    for label in ("Reconstructions", "What is p(x)?", "Prior vs posterior"):
        show(at, label)
    assert not at.exception
    assert drawn(at) == ["Training", "Reconstructions", "Prior vs posterior", "What is p(x)?"]
    assert open_tab(at).label == "Prior vs posterior"
    # the hidden views are whole: their figures and their numbers, for the same model
    hidden = {t.label: t for t in at.tabs}
    assert hidden["What is p(x)?"].get("plotly_chart") and hidden["Reconstructions"].get("plotly_chart")
    assert "log p(x) (quadrature)" in [m.label for m in hidden["What is p(x)?"].metric]
    # the shared test image: one widget in the open view, a copy with its value in each hidden view
    show(at, "What is p(x)?")
    at.number_input(key="img").set_value(3).run()
    assert not at.exception and drawn(at) == ["What is p(x)?"]  # another image: the others are drawn afresh
    show(at, "Reconstructions")
    copies = [w for w in at.tabs[LABELS.index("What is p(x)?")].number_input if w.key.startswith("img:")]
    assert [w.value for w in copies] == [3] and at.number_input(key="img").value == 3
    assert drawn(at) == ["Reconstructions", "What is p(x)?"]
    # another model: only the open view is drawn for it
    at = train(at, epochs=1)
    assert not at.exception and drawn(at) == ["Reconstructions"]


def test_stop_keeps_the_model_and_resume_continues(runs, monkeypatch):
    """Through the real worker processes: Stop reaches across the process boundary and keeps the model, Resume
    continues the same run from its checkpoint."""
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "0")  # the LocalBackend: worker processes
    at = train(app(), epochs=400)
    assert not at.exception
    assert "the live progress is on the page" in texts(at.sidebar.caption)
    run_status(runs, until=lambda s: s.step >= 20)  # the worker is training (written into the run directory)
    at.sidebar.button(key="stop_button").click().run()
    at = wait_until_finished(at)
    snap = run_status(runs, until=lambda s: s.finished)
    assert snap.state == "stopped" and 20 <= snap.step < snap.total_steps
    assert "Last training: **stopped**" in texts(at.sidebar.caption)
    show(at, "Reconstructions")
    assert not at.exception and grid_images(at) == 18

    resume = at.sidebar.button(key="resume_button")
    assert not resume.disabled
    resume.click().run()
    assert not at.exception and not at.main.error
    run_status(runs, until=lambda s: s.job_id != snap.job_id and s.step > snap.step)  # the same run, trained on
    at.sidebar.button(key="stop_button").click().run()
    at = wait_until_finished(at)
    again = run_status(runs, until=lambda s: s.finished and s.job_id != snap.job_id)
    assert again.kind == "resume" and again.state == "stopped" and again.run_dir == snap.run_dir
    assert again.step > snap.step  # it trained on from the checkpoint


def test_two_sessions_training_at_once_do_not_share_models(runs, monkeypatch):
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "0")
    a = train(app(), epochs=3)
    b = train(app(), epochs=3, likelihood="continuous_bernoulli")
    a, b = wait_until_finished(a), wait_until_finished(b)
    assert a.session_state["job_id"] != b.session_state["job_id"]
    assert "Last training: **completed**" in texts(a.sidebar.caption)
    assert "Last training: **completed**" in texts(b.sidebar.caption)
    assert a.session_state["picked_run"] != b.session_state["picked_run"]
    assert a.session_state["picked_run"].startswith("digits-bernoulli")
    assert b.session_state["picked_run"].startswith("digits-continuous_bernoulli")
    show(a, "Reconstructions"), show(b, "Reconstructions")
    assert memory(a).loaded["model"] is not memory(b).loaded["model"]
    assert memory(a).loaded["key"][0] != memory(b).loaded["key"][0]
    fresh = app()  # a third session sees the saved runs in the picker but has no model of its own
    assert fresh.session_state["job_id"] is None and "No model yet" in texts(fresh.main.info)


def test_a_queued_training_says_so_and_starts_when_the_worker_is_free(runs, monkeypatch):
    """One worker: a second session's Train waits in the queue, and its page says so (the sidebar, the Training
    view); when the first training is stopped the queued one starts and completes."""
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "0")
    monkeypatch.setenv("VAE_TFP_MAX_JOBS", "1")
    a = train(app(), epochs=10_000)  # far longer than the test: it holds the one worker until stopped
    b = train(app(), epochs=2)
    assert "Waiting in the queue (position" in texts(b.sidebar.caption)
    assert "Waiting in the queue: the curve appears" in texts(b.main.info)
    a.sidebar.button(key="stop_button").click().run()
    a, b = wait_until_finished(a), wait_until_finished(b)
    assert "Last training: **stopped**" in texts(a.sidebar.caption)
    assert "Last training: **completed**" in texts(b.sidebar.caption)


def test_uploads_good_and_bad(runs, tmp_path):
    at = train(app(), epochs=1)
    from vae_tfp.runs import get_run
    from vae_tfp.sharing import export_bundle

    bundle = export_bundle(get_run(at.session_state["picked_run"], runs))
    fresh = app()
    for name, data, words in (("bad.zip", b"definitely not a zip", "not a zip file"),
                              ("evil.zip", bundle.replace(b"config.json", b"config.jsox"), "not a run bundle")):
        fresh.sidebar.file_uploader(key="bundle_upload").set_value((name, data, "application/zip")).run()
        assert not fresh.exception
        assert words in texts(fresh.main.error), texts(fresh.main.error)
    fresh.sidebar.file_uploader(key="bundle_upload").set_value(("shared.zip", bundle, "application/zip")).run()
    assert not fresh.exception and "Opened **shared.zip**" in texts(fresh.main.success)
    assert fresh.session_state["picked_run"] == "shared"
    show(fresh, "Reconstructions")
    assert grid_images(fresh) == 18
    linked = app({"run": "shared", "view": "What is p(x)?"})  # a link to a saved run opens it in that view
    assert not linked.exception and not linked.main.warning and open_tab(linked).label == "What is p(x)?"
    assert "log p(x) (quadrature)" in [m.label for m in linked.metric]


def test_point_data_and_the_exact_linear_gaussian_log_px(runs):
    at = app({"dataset": "linear_gaussian", "likelihood": "gaussian", "network": "linear", "sigma": "0.5"})
    at = train(at, epochs=1)
    assert not at.exception and "Last training: **completed**" in texts(at.sidebar.caption)
    show(at, "What is p(x)?")
    assert not at.exception and "log p(x) (exact)" in [m.label for m in at.metric]
    assert "exact: the model is linear-Gaussian" in texts(at.markdown)
    for label in LABELS:
        show(at, label)
        assert not at.exception, label
    show(at, "Reconstructions")
    assert {"E[x|z] (decoder output)", "x' ~ p(x|z) (sample)"} <= {t.get("name") for t in traces(at)}
    at.sidebar.selectbox(key="w_dataset").select("two_moons").run()
    at.sidebar.selectbox(key="w_network").select("mlp").run()
    at = train(at, epochs=1)
    show(at, "Latent space")
    assert not at.exception and "z1 fixed" in {t.get("name") for t in traces(at)}  # the decoded latent grid


def test_categorical_on_fashion_mnist_explains_the_256_levels(runs):
    at = app()
    if "fashion_mnist" not in at.sidebar.selectbox(key="w_dataset").options:
        pytest.skip("fashion_mnist is not installed here")
    at.sidebar.selectbox(key="w_dataset").select("fashion_mnist").run()
    at.sidebar.selectbox(key="w_likelihood").select("categorical").run()
    assert "256 grey levels" in texts(at.sidebar.info) and "256 decoder outputs per pixel" in texts(at.sidebar.info)


def test_streamlit_rerun_cleanup_no_longer_resets_keras():
    """Streamlit calls keras.backend.clear_session() after every run; the dashboard keeps Keras' state instead."""
    import keras

    from dashboard.keras_state import keep_keras_state

    keep_keras_state()
    keep_keras_state()  # idempotent

    def _clean_problem_modules():  # the name of Streamlit's cleanup function
        keras.backend.clear_session()

    keras.layers.Dense(1)
    before = keras.layers.Dense(1).name
    _clean_problem_modules()
    assert keras.layers.Dense(1).name != "dense"  # the name counter survived
    keras.backend.clear_session()  # anyone else still gets the real clear_session
    assert keras.layers.Dense(1).name == "dense" and before != "dense"


# --- widgets generated from the config's field metadata ------------------------------------------------------------
def _find_widget(pages, name):
    """The sidebar widget of a RunConfig field on the first page that shows it (some apply only sometimes)."""
    for at in pages:
        for kind in ("number_input", "selectbox", "text_input"):
            try:
                return kind, getattr(at.sidebar, kind)(key=f"w_{name}")
            except KeyError:
                continue
    raise AssertionError(f"no sidebar widget for the config field {name!r}")


def test_every_config_field_has_its_sidebar_widget_with_the_config_metadata(runs):
    from vae_tfp import config as C
    from vae_tfp.presets import suggested

    start = suggested("digits").to_dict()  # the page starts from what the default data set suggests

    pages = [app(), app({"likelihood": "gaussian", "prior": "mixture"})]  # sigma and the mixture's K apply there
    assert not any(at.exception for at in pages)
    for name, setting in C.SETTINGS.items():
        kind, widget = _find_widget(pages, name)
        assert widget.label == setting.label and setting.help in widget.help, name
        if C.kind(name) in ("int", "float"):
            assert kind == "number_input" and (widget.min, widget.max) == setting.ui, name
            assert widget.step == pytest.approx(setting.step) and widget.value == start[name], name
        elif C.kind(name) == "choice":
            words = setting.choices if setting.show_words else {n: n for n in setting.choices}
            assert kind == "selectbox" and widget.options == [words[n] for n in setting.choices], name
            assert widget.value == start[name], name
        elif name == "dataset":
            assert kind == "selectbox" and widget.value == start[name] and "digits" in widget.options
        else:
            assert kind == "text_input" and widget.value == ",".join(map(str, start[name])), name
    assert "w_sigma" not in [w.key for w in pages[0].sidebar.number_input]  # bernoulli: no sigma to set


def test_a_link_to_a_model_over_the_budget_keeps_train_off_and_says_why(runs):
    from vae_tfp import budget

    at = app({"hidden": ",".join(["16384"] * 8)})
    assert not at.exception and at.sidebar.text_input(key="w_hidden").value == ",".join(["16384"] * 8)
    error = texts(at.sidebar.error)
    assert "too large to train here" in error and f"the limit is {budget.MAX_PARAMETERS:,}" in error
    assert at.sidebar.button(key="train_button").disabled
    at.sidebar.text_input(key="w_hidden").input("64").run()  # a sensible width: Train comes back
    assert not at.sidebar.error and not at.sidebar.button(key="train_button").disabled


def test_values_the_config_allows_but_the_widgets_do_not_offer_are_named(runs):
    at = app({"latent_dim": "128", "iwae_k": "500", "epochs": "3"})
    assert not at.exception
    warning = texts(at.main.warning)
    assert "latent_dim=128 is outside what the dashboard offers ([1, 64])" in warning
    assert "iwae_k=500 is outside what the dashboard offers ([1, 100])" in warning
    assert at.sidebar.number_input(key="w_latent_dim").value == 2 and at.sidebar.number_input(key="w_epochs").value == 3

    from vae_tfp.config import RunConfig
    from vae_tfp.runs import create_run

    create_run(RunConfig(latent_dim=200, epochs=1), runs, "wide")  # e.g. trained from the command line
    at = app({"run": "wide"})
    at.sidebar.button(key="use_settings").click().run()
    assert not at.exception and "Saved-run parameter latent_dim=200" in texts(at.main.warning)
    assert at.sidebar.number_input(key="w_latent_dim").value == 2 and at.sidebar.number_input(key="w_epochs").value == 1


def test_a_run_written_by_an_older_main_opens_in_every_view(runs):
    """The run folder main wrote at 77373d8 (distortion/rate, 0600 JSON files) opens: curves and test terms in the
    current names, every view without an exception."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parent / "data" / "run-77373d8-stopped", runs / "old-run")
    at = app({"run": "old-run", "view": "Training"})
    assert not at.exception and at.session_state["picked_run"] == "old-run"
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["test E_q[log p(x|z)]"]) < 0 and float(metrics["test KL(q||p)"]) > 0
    curves = {t["name"]: ys(t) for t in traces(at)}
    assert len(curves["E_q[log p(x|z)] (train)"]) == 7 and curves["E_q[log p(x|z)] (train)"].max() < 0
    assert curves["KL (train)"].min() > 0
    for label in LABELS:
        show(at, label)
        assert not at.exception, label
