"""The density lab under AppTest: on a trained two_moons run (the truth beside the model, numbers that agree with
the library, the K slider that recomputes only p_K, the replay slider, point picking through the number inputs,
the sampling toggles), on linear_gaussian_2d (the closed-form truth), live while a run trains, and a one-line
purpose for data it cannot draw.

Training runs synchronously (VAE_TFP_DASHBOARD_SYNC=1) except in the live test; runs go to a temporary folder.
"""

import re
import time

import numpy as np
import pytest
from helpers import open_tab
from test_dashboard_apptest import app, charts, memory, run_status, show, texts, traces

from dashboard.views import lab as lab_view

LAB = "Density lab"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    return tmp_path / "runs"


def train(at, epochs: int, batch: int):
    at.sidebar.number_input(key="w_epochs").set_value(epochs).run()
    at.sidebar.number_input(key="w_batch_size").set_value(batch).run()
    return at.sidebar.button(key="train_button").click().run()


def metrics(at) -> dict:
    """The open view's metrics, label -> value."""
    return {m.label: m.value for m in open_tab(at).metric}


def table(at) -> dict:
    """The lab's named numbers (markdown lines `- name: **value** ...`), name -> value."""
    rows = {}
    for md in open_tab(at).markdown:
        for found in re.finditer(r"^- (.+?): \*\*(-?[0-9.]+)\*\*", md.value, re.M):
            rows[found.group(1)] = float(found.group(2))
    return rows


def numbers(at) -> dict:
    """The metrics' and the tables' numbers by name."""
    out = {k: float(v.split()[0]) for k, v in metrics(at).items() if re.match(r"-?[0-9.]", v or "")}
    return out | table(at)


def names(at) -> set:
    return {t.get("name") for t in traces(at)}


class loaded:  # noqa: N801 - reads like the trainer it stands for
    """The model and data the views show (loaded from the run directory into the session's memory)."""

    def __init__(self, at):
        held = memory(at).loaded
        assert held is not None, "no run is loaded"
        self.model, self.data = held["model"], held["data"]


def _first(d: dict, prefix: str) -> str:
    return next(v for k, v in d.items() if k.startswith(prefix))


def test_the_lab_on_a_trained_two_moons_run(runs, monkeypatch):
    from vae_tfp import density
    from vae_tfp.explain import lab

    at = train(app({"dataset": "two_moons", "likelihood": "gaussian"}), epochs=5, batch=500)
    assert "Last training: **completed** after 50 steps" in texts(at.sidebar.caption)
    calls = []
    original = lab.model_plane
    monkeypatch.setattr(lab, "model_plane", lambda *a, **k: calls.append(1) or original(*a, **k))

    show(at, LAB)
    assert not at.exception
    trainer = loaded(at)
    m = numbers(at)
    # the numbers are the library's: the model's held-out mean log p(x) by quadrature, the truth's, their difference
    model_mean = float(np.mean(density.log_px_at(trainer.model, trainer.data.x_test)))
    assert m[lab_view.MODEL_MEAN] == pytest.approx(model_mean, abs=2e-3)
    from vae_tfp.datasets.truth import true_density

    true_mean = float(np.mean(true_density("two_moons").log_prob(trainer.data.x_test)))
    assert m[lab_view.TRUTH_MEAN] == pytest.approx(true_mean, abs=2e-3)
    assert m[lab_view.KL_ROW] == pytest.approx(true_mean - model_mean, abs=3e-3)
    assert 0.9 < m[lab_view.MODEL_MASS] <= 1.0
    caption = texts(at.caption)
    assert "p(x) by quadrature" in caption and "The truth, exact" in caption and "numerical integration" in caption
    assert 0.99 < m[lab_view.TRUTH_MASS] <= 1.001
    heat = [t for t in traces(at) if t["type"] == "heatmap"]
    assert len(heat) >= 3  # the model, the truth, p_K (and the posteriors)
    assert {"training points", "f(z_k), z_k ~ p(z)", "x ~ p(x): z ~ p(z), then x ~ p(x|z)", "x (chosen)",
            "pick here"} <= names(at)
    spec = charts(at)[0]
    assert spec["layout"]["xaxis"]["title"]["text"] == "x1" and spec["layout"]["yaxis"]["title"]["text"] == "x2"
    assert calls == [1]

    # the K slider: p_K and its number change, p(x) over the plane is not recomputed
    error_100 = float(_first(metrics(at), "mean |log p_K(x)").split()[0])
    at.select_slider(key="lab_k").set_value(3).run()
    assert not at.exception and calls == [1]
    label = next(k for k in metrics(at) if k.startswith("mean |log p_K(x)"))
    assert label.endswith("K = 3") and float(metrics(at)[label].split()[0]) > error_100
    mix = density.mixture_density(trainer.model, 3, x=trainer.data.x_test,
                                  log_px=density.log_px_at(trainer.model, trainer.data.x_test), seed=lab.MIXTURE_SEED)
    assert float(metrics(at)[label].split()[0]) == pytest.approx(mix.mean_abs_error, abs=2e-3)
    assert "p(x|z_k) = N(f(z_k), σ²): 2σ ellipses, weight 1/3 each" in names(at)

    # point picking, the widget path (a click on the plane fills the same two inputs)
    at.number_input(key="lab_x1").set_value(1.0).run()
    at.number_input(key="lab_x2").set_value(0.0).run()
    assert not at.exception and calls == [1]
    one = density.one_point(trainer.model, np.array([1.0, 0.0]))
    m = metrics(at)
    assert float(m["log p(x) (quadrature)"]) == pytest.approx(one.log_px, abs=2e-3)
    gap, kl = float(m["gap log p(x) − ELBO"]), float(m["KL(q(z|x) || p(z|x))"])
    assert gap > 0 and kl == pytest.approx(one.kl_true_posterior, abs=2e-3)
    assert abs(gap - kl) < 0.1  # equal up to the ELBO's Monte-Carlo error
    assert [t for t in traces(at) if t.get("name") == "x (chosen)"][0]["x"] == [1.0]

    # sampling, both ways, toggled on the same axes
    at.toggle(key="lab_recon").set_value(True).run()
    assert "x' ~ p(x|z), z ~ q(z|x): reconstructions" in names(at)
    at.toggle(key="lab_samples").set_value(False).run()
    assert "x ~ p(x): z ~ p(z), then x ~ p(x|z)" not in names(at)
    assert "A reconstruction starts from a data point" in texts(at.caption)

    # the replay: every part shows the model at the chosen step
    steps = at.select_slider(key="lab_step").options
    assert steps[-1] == "50 (final)" and len(steps) >= 20
    at.select_slider(key="lab_step").set_value(2).run()
    assert not at.exception and calls == [1, 1]
    early = numbers(at)[lab_view.MODEL_MEAN]
    assert early < model_mean - 0.1  # two steps in, the model is far worse
    assert any("at step 2" in (c["layout"].get("title") or {}).get("text", "") for c in charts(at))
    at.select_slider(key="lab_step").set_value(50).run()
    assert numbers(at)[lab_view.MODEL_MEAN] == pytest.approx(model_mean, abs=2e-3)
    assert calls == [1, 1]  # the final model's plane was memoised


