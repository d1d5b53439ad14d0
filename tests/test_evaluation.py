"""log p(x): exact (linear-Gaussian) against scikit-learn's PPCA, importance sampling and quadrature against exact,
and the ordering ELBO <= IWAE_k <= log p(x)."""

import numpy as np
import pytest
from helpers import linear_gaussian_vae, random_linear_model
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from vae_tfp.evaluation import (
    LinearGaussian,
    active_units,
    exact_log_px,
    exact_posterior,
    is_linear_gaussian,
    iwae_curve,
    kl_per_dimension,
    linear_gaussian,
    log_px_importance,
    log_px_quadrature,
    log_weights,
    posterior_grid,
)
from vae_tfp.model import VAE
from vae_tfp.objectives import elbo_terms


def test_exact_log_px_equals_sklearn_ppca_score():
    X = load_digits().data / 16.0
    q = 8
    pca = PCA(n_components=q).fit(X)
    sigma2 = pca.noise_variance_
    W = np.sqrt(np.maximum(pca.explained_variance_ - sigma2, 0))[:, None] * pca.components_  # [q, D]
    model = linear_gaussian_vae(W, pca.mean_, np.sqrt(sigma2))
    assert is_linear_gaussian(model)
    ours = exact_log_px(model, X.astype(np.float32)).mean()
    assert ours == pytest.approx(pca.score(X), abs=2e-3)


def test_exact_marginal_matches_scipy_and_sampling(rng):
    from scipy.stats import multivariate_normal

    W, b, sigma = random_linear_model(rng, L=3, D=5, sigma=0.4)
    lg = LinearGaussian(W, b, np.full(5, sigma))
    x = rng.normal(size=(6, 5))
    ref = multivariate_normal(b, W.T @ W + sigma**2 * np.eye(5)).logpdf(x)
    np.testing.assert_allclose(lg.log_px(x), ref, rtol=1e-8)
    # posterior by Bayes' rule on a joint Gaussian: cov(z|x) = I - W S^-1 W^T, S = W^T W + sigma^2 I
    S = W.T @ W + sigma**2 * np.eye(5)
    post = lg.posterior(x)
    np.testing.assert_allclose(post.covariance().numpy()[0], np.eye(3) - W @ np.linalg.solve(S, W.T), atol=1e-8)
    np.testing.assert_allclose(post.mean().numpy(), (x - b) @ np.linalg.solve(S, W.T), atol=1e-8)


def test_model_readout_of_linear_gaussian(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=4)
    lg = linear_gaussian(linear_gaussian_vae(W, b, sigma))
    np.testing.assert_allclose(lg.W, W, rtol=1e-6)
    np.testing.assert_allclose(lg.b, b, rtol=1e-6)
    np.testing.assert_allclose(lg.sigma, sigma, rtol=1e-6)


def test_exact_needs_a_linear_gaussian_model():
    model = VAE((4,), latent_dim=2, likelihood="gaussian", network="mlp")
    with pytest.raises(ValueError, match="exact log p\\(x\\) needs a linear-Gaussian model.*network='mlp'"):
        exact_log_px(model, np.zeros((1, 4), np.float32))


def test_bounds_are_ordered_and_importance_sampling_converges(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=6, sigma=0.5)
    model = linear_gaussian_vae(W, b, sigma)
    x = (rng.normal(size=(20, 2)) @ W + b + sigma * rng.normal(size=(20, 6))).astype(np.float32)
    exact = exact_log_px(model, x)
    elbo = elbo_terms(model, x, n_samples=5000).elbo.numpy()
    lw = log_weights(model, x, 5000)
    curve = iwae_curve(lw, [1, 2, 5, 10, 50, 100, 1000, 5000])
    assert np.all(elbo < exact)  # q is not the exact posterior: a strict gap, KL(q || p(z|x))
    assert np.all(curve[-1] <= exact + 0.05)
    np.testing.assert_allclose(curve[0], elbo, atol=0.05)
    assert np.all(np.diff(curve.mean(axis=1)) > -1e-3)  # non-decreasing in k on average
    estimate = log_px_importance(model, x, k=5000)
    assert np.max(np.abs(estimate - exact)) < 0.05


