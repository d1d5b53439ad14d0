"""Presets and the settings each data set suggests: every suggestion fits its data and the budget, links start from
the same suggestion (a link gives back its config), the linear-Gaussian suggestion learns the known truth, and one
click on a lesson fills the sidebar and opens its view."""

import numpy as np
import pytest

from vae_tfp import budget, presets, sharing
from vae_tfp.config import RunConfig
from vae_tfp.datasets.registry import DATASETS
from vae_tfp.explain.advice import fit_report


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_data_sets_suggestion_fits_it(name):
    from vae_tfp.data import load

    config = presets.suggested(name)
    assert config.dataset == name
    info = DATASETS[name]
    if not info.available(None):
        pytest.skip(f"{name} is not available offline here")
    level, message, _ = fit_report(load(name), config.likelihood, config.binarization)
    assert level != "error", message
    if info.kind == "points":
        assert config.likelihood == "gaussian"
    for key, value in info.defaults.items():
        assert getattr(config, key) == value


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_is_a_valid_setup_a_link_and_a_view(name):
    from dashboard.views import LABELS

    preset = presets.get(name)
    config = presets.preset_config(name)
    assert preset.view in LABELS and preset.title and preset.lesson
    assert budget.estimate(config, (8, 8) if preset.dataset == "digits" else (2,)).problem() in ("", None)
    query = presets.preset_query(name)
    assert query.pop("view") == preset.view and query.pop("lesson") == name
    back, warnings = sharing.config_from_query(query)
    assert warnings == [] and back == config


@pytest.mark.parametrize("config", [
    RunConfig(), RunConfig(epochs=20, eval_every=1), RunConfig(dataset="two_moons", likelihood="gaussian", sigma=0.2),
    RunConfig(dataset="linear_gaussian", likelihood="gaussian", network="linear", latent_dim=3),
    RunConfig(dataset="fashion_mnist", latent_dim=16, hidden=(512, 256)),
])
def test_a_link_gives_back_its_config(config):
    query = sharing.config_to_query(config)
    back, warnings = sharing.config_from_query(query)
    assert warnings == [] and back == config
    if config == presets.suggested(config.dataset) and config.dataset == "digits":
        assert query == {}  # the page's starting setup makes an empty link


def test_unknown_preset_names_what_exists():
    with pytest.raises(ValueError, match="unknown preset 'nope'; allowed: first_run"):
        presets.get("nope")


def test_the_linear_gaussian_suggestion_learns_the_known_truth():
    """linear_gaussian_2d as suggested (linear decoder, learned sigma from 1.0): its exact log p(x) reaches the true
    model's on held-out points (the misspecified fixed sigma = 0.1 was 87 nats off in 10-D)."""
    from scipy.stats import multivariate_normal

    from vae_tfp import evaluation
    from vae_tfp.datasets import builtin
    from vae_tfp.training import Trainer

    trainer = Trainer(presets.suggested("linear_gaussian_2d"))
    assert trainer.train().status == "completed"
    truth = builtin.linear_gaussian_2d_truth()
    W, b, sigma = truth["W"], truth["b"], truth["sigma"]
    x = trainer.data.x_test
    true = multivariate_normal(b, W.T @ W + sigma**2 * np.eye(2)).logpdf(x).mean()
    assert float(np.mean(evaluation.exact_log_px(trainer.model, x))) == pytest.approx(true, abs=0.05)
    # the What is p(x)? view's numbers: the truth beside the model, for the point shown and over the test points
    from vae_tfp.explain.what_is_px import data_truth

    truth = data_truth(trainer.model, "linear_gaussian_2d", x[3], x)
    assert truth.test_mean == pytest.approx(true, rel=1e-9) and abs(truth.test_gap) < 0.05
    assert truth.log_px == pytest.approx(multivariate_normal(b, W.T @ W + sigma**2 * np.eye(2)).logpdf(x[3]))
    assert data_truth(trainer.model, "digits", x[3], x) is None  # no known truth
    assert data_truth(trainer.model, "linear_gaussian", x[3], x) is None  # 10-D truth, 2-D points: not its data


def test_a_lesson_fills_the_sidebar_and_opens_its_view(tmp_path, monkeypatch):
    from test_dashboard_apptest import app, texts

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app()
    at.sidebar.selectbox(key="preset").select("collapse").run()
    assert not at.exception
    assert at.sidebar.number_input(key="w_beta").value == 4.0
    assert at.sidebar.number_input(key="w_latent_dim").value == 8
    assert at.session_state["view"] == "Training"
    assert "Posterior collapse with β = 4" in texts(at.sidebar.info)
    assert at.query_params["beta"] == "4.0" and at.query_params["latent_dim"] == "8"
    assert at.query_params["lesson"] == "collapse"


def test_a_lessons_link_opens_its_setup_view_and_words(tmp_path, monkeypatch):
    """The link a lesson writes (`presets.preset_query`) opens a fresh page with the lesson's setup, its view and its
    words; a link naming no lesson says which exist."""
    from test_dashboard_apptest import app, texts

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app(presets.preset_query("collapse"))
    assert not at.exception
    assert at.sidebar.number_input(key="w_beta").value == 4.0
    assert at.sidebar.number_input(key="w_warmup_epochs").value == 300.0
    assert at.session_state["view"] == "Training" and at.session_state["preset"] == "collapse"
    assert "Posterior collapse with β = 4" in texts(at.sidebar.info)
    at = app({"lesson": "nope"})
    assert "lesson='nope' is not a lesson; allowed: first_run" in texts(at.warning)


@pytest.mark.slow
def test_the_collapse_lesson_collapses_while_it_trains(tmp_path):
    """What the lesson says happens does: the history's diagnostics start with most of the 8 dimensions active and
    I_q(x; z) well above 0, and end, once β has reached 4, with none active, every KL per dimension near 0 and
    I_q(x; z) near 0; the same digits with β = 1 keep most dimensions active."""
    from vae_tfp.explain.curves import diagnostics
    from vae_tfp.training import RunRecorder, Trainer

    def history(config, name):
        recorder = RunRecorder(tmp_path / name, snapshots=False)
        assert Trainer(config, callbacks=[recorder]).train().status == "completed"
        return diagnostics(recorder.run.history())

    config = presets.preset_config("collapse")
    d = history(config, "collapse")
    early = int(np.argmax(d.epoch >= 20))
    assert d.active_units[early] >= 6 and d.mutual_information[early] > 2.0
    assert d.active_units[-1] == 0 and np.max(d.kl_per_dim[-1]) < 0.01 and abs(d.mutual_information[-1]) < 0.05
    used = history(config.replace(beta=1.0, warmup_epochs=0.0), "beta1")
    assert used.active_units[-1] >= 5 and used.mutual_information[-1] > 2.0


def test_the_linear_gaussian_lesson_shows_the_truth(tmp_path, monkeypatch):
    """The lesson opens What is p(x)?, and after training that view names the data's true density beside the
    model's exact log p(x)."""
    from test_dashboard_apptest import app, texts

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app()
    at.sidebar.selectbox(key="preset").select("linear_gaussian").run()
    at.sidebar.number_input(key="w_epochs").set_value(5)
    at = at.sidebar.button(key="train_button").click().run()
    assert not at.exception and at.session_state["view"] == "What is p(x)?"
    info = texts(at.info)
    assert "The data's truth" in info and "log p_true(x)" in info and "KL(p_true || p_model)" in info
