"""vae_tfp.views: the numbers behind the dashboard, checked against closed forms and against their definitions."""

import numpy as np
import pytest
from helpers import linear_gaussian_vae, random_linear_model

from vae_tfp import views
from vae_tfp.config import LIKELIHOOD_HELP, RunConfig
from vae_tfp.evaluation import exact_log_px
from vae_tfp.model import VAE


@pytest.fixture
def lg(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=6, sigma=0.5)
    model = linear_gaussian_vae(W, b, sigma)
    x = (rng.normal(size=(40, 2)) @ W + b + sigma * rng.normal(size=(40, 6))).astype(np.float32)
    return model, x


def test_what_is_px_gap_is_kl_to_the_true_posterior_on_a_linear_gaussian_model(lg):
    model, x = lg
    w = views.what_is_px(model, x[0], ks=(1, 10, 100, 1000, 5000), elbo_samples=40_000)
    assert w.method == "exact"
    assert w.log_px == pytest.approx(float(exact_log_px(model, x[:1])[0]), abs=1e-6)
    assert w.gap > 0  # q is 1.2x too wide: the ELBO is strictly below log p(x)
    assert w.gap == pytest.approx(w.kl_true_posterior, abs=0.03)  # log p(x) - ELBO = KL(q(z|x) || p(z|x))
    assert w.elbo == pytest.approx(w.reconstruction - w.kl_prior)
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
    w = views.what_is_px(model, x1, ks=(1, 100, 2000))
    assert w.method == "quadrature" and w.picture is not None
    assert w.gap == pytest.approx(w.kl_true_posterior, abs=0.05)
    assert w.elbo < w.iwae[-1] <= w.log_px + 0.05


def test_what_is_px_without_log_px_for_a_large_latent(rng):
    model = VAE((6,), latent_dim=3, likelihood="gaussian", network="mlp", hidden=(16,))
    w = views.what_is_px(model, rng.normal(size=6).astype(np.float32), ks=(1, 10, 100))
    assert w.log_px is None and w.gap is None and w.picture is None and w.method == "none"
    assert w.ks.tolist() == [1, 10, 100] and w.iwae.shape == (3,)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "categorical",
                                        "discretized_logistic"])
def test_reconstruction_shapes_and_sample_support(rng, likelihood):
    levels = 5 if LIKELIHOOD_HELP[likelihood][1] == "levels" else None
    model = VAE((4, 3), latent_dim=2, likelihood=likelihood, levels=levels, hidden=(8,))
    x = {"binary": rng.integers(0, 2, (5, 4, 3)), "unit": rng.random((5, 4, 3)), "real": rng.normal(size=(5, 4, 3)),
         "levels": rng.integers(0, 5, (5, 4, 3))}[LIKELIHOOD_HELP[likelihood][1]].astype(np.float32)
    r = views.reconstructions(model, x, seed=3)
    assert r.x.shape == r.mean.shape == r.sample.shape == (5, 4, 3)
    assert r.z.shape == (5, 2) and r.log_px_given_z.shape == (5,)
    assert np.all(np.isfinite(r.log_px_given_z))
    support = LIKELIHOOD_HELP[likelihood][1]
    if support == "binary":
        assert set(np.unique(r.sample)) <= {0.0, 1.0}
        assert np.all((r.mean > 0) & (r.mean < 1))  # the decoder's output is a probability, not a pixel
    elif support == "unit":
        assert np.all((r.sample >= 0) & (r.sample <= 1))
    elif support == "levels":
        assert np.all(r.sample == np.round(r.sample)) and r.sample.min() >= 0 and r.sample.max() <= 4
    # the same seed gives the same pictures (stateless sampling), another seed other samples
    again = views.reconstructions(model, x, seed=3)
    np.testing.assert_array_equal(again.sample, r.sample)


def test_gaussian_sample_is_mean_plus_noise_of_sigma(rng):
    model = VAE((400,), latent_dim=2, likelihood="gaussian", sigma=0.3, hidden=(8,))
    r = views.reconstructions(model, rng.random((3, 400)).astype(np.float32))
    assert np.std(r.sample - r.mean) == pytest.approx(0.3, rel=0.1)  # visibly noisy


def test_prior_decodes_sample_the_prior(rng):
    model = VAE((5,), latent_dim=3, likelihood="gaussian", hidden=(8,))
    d = views.prior_decodes(model, 4000, seed=1)
    assert d.z.shape == (4000, 3) and d.mean.shape == d.sample.shape == (4000, 5)
    np.testing.assert_allclose(d.z.mean(0), 0, atol=0.06)
    np.testing.assert_allclose(d.z.std(0), 1, atol=0.06)