def test_importance_sampling_chunks_agree(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=6)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(9, 6)).astype(np.float32)
    small = log_px_importance(model, x, k=3000, max_points=512)  # many chunks over images and samples
    large = log_px_importance(model, x, k=3000)
    np.testing.assert_allclose(small, large, atol=0.03)


def test_elbo_gap_is_kl_to_true_posterior(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=5)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(5, 5)).astype(np.float32)
    from vae_tfp._tf import tfd

    gap = exact_log_px(model, x) - elbo_terms(model, x, n_samples=40000).elbo.numpy()
    q = model.encode(x)
    p = exact_posterior(model, x)
    q64 = tfd.MultivariateNormalTriL(q.mean().numpy().astype(np.float64),
                                     np.linalg.cholesky(q.covariance().numpy().astype(np.float64)))
    kl = tfd.kl_divergence(q64, p).numpy()
    np.testing.assert_allclose(gap, kl, atol=0.03)


@pytest.mark.parametrize("L", [1, 2])
def test_quadrature_matches_exact(rng, L):
    W, b, sigma = random_linear_model(rng, L=L, D=5, sigma=0.3)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(log_px_quadrature(model, x), exact_log_px(model, x), atol=2e-3)


def test_grid_posterior_matches_exact_posterior(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=5, sigma=0.2)  # a sharp posterior: the grid must zoom in
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(1, 5)).astype(np.float32)
    grid = posterior_grid(model, x[0])
    mesh = np.stack(np.meshgrid(*grid.axes, indexing="ij"), -1)
    cell = (grid.axes[0][1] - grid.axes[0][0]) * (grid.axes[1][1] - grid.axes[1][0])
    probs = np.exp(grid.log_post) * cell
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    mean = (probs[..., None] * mesh).sum((0, 1))
    exact = exact_posterior(model, x)
    np.testing.assert_allclose(mean, exact.mean().numpy()[0], atol=2e-3)
    np.testing.assert_allclose(grid.log_post.max(), np.max(exact.log_prob(mesh.reshape(-1, 1, 2)).numpy()), atol=0.02)


def test_quadrature_needs_small_latent():
    model = VAE((4,), latent_dim=3, likelihood="gaussian")
    with pytest.raises(ValueError, match="latent_dim <= 2"):
        posterior_grid(model, np.zeros(4, np.float32))


def test_active_units_and_kl_per_dimension(rng):
    W = np.array([[2.0, 0, 0, 0], [0, 0, 0, 0]])  # only the first latent dimension does anything
    model = linear_gaussian_vae(W, np.zeros(4), 0.5)
    x = (rng.normal(size=(500, 2)) @ W + 0.5 * rng.normal(size=(500, 4))).astype(np.float32)
    n, var = active_units(model, x)
    assert n == 1 and var[0] > 0.5 and var[1] < 1e-6
    kl = kl_per_dimension(model, x)
    assert kl[0] > 0.5 and kl[1] < 0.1  # the unused dimension's q is the prior (up to the 1.2x scale)


def test_kl_per_dimension_with_mixture_prior_is_finite(rng):
    model = VAE((4,), latent_dim=3, likelihood="gaussian", prior="mixture", prior_components=4)
    kl = kl_per_dimension(model, rng.normal(size=(10, 4)).astype(np.float32))
    assert kl.shape == (3,) and np.all(np.isfinite(kl))


def test_iwae_curve_bad_k():
    with pytest.raises(ValueError, match="k=10 must lie in \\[1, 5\\]"):
        iwae_curve(np.zeros((5, 2)), [1, 10])
