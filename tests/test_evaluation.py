"""log p(x): exact (linear-Gaussian) against scikit-learn's PPCA, importance sampling and quadrature against exact,
and the ordering ELBO <= IWAE_k <= log p(x); KL(q(z|x) || p(z|x)) on a grid against its closed form; grids, prior
marginals and chunked ELBO terms against closed forms."""

import numpy as np
import pytest
from helpers import linear_gaussian_vae, random_linear_model
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from vae_tfp.evaluation import (
    LinearGaussian,
    active_units,
    box_grid,
    cell_volume,
    elbo_estimate,
    exact_log_px,
    exact_posterior,
    grid_moments,
    is_linear_gaussian,
    iwae_curve,
    kl_on_grid,
    kl_per_dimension,
    kl_to_exact_posterior,
    kl_to_posterior_on_grid,
    kl_to_true_posterior,
    linear_gaussian,
    log_px_importance,
    log_px_quadrature,
    log_weights,
    posterior_grid,
    posteriors_on_grid,
    prior_marginals,
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


# --- KL(q(z|x) || p(z|x)) -------------------------------------------------------------------------------------------
def _shifted_linear_gaussian(rng, L, shift=0.6, sigma=0.5):
    """A linear-Gaussian VAE whose q(z|x) is the exact posterior moved by `shift` and 1.2x too wide: a clear KL."""
    W, b, _ = random_linear_model(rng, L=L, D=5, sigma=sigma)
    model = linear_gaussian_vae(W, b, sigma)
    enc = [layer for layer in model.encoder.layers if hasattr(layer, "kernel")][0]
    bias = enc.bias.numpy()
    bias[:L] += shift
    enc.bias.assign(bias)
    return model


def _gauss_kl(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)) by the textbook formula (numpy)."""
    inv = np.linalg.inv(S1)
    d = m1 - m0
    return 0.5 * (np.trace(inv @ S0) + d @ inv @ d - len(m0) + np.log(np.linalg.det(S1) / np.linalg.det(S0)))


def test_kl_to_exact_posterior_is_the_gaussian_kl(rng):
    model = _shifted_linear_gaussian(rng, L=2)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    q, p = model.encode(x), exact_posterior(model, x)
    expected = [_gauss_kl(q.mean().numpy()[i].astype(np.float64), q.covariance().numpy()[i].astype(np.float64),
                          p.mean().numpy()[i], p.covariance().numpy()[i]) for i in range(3)]
    np.testing.assert_allclose(kl_to_exact_posterior(model, x), expected, rtol=1e-6)


@pytest.mark.parametrize("L", [1, 2])
def test_kl_on_a_grid_matches_the_closed_form(rng, L):
    model = _shifted_linear_gaussian(rng, L=L)
    x = rng.normal(size=(2, 5)).astype(np.float32)
    exact = kl_to_exact_posterior(model, x)
    assert np.all(exact > 0.2)  # q is far enough from p(z|x) that a wrong sign, direction or cell would show
    for i in range(2):
        log_px = float(exact_log_px(model, x[i:i + 1])[0])
        grid = kl_to_posterior_on_grid(model, x[i], log_px, size=121 if L == 2 else 801)
        assert grid == pytest.approx(exact[i], abs=2e-4)
        # with log p(x) by quadrature, as for a model without a closed form
        quad = kl_to_posterior_on_grid(model, x[i], float(log_px_quadrature(model, x[i:i + 1])[0]))
        assert quad == pytest.approx(exact[i], abs=3e-3)


def test_kl_to_true_posterior_picks_closed_form_grid_or_refuses(rng):
    model = _shifted_linear_gaussian(rng, L=2)
    x1 = rng.normal(size=5).astype(np.float32)
    assert kl_to_true_posterior(model, x1) == pytest.approx(float(kl_to_exact_posterior(model, x1[None])[0]))
    mlp = VAE((5,), latent_dim=2, likelihood="gaussian", network="mlp", hidden=(8,), sigma=0.5)
    grid = kl_to_true_posterior(mlp, x1)  # log p(x) by quadrature, then the KL on a grid around q
    log_px = float(posterior_grid(mlp, x1).log_px)
    assert grid == pytest.approx(kl_to_posterior_on_grid(mlp, x1, log_px), abs=1e-9) and grid > 0
    with pytest.raises(ValueError, match="linear-Gaussian model or latent_dim <= 2"):
        kl_to_true_posterior(VAE((5,), latent_dim=3, likelihood="gaussian", hidden=(8,)), x1)


def test_posteriors_on_a_grid_are_the_exact_densities(rng):
    model = _shifted_linear_gaussian(rng, L=2)
    x = rng.normal(size=(1, 5)).astype(np.float32)
    p = exact_posterior(model, x)
    pg = posteriors_on_grid(model, x[0], [-3, -2], [2, 3], 31, float(exact_log_px(model, x)[0]))
    assert pg.log_true.shape == pg.log_q.shape == (31, 31)
    points = np.stack(np.meshgrid(*pg.axes, indexing="ij"), -1).reshape(-1, 1, 2)  # [P, 1, 2]
    np.testing.assert_allclose(pg.log_true.reshape(-1), p.log_prob(points).numpy().reshape(-1), atol=2e-3)
    np.testing.assert_allclose(pg.log_q.reshape(-1), model.encode(x).log_prob(points.astype(np.float32)).numpy()
                               .reshape(-1), atol=1e-5)
    same = type(pg)(pg.axes, pg.log_q, pg.log_q)
    assert kl_on_grid(same) == 0.0  # KL(q || q) = 0


# --- grids ----------------------------------------------------------------------------------------------------------
def test_box_grid_and_cell_volume():
    axes, mesh = box_grid([-1.0, 0.0], [1.0, 3.0], 5)
    np.testing.assert_allclose(axes[0], [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(axes[1], [0, 0.75, 1.5, 2.25, 3])
    assert mesh.shape == (5, 5, 2) and tuple(mesh[1, 3]) == (-0.5, 2.25)  # indexing "ij"
    assert cell_volume(axes) == pytest.approx(0.5 * 0.75)
    axes, mesh = box_grid(-2.0, 2.0, 9)  # one dimension from scalars
    assert len(axes) == 1 and mesh.shape == (9, 1)


def test_grid_moments_of_known_gaussians():
    from scipy.stats import multivariate_normal, norm

    axes, mesh = box_grid([-14.5], [17.5], 2001)  # +-8 std
    mean, std = grid_moments(axes, norm(1.5, 2.0).logpdf(mesh[:, 0]))
    assert mean[0] == pytest.approx(1.5, abs=1e-6) and std[0] == pytest.approx(2.0, abs=1e-6)
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])  # correlated: the marginal moments still come out
    axes, mesh = box_grid([-7.0, -5.0], [9.0, 5.0], 301)
    mean, std = grid_moments(axes, multivariate_normal([1.0, -0.5], cov).logpdf(mesh))
    np.testing.assert_allclose(mean, [1.0, -0.5], atol=1e-6)
    np.testing.assert_allclose(std, np.sqrt(np.diag(cov)), atol=1e-5)


# --- prior marginals ------------------------------------------------------------------------------------------------
def test_prior_marginals_of_the_standard_normal():
    from scipy.stats import norm

    model = VAE((4,), latent_dim=3, likelihood="gaussian", hidden=(8,))
    z = np.array([[0.3, -1.2], [2.0, 0.1]], np.float32)
    np.testing.assert_allclose(prior_marginals(model, (2, 0)).log_prob(z).numpy(), norm.logpdf(z).sum(-1), rtol=1e-5)
    assert prior_marginals(model).event_shape == [3]
    with pytest.raises(ValueError, match=r"latent dimensions must be a non-empty list in \[0, 2\], got \[3\]"):
        prior_marginals(model, [3])


def test_prior_marginals_of_a_mixture_against_the_hand_formula(rng):
    from scipy.stats import norm

    model = VAE((4,), latent_dim=3, likelihood="gaussian", prior="mixture", prior_components=4, hidden=(8,))
    prior = model.prior_distribution()
    pi = prior.mixture_distribution.probs_parameter().numpy()  # [K]
    loc, scale = prior.components_distribution.mean().numpy(), prior.components_distribution.stddev().numpy()
    z = rng.normal(size=(6, 2)).astype(np.float32)
    dims = [2, 0]
    # p(z_2, z_0) = sum_k pi_k N(z_2; mu_k2, s_k2) N(z_0; mu_k0, s_k0)
    expected = np.log(sum(pi[k] * np.prod(norm.pdf(z, loc[k, dims], scale[k, dims]), axis=-1) for k in range(4)))
    np.testing.assert_allclose(prior_marginals(model, dims).log_prob(z).numpy(), expected, rtol=1e-5)
    # a one-dimensional marginal integrates to 1 and has the mixture's mean
    g = np.linspace(-12, 12, 4001, dtype=np.float32)
    pdf = prior_marginals(model, [1]).prob(g[:, None]).numpy()
    assert np.trapezoid(pdf, g) == pytest.approx(1.0, abs=1e-4)
    assert np.trapezoid(pdf * g, g) == pytest.approx(float(pi @ loc[:, 1]), abs=1e-4)


def test_kl_per_dimension_under_a_mixture_prior_against_quadrature(rng):
    from scipy.stats import norm

    model = VAE((4,), latent_dim=2, likelihood="gaussian", prior="mixture", prior_components=3, hidden=(8,))
    x = rng.normal(size=(3, 4)).astype(np.float32)
    q = model.encode(x)
    m, s = q.mean().numpy(), q.stddev().numpy()  # [3, 2]
    prior = model.prior_distribution()
    pi = prior.mixture_distribution.probs_parameter().numpy()
    loc, scale = prior.components_distribution.mean().numpy(), prior.components_distribution.stddev().numpy()
    g = np.linspace(-15, 15, 20001)
    expected = np.zeros(2)
    for j in range(2):  # mean over x of the integral of q_j (log q_j - log p_j), p_j = sum_k pi_k N(mu_kj, s_kj)
        log_p = np.log(sum(pi[k] * norm.pdf(g, loc[k, j], scale[k, j]) for k in range(3)))
        for i in range(3):
            log_q = norm.logpdf(g, m[i, j], s[i, j])
            expected[j] += np.trapezoid(np.exp(log_q) * (log_q - log_p), g) / 3
    np.testing.assert_allclose(kl_per_dimension(model, x, n_samples=40000), expected, atol=0.02)


# --- the ELBO's terms in bounded memory -----------------------------------------------------------------------------
def test_elbo_estimate_in_chunks_against_closed_forms(rng):
    import scipy.stats as st

    from vae_tfp._tf import tfd

    W, b, sigma = random_linear_model(rng, L=2, D=5)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    est = elbo_estimate(model, x, n_samples=20000, max_points=3000)  # 7 chunks of samples per image
    q = model.encode(x)
    np.testing.assert_allclose(est.kl, tfd.kl_divergence(q, model.prior_distribution()).numpy(), rtol=1e-5)
    m, S = q.mean().numpy().astype(np.float64), q.covariance().numpy().astype(np.float64)
    # E_q[log p(x|z)] = log N(x; m W + b, sigma^2 I) - sum_d w_d^T S w_d / (2 sigma^2)
    expected = st.norm.logpdf(x, m @ W + b, sigma).sum(-1) - 0.5 * np.einsum("bjk,jd,kd->b", S, W, W) / sigma**2
    np.testing.assert_allclose(est.reconstruction, expected, atol=0.05)
    np.testing.assert_allclose(est.elbo, est.reconstruction - est.kl)
    one = elbo_estimate(model, x, max_points=2)  # one z per image, images two at a time
    assert one.reconstruction.shape == (7,) and np.all(np.isfinite(one.reconstruction))
    np.testing.assert_allclose(one.kl, est.kl, rtol=1e-5)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        elbo_estimate(model, x, n_samples=0)


def test_iwae_spread_is_the_mean_and_standard_error_over_disjoint_groups(rng):
    from scipy.special import logsumexp

    from vae_tfp.evaluation import iwae_curve, iwae_spread

    log_w = rng.normal(size=(40, 3))  # [K, batch]
    mean, sem, groups = iwae_spread(log_w, [1, 4, 40])
    assert list(groups) == [40, 10, 1]
    per_group = logsumexp(log_w.reshape(10, 4, 3), axis=1) - np.log(4)  # [10, batch]
    np.testing.assert_allclose(mean[1], per_group.mean(0))
    np.testing.assert_allclose(sem[1], per_group.std(0, ddof=1) / np.sqrt(10))
    np.testing.assert_allclose(mean[0], log_w.mean(0))  # k = 1: the ELBO estimate
    assert np.all(np.isnan(sem[2]))  # one group: no spread to measure
    np.testing.assert_allclose(iwae_curve(log_w, [1, 4, 40]), mean)
