"""vae_tfp.explain: the numbers behind the dashboard's views, checked against closed forms and their definitions,
and the data-fit advice for each likelihood."""

import numpy as np
import pytest
from helpers import linear_gaussian_vae, random_linear_model

from vae_tfp import families
from vae_tfp.config import RunConfig
from vae_tfp.evaluation import exact_log_px, kl_to_exact_posterior
from vae_tfp.explain import compare, curves, latent, prior_posterior, reconstructions, what_is_px
from vae_tfp.explain.advice import fit_report
from vae_tfp.explain.data import prepared_data
from vae_tfp.model import VAE


@pytest.fixture
def lg(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=6, sigma=0.5)
    model = linear_gaussian_vae(W, b, sigma)
    x = (rng.normal(size=(40, 2)) @ W + b + sigma * rng.normal(size=(40, 6))).astype(np.float32)
    return model, x


def test_what_is_px_gap_is_kl_to_the_true_posterior_on_a_linear_gaussian_model(lg):
    model, x = lg
    w = what_is_px.what_is_px(model, x[0], ks=(1, 10, 100, 1000, 5000), elbo_samples=40_000)
    assert w.method == "exact"
    assert w.log_px == pytest.approx(float(exact_log_px(model, x[:1])[0]), abs=1e-6)
    assert w.kl_true_posterior == pytest.approx(float(kl_to_exact_posterior(model, x[:1])[0]))
    assert w.gap > 0  # q is 1.2x too wide: the ELBO is strictly below log p(x)
    assert w.gap == pytest.approx(w.kl_true_posterior, abs=0.03)  # log p(x) - ELBO = KL(q(z|x) || p(z|x))
    assert w.elbo == pytest.approx(w.reconstruction - w.kl)
    assert w.kl == pytest.approx(float(model.encode(x[:1]).kl_divergence(model.prior_distribution())[0]), rel=1e-5)
    assert w.iwae[0] == pytest.approx(w.elbo, abs=0.05)  # IWAE_1 is the ELBO
    assert w.elbo < w.iwae[-1] <= w.log_px + 0.02  # and IWAE_k climbs towards log p(x)
    assert np.all(np.diff(w.iwae) > -0.02)
    pic = w.picture  # the grid pictures normalised densities over a box around both posteriors
    cell = (pic.axes[0][1] - pic.axes[0][0]) * (pic.axes[1][1] - pic.axes[1][0])
    assert np.exp(pic.log_true).sum() * cell == pytest.approx(1.0, abs=0.01)
    assert np.exp(pic.log_q).sum() * cell == pytest.approx(1.0, abs=0.01)


def test_what_is_px_by_quadrature_agrees_with_its_own_grid_kl(rng):
    model = VAE((6,), latent_dim=2, likelihood="gaussian", network="mlp", hidden=(16,), sigma=0.5)
    x1 = rng.normal(size=6).astype(np.float32)
    w = what_is_px.what_is_px(model, x1, ks=(1, 100, 2000))
    assert w.method == "quadrature" and w.picture is not None
    assert w.gap == pytest.approx(w.kl_true_posterior, abs=0.05)
    assert w.elbo < w.iwae[-1] <= w.log_px + 0.05


def test_what_is_px_without_log_px_for_a_large_latent(rng):
    model = VAE((6,), latent_dim=3, likelihood="gaussian", network="mlp", hidden=(16,))
    w = what_is_px.what_is_px(model, rng.normal(size=6).astype(np.float32), ks=(1, 10, 100))
    assert w.log_px is None and w.gap is None and w.picture is None and w.method == "none"
    assert w.ks.tolist() == [1, 10, 100] and w.iwae.shape == (3,)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "categorical",
                                        "discretized_logistic"])
def test_reconstruction_shapes_and_sample_support(rng, likelihood):
    levels = 5 if families.likelihoods.get(likelihood).representation == "levels" else None
    model = VAE((4, 3), latent_dim=2, likelihood=likelihood, levels=levels, hidden=(8,))
    support = families.likelihoods.get(likelihood).representation
    x = {"binary": rng.integers(0, 2, (5, 4, 3)), "unit": rng.random((5, 4, 3)), "real": rng.normal(size=(5, 4, 3)),
         "levels": rng.integers(0, 5, (5, 4, 3))}[support].astype(np.float32)
    r = reconstructions.reconstructions(model, x, seed=3)
    assert r.x.shape == r.mean.shape == r.sample.shape == (5, 4, 3)
    assert r.z.shape == (5, 2) and r.log_px_given_z.shape == (5,)
    assert np.all(np.isfinite(r.log_px_given_z))
    if support == "binary":
        assert set(np.unique(r.sample)) <= {0.0, 1.0}
        assert np.all((r.mean > 0) & (r.mean < 1))  # the decoder's output is a probability, not a pixel
    elif support == "unit":
        assert np.all((r.sample >= 0) & (r.sample <= 1))
    elif support == "levels":
        assert np.all(r.sample == np.round(r.sample)) and r.sample.min() >= 0 and r.sample.max() <= 4
    # the same seed gives the same pictures (stateless sampling), another seed other samples
    again = reconstructions.reconstructions(model, x, seed=3)
    np.testing.assert_array_equal(again.sample, r.sample)