def test_interpolation_endpoints_are_the_encoded_means(lg):
    model, x = lg
    path = views.interpolation(model, x[0], x[1], steps=5)
    mu = model.encode(x[:2]).mean().numpy()
    np.testing.assert_allclose(path.z[0], mu[0], atol=1e-6)
    np.testing.assert_allclose(path.z[-1], mu[1], atol=1e-6)
    np.testing.assert_allclose(path.z[2], mu.mean(0), atol=1e-5)  # the midpoint
    np.testing.assert_allclose(path.means, model.decoder_mean(path.z).numpy(), atol=1e-6)
    assert path.t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_traversal_moves_one_dimension_only(lg):
    model, x = lg
    path = views.traversal(model, x[3], dim=1, values=[-2, 0, 2])
    mu = model.encode(x[3:4]).mean().numpy()[0]
    np.testing.assert_allclose(path.z[:, 0], mu[0])
    np.testing.assert_allclose(path.z[:, 1], [-2, 0, 2])
    with pytest.raises(ValueError, match="dim must lie in"):
        views.traversal(model, x[3], dim=2, values=[0])


def test_latent_grid_decodes_a_plane(rng):
    model = VAE((4, 4), latent_dim=2, likelihood="bernoulli", hidden=(8,))
    g = views.latent_grid(model, size=5, reach=2.0)
    assert g.means.shape == (5, 5, 4, 4)
    np.testing.assert_allclose(g.axes[0], np.linspace(-2, 2, 5), atol=1e-6)
    z = np.array([g.axes[0][1], g.axes[1][3]], np.float32)[None]
    np.testing.assert_allclose(g.means[1, 3], model.decoder_mean(z).numpy()[0], atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim == 2"):
        views.latent_grid(VAE((4,), latent_dim=3, likelihood="gaussian"))


def test_latent_scatter_over_the_prior_density(lg):
    model, x = lg
    s = views.latent_scatter(model, x, labels=np.arange(len(x)) % 3, dims=(1, 0), grid=30)
    np.testing.assert_allclose(s.means, model.encode(x).mean().numpy()[:, [1, 0]], atol=1e-6)
    assert s.prior_density.shape == (30, 30)
    cell = (s.axes[0][1] - s.axes[0][0]) * (s.axes[1][1] - s.axes[1][0])
    assert s.prior_density.sum() * cell == pytest.approx(1.0, abs=0.05)  # N(0, I) on a box holding its mass


def test_mixture_prior_marginal_and_aggregate_histograms(rng):
    model = VAE((5,), latent_dim=3, likelihood="gaussian", prior="mixture", prior_components=4, hidden=(8,))
    marginal = views.prior_marginal(model, (0, 2))
    z = model.prior_distribution().sample(20000, seed=0).numpy()
    np.testing.assert_allclose(marginal.mean().numpy(), z[:, [0, 2]].mean(0), atol=0.05)
    agg = views.aggregate_posterior(model, rng.normal(size=(300, 5)).astype(np.float32), bins=20)
    assert agg.density.shape == (3, 20) and agg.prior_pdf.shape == (3, 200)
    widths = np.diff(agg.edges, axis=1)
    np.testing.assert_allclose((agg.density * widths).sum(1), 1.0, atol=1e-6)  # histograms are densities
    np.testing.assert_allclose(np.trapezoid(agg.prior_pdf, agg.grid, axis=1), 1.0, atol=0.02)


def test_latent_usage_finds_the_unused_dimension(rng):
    W = np.array([[2.0, 0, 0, 0], [0, 0, 0, 0]])
    model = linear_gaussian_vae(W, np.zeros(4), 0.5)
    x = (rng.normal(size=(300, 2)) @ W + 0.5 * rng.normal(size=(300, 4))).astype(np.float32)
    u = views.latent_usage(model, x)
    assert u.active.tolist() == [True, False] and u.n_active == 1
    assert u.kl_per_dim[0] > u.kl_per_dim[1]


def test_history_curves_and_comparability():
    records = [{"kind": "train", "step": 5, "epoch": 0, "elbo": -50, "distortion": 45, "rate": 5},
               {"kind": "test", "step": 10, "epoch": 1, "elbo": -48, "distortion": 44, "rate": 4},
               {"kind": "train", "step": 15, "epoch": 1, "elbo": -46, "distortion": 42, "rate": 4}]
    c = views.history_curves(records)
    assert c.train["reconstruction"].tolist() == [-45, -42] and c.test["kl"].tolist() == [4]
    assert c.train["epochs"].tolist() == [0.5, 1.5]  # steps over the steps per epoch seen at test time
    base = {"dataset": "digits", "levels": None, "binarization": None}
    same = [dict(base, name="a", representation="unit"), dict(base, name="b", representation="unit")]
    assert views.comparability_note(same) is None
    mixed = same + [dict(base, name="c", representation="binary", binarization="dynamic"),
                    dict(base, name="d", representation="levels", levels=17)]
    note = views.comparability_note(mixed)
    assert "not comparable" in note and "c: digits as binarized" in note and "17 levels" in note


def test_prepared_data_matches_the_trainer():
    dataset, data = views.prepared_data(RunConfig(likelihood="categorical"))
    assert data.representation == "levels" and data.levels == 17 and dataset.name == "digits"
    with pytest.raises(ValueError, match="Only likelihoods with the 'real' representation"):
        views.prepared_data(RunConfig(dataset="two_moons", likelihood="bernoulli"))