def test_the_lab_on_linear_gaussian_2d_shows_the_closed_form_truth(runs):
    from scipy.stats import multivariate_normal

    from vae_tfp.datasets import builtin

    at = app({"dataset": "linear_gaussian_2d", "likelihood": "gaussian", "latent_dim": "1", "network": "linear",
              "sigma_mode": "shared", "sigma": "0.3", "view": LAB})
    at = train(at, epochs=3, batch=500)
    assert not at.exception
    m = numbers(at)
    truth = builtin.linear_gaussian_2d_truth()
    W, b, sigma = np.asarray(truth["W"]), np.asarray(truth["b"]), truth["sigma"]
    x_test = loaded(at).data.x_test
    exact = multivariate_normal(b, W.T @ W + sigma**2 * np.eye(2)).logpdf(x_test).mean()
    assert m[lab_view.TRUTH_MEAN] == pytest.approx(exact, abs=2e-3)
    assert "closed form" in texts(at.caption) and "N(b, W^T W + sigma^2 I)" in texts(at.caption)
    # the model side by quadrature agrees with the linear-Gaussian model's own closed form N(b, W^T W + sigma^2 I)
    from vae_tfp import evaluation

    model = loaded(at).model
    assert evaluation.is_linear_gaussian(model)
    model_exact = float(np.mean(evaluation.exact_log_px(model, x_test)))
    assert m[lab_view.MODEL_MEAN] == pytest.approx(model_exact, abs=2e-3)
    assert m[lab_view.KL_ROW] == pytest.approx(exact - model_exact, abs=3e-3)
    assert "log p(x) (exact)" in m  # a linear-Gaussian model: log p(x) of one point in closed form
    assert len([t for t in traces(at) if t["type"] == "heatmap"]) >= 3


def test_the_lab_says_what_it_is_for_on_other_data(runs):
    at = show(app(), LAB)
    assert "No model yet" in texts(at.main.info)
    at = train(at, epochs=1, batch=500)
    show(at, LAB)
    assert not at.exception and not charts(at)
    assert "needs 2-D points" in texts(at.main.info) and "8×8 images" in texts(at.main.info)
    at = app({"dataset": "linear_gaussian", "likelihood": "gaussian", "view": LAB})
    at = train(at, epochs=1, batch=1000)
    assert not at.exception and "10-D points" in texts(at.main.info)


def _live_step(at) -> int | None:
    found = re.search(r"\*\*Live:\*\* the model at step \*\*(\d+)\*\*", texts(at.markdown))
    return int(found.group(1)) if found else None


def test_the_lab_is_live_while_training_and_replays_afterwards(runs, monkeypatch):
    """A run far longer than the test waits for: the lab must show the density at two different steps, read from
    the run's live snapshots, while it trains; after Stop it offers the replay. Each wait is for an event, bounded."""
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "0")
    at = app({"dataset": "two_moons", "likelihood": "gaussian", "view": LAB})
    at = train(at, epochs=10000, batch=500)
    seen, deadline = [], time.time() + 180
    while time.time() < deadline and len(set(seen)) < 2:
        at.run()
        assert not at.exception
        step = _live_step(at)
        if step is not None:
            seen.append(step)
            assert any(t["type"] == "heatmap" for t in traces(at))
            assert lab_view.MODEL_MEAN in table(at)
        time.sleep(0.5)
    at.sidebar.button(key="stop_button").click().run()
    assert len(set(seen)) >= 2 and sorted(seen) == seen, seen  # the picture moved on with training
    assert run_status(runs, timeout=120, until=lambda status: status.finished).state == "stopped"
    at.run()
    assert _live_step(at) is None
    steps = at.select_slider(key="lab_step").options
    assert len(steps) >= 2 and steps[-1].endswith("(final)")
    assert lab_view.MODEL_MEAN in table(at)