def test_gaussian_sample_is_mean_plus_noise_of_sigma(rng):
    model = VAE((400,), latent_dim=2, likelihood="gaussian", sigma=0.3, hidden=(8,))
    r = reconstructions.reconstructions(model, rng.random((3, 400)).astype(np.float32))
    assert np.std(r.sample - r.mean) == pytest.approx(0.3, rel=0.1)  # visibly noisy


def test_prior_decodes_sample_the_prior(rng):
    model = VAE((5,), latent_dim=3, likelihood="gaussian", hidden=(8,))
    d = prior_posterior.prior_decodes(model, 4000, seed=1)
    assert d.z.shape == (4000, 3) and d.mean.shape == d.sample.shape == (4000, 5)
    np.testing.assert_allclose(d.z.mean(0), 0, atol=0.06)
    np.testing.assert_allclose(d.z.std(0), 1, atol=0.06)


def test_interpolation_endpoints_are_the_encoded_means(lg):
    model, x = lg
    path = latent.interpolation(model, x[0], x[1], steps=5)
    mu = model.encode(x[:2]).mean().numpy()
    np.testing.assert_allclose(path.z[0], mu[0], atol=1e-6)
    np.testing.assert_allclose(path.z[-1], mu[1], atol=1e-6)
    np.testing.assert_allclose(path.z[2], mu.mean(0), atol=1e-5)  # the midpoint
    np.testing.assert_allclose(path.means, model.decoder_mean(path.z).numpy(), atol=1e-6)
    assert path.t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_traversal_moves_one_dimension_only(lg):
    model, x = lg
    path = latent.traversal(model, x[3], dim=1, values=[-2, 0, 2])
    mu = model.encode(x[3:4]).mean().numpy()[0]
    np.testing.assert_allclose(path.z[:, 0], mu[0])
    np.testing.assert_allclose(path.z[:, 1], [-2, 0, 2])
    with pytest.raises(ValueError, match="dim must lie in"):
        latent.traversal(model, x[3], dim=2, values=[0])


def test_latent_grid_decodes_a_plane(rng):
    model = VAE((4, 4), latent_dim=2, likelihood="bernoulli", hidden=(8,))
    g = latent.latent_grid(model, size=5, reach=2.0)
    assert g.means.shape == (5, 5, 4, 4)
    np.testing.assert_allclose(g.axes[0], np.linspace(-2, 2, 5), atol=1e-6)
    z = np.array([g.axes[0][1], g.axes[1][3]], np.float32)[None]
    np.testing.assert_allclose(g.means[1, 3], model.decoder_mean(z).numpy()[0], atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim == 2"):
        latent.latent_grid(VAE((4,), latent_dim=3, likelihood="gaussian"))


def test_latent_scatter_over_the_prior_density(lg):
    model, x = lg
    s = prior_posterior.latent_scatter(model, x, labels=np.arange(len(x)) % 3, dims=(1, 0), grid=30)
    np.testing.assert_allclose(s.means, model.encode(x).mean().numpy()[:, [1, 0]], atol=1e-6)
    assert s.prior_density.shape == (30, 30)
    cell = (s.axes[0][1] - s.axes[0][0]) * (s.axes[1][1] - s.axes[1][0])
    assert s.prior_density.sum() * cell == pytest.approx(1.0, abs=0.05)  # N(0, I) on a box holding its mass


def test_mixture_prior_aggregate_histograms(rng):
    model = VAE((5,), latent_dim=3, likelihood="gaussian", prior="mixture", prior_components=4, hidden=(8,))
    agg = prior_posterior.aggregate_posterior(model, rng.normal(size=(300, 5)).astype(np.float32), bins=20)
    assert agg.density.shape == (3, 20) and agg.prior_pdf.shape == (3, 200)
    widths = np.diff(agg.edges, axis=1)
    np.testing.assert_allclose((agg.density * widths).sum(1), 1.0, atol=1e-6)  # histograms are densities
    np.testing.assert_allclose(np.trapezoid(agg.prior_pdf, agg.grid, axis=1), 1.0, atol=0.02)


def test_latent_usage_finds_the_unused_dimension(rng):
    W = np.array([[2.0, 0, 0, 0], [0, 0, 0, 0]])
    model = linear_gaussian_vae(W, np.zeros(4), 0.5)
    x = (rng.normal(size=(300, 2)) @ W + 0.5 * rng.normal(size=(300, 4))).astype(np.float32)
    u = prior_posterior.latent_usage(model, x)
    assert u.active.tolist() == [True, False] and u.n_active == 1
    assert u.kl_per_dim[0] > u.kl_per_dim[1]


def test_history_curves_and_comparability():
    records = [{"kind": "train", "step": 5, "epoch": 0, "elbo": -50, "reconstruction": -45, "kl": 5, "loss": 50},
               {"kind": "test", "step": 10, "epoch": 1, "elbo": -48, "reconstruction": -44, "kl": 4},
               {"kind": "train", "step": 15, "epoch": 1, "elbo": -46, "reconstruction": -42, "kl": 4, "loss": 46}]
    c = curves.history_curves(records)
    assert c.train["reconstruction"].tolist() == [-45, -42] and c.test["kl"].tolist() == [4]
    assert c.train["elbo"].tolist() == [-50, -46] and c.test["step"].tolist() == [10]
    assert c.train["epochs"].tolist() == [0.5, 1.5]  # steps over the steps per epoch seen at test time
    base = {"dataset": "digits", "levels": None, "binarization": None}
    same = [dict(base, name="a", representation="unit"), dict(base, name="b", representation="unit")]
    assert compare.comparability_note(same) is None
    mixed = same + [dict(base, name="c", representation="binary", binarization="dynamic"),
                    dict(base, name="d", representation="levels", levels=17)]
    note = compare.comparability_note(mixed)
    assert "not comparable" in note and "c: digits as binarized" in note and "17 levels" in note


def test_run_summary_reads_the_terms_under_their_names(tmp_path):
    from vae_tfp.runs import create_run

    run = create_run(RunConfig(likelihood="gaussian", latent_dim=3), tmp_path, "r")
    run.update_metrics(status="completed", epochs=4, test_elbo=-40.0, log_px=-38.5,
                       test={"elbo": -40.0, "reconstruction": -37.0, "kl": 3.0})
    s = compare.run_summary(run)
    assert (s["test_elbo"], s["test_reconstruction"], s["test_kl"]) == (-40.0, -37.0, 3.0)  # no sign flips
    assert s["likelihood"] == "gaussian" and s["latent_dim"] == 3 and s["binarization"] is None
    assert s["status"] == "completed" and s["log_px"] == -38.5 and s["representation"] is None  # no data.json yet


def test_prepared_data_matches_the_trainer():
    dataset, data = prepared_data(RunConfig(likelihood="categorical"))
    assert data.representation == "levels" and data.levels == 17 and dataset.name == "digits"
    with pytest.raises(ValueError, match="Only likelihoods with the 'real' representation"):
        prepared_data(RunConfig(dataset="two_moons", likelihood="bernoulli"))


# --- the data-fit advice --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("likelihood, level, words", [
    ("bernoulli", "info", ["17 grey levels", "binarized (dynamic: re-sampled each epoch)", "continuous_bernoulli"]),
    ("continuous_bernoulli", "", []),
    ("gaussian", "info", ["real numbers", "not comparable with the discrete likelihoods"]),
    ("categorical", "", []),  # 17 levels: few enough to need no word
    ("discretized_logistic", "", []),
])
def test_fit_advice_on_digits(likelihood, level, words):
    from vae_tfp.data import load, prepare

    digits = load("digits")
    report = fit_report(digits, likelihood)
    assert report.level == level and all(w in report.message for w in words), report
    assert (report.message == "") == (level == "")
    representation = families.likelihoods.get(likelihood).representation
    expected_note = prepare(digits, representation).note  # the same note as the whole data set's
    assert report.note == expected_note and report.note
    assert tuple(report) == (report.level, report.message, report.note)  # unpacks as the sidebar's triple


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "categorical",
                                        "discretized_logistic"])
def test_fit_advice_on_points(likelihood):
    from vae_tfp.data import load

    report = fit_report(load("two_moons"), likelihood)
    if likelihood == "gaussian":
        assert report.level == "" and report.message == "" and report.note
    else:
        assert report.level == "error" and report.note == ""
        assert "Only likelihoods with the 'real' representation" in report.message
        assert "Pick **gaussian** for two_moons." in report.message


def test_fit_advice_names_the_binarization_and_many_levels():
    from vae_tfp.data import Dataset, load

    digits = load("digits")
    assert "thresholded at 0.5" in fit_report(digits, "bernoulli", "threshold").message
    rng = np.random.default_rng(0)
    eight_bit = Dataset("grey", "8-bit test images", "image", rng.integers(0, 256, (30, 4, 4)).astype(np.float32),
                        None, rng.integers(0, 256, (10, 4, 4)).astype(np.float32), None, levels=256)
    cat = fit_report(eight_bit, "categorical")
    assert cat.level == "info" and "256 grey levels" in cat.message and "256 decoder outputs per pixel" in cat.message
    logistic = fit_report(eight_bit, "discretized_logistic")
    assert logistic.level == "info" and "decoder outputs" not in logistic.message
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'; allowed: bernoulli"):
        fit_report(eight_bit, "poisson")


def test_tf_free_modules_import_without_tensorflow():
    """The sidebar's advice and the run comparison work before (and without) TensorFlow."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from vae_tfp.explain import advice, compare, curves, data\n"
            "from vae_tfp.data import load\n"
            "print(advice.fit_report(load('digits'), 'bernoulli').level)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "info"
