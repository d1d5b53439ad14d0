"""vae_tfp.explain.lab: the numbers the density lab shows, checked against closed forms -- the truth on the plane
against scipy, the distance KL(p_true || p_model) against the KL between two Gaussians, and the mixture curve
against `density.mixture_density` -- and the plane against its data."""

import math

import numpy as np
import pytest
from helpers import linear_gaussian_vae
from scipy.stats import multivariate_normal

from vae_tfp import density
from vae_tfp.datasets import builtin
from vae_tfp.explain import lab
from vae_tfp.gaussian_mixture import grid_mesh


def _truth():
    t = builtin.linear_gaussian_2d_truth()
    W, b, sigma = (np.asarray(t["W"], np.float64), np.asarray(t["b"], np.float64), float(t["sigma"]))
    return W, b, sigma, W.T @ W + sigma**2 * np.eye(2)


def _test_points(n=4000, seed=1):
    """Draws of the linear_gaussian_2d generator: x = z W + b + sigma eps."""
    W, b, sigma, _ = _truth()
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, W.shape[0])) @ W + b + sigma * rng.normal(size=(n, 2))


def test_the_plane_holds_the_data_padded_on_every_side():
    x = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, -1.0]])
    (lo0, hi0), (lo1, hi1) = lab.data_extent(x)
    assert (lo0, hi0) == pytest.approx((-0.3, 2.3)) and (lo1, hi1) == pytest.approx((-1.3, 1.3))  # 15 % of 2
    axes = lab.plane_axes(((lo0, hi0), (lo1, hi1)), 50)
    assert [len(a) for a in axes] == [50, 50] and axes[0][0] == lo0 and axes[1][-1] == hi1
    with pytest.raises(ValueError, match="finite 2-D point"):
        lab.data_extent(np.array([[np.nan, 0.0]]))


def test_the_truth_on_the_plane_is_the_closed_form_and_holds_its_mass():
    W, b, sigma, cov = _truth()
    x = _test_points(300)
    axes = lab.plane_axes(lab.data_extent(x, pad=0.6), 120)
    truth = lab.truth_plane("linear_gaussian_2d", axes, x)
    ref = multivariate_normal(b, cov)
    np.testing.assert_allclose(truth.log_density, ref.logpdf(grid_mesh(axes).reshape(-1, 2)).reshape(120, 120),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(truth.test_log_px, ref.logpdf(x), rtol=0, atol=1e-9)
    assert truth.integral == pytest.approx(1.0, abs=0.01) and "closed form" in truth.method
    assert lab.truth_plane("digits", axes, x) is None and lab.truth_plane("my.npz", axes, x) is None
    assert lab.truth_plane("linear_gaussian", axes, x) is None  # 10-D: no plane


def test_a_model_that_is_the_truth_is_at_distance_zero():
    """The linear-Gaussian VAE set to the generator's own W, b, sigma: its p(x) is the truth, so the estimate of
    KL(p_true || p_model) is 0 up to the quadrature's error (< 1e-3 nats per point)."""
    W, b, sigma, _ = _truth()
    model = linear_gaussian_vae(W, b, sigma)
    x = _test_points(1000)
    axes = lab.plane_axes(lab.data_extent(x), 200)
    side = lab.model_plane(model, axes, x)
    truth = lab.truth_plane("linear_gaussian_2d", axes, x)
    np.testing.assert_allclose(side.test_log_px, truth.test_log_px, rtol=0, atol=1e-3)
    assert side.grid.log_density.shape == (200, 200) and side.grid.method == "quadrature"
    assert abs(lab.distance(truth.test_log_px, side.test_log_px).kl) < 1e-3
    assert side.test_mean == pytest.approx(truth.test_mean, abs=1e-3)


def test_the_distance_of_a_wrong_model_is_the_kl_between_the_gaussians():
    """A model with twice the noise sigma: p_model = N(b, W^T W + 4 sigma^2 I). The lab's estimate on draws of the
    truth must match the closed-form KL(N(b, S0) || N(b, S1)) = (tr(S1^-1 S0) - 2 + log det S1 / det S0) / 2 within
    4 standard errors."""
    W, b, sigma, cov = _truth()
    model = linear_gaussian_vae(W, b, 2 * sigma)
    cov_model = W.T @ W + 4 * sigma**2 * np.eye(2)
    exact = 0.5 * (np.trace(np.linalg.solve(cov_model, cov)) - 2 + math.log(np.linalg.det(cov_model)
                                                                             / np.linalg.det(cov)))
    x = _test_points(4000)
    axes = lab.plane_axes(lab.data_extent(x), 60)
    side = lab.model_plane(model, axes, x)
    truth = lab.truth_plane("linear_gaussian_2d", axes, x)
    d = lab.distance(truth.test_log_px, side.test_log_px)
    assert d.n == 4000 and d.stderr > 0 and exact > 0.05
    assert abs(d.kl - exact) < 4 * d.stderr
    with pytest.raises(ValueError, match="equally long 1-D arrays"):
        lab.distance(np.zeros((2, 2)), np.zeros((2, 2)))


def test_the_mixture_curve_is_mixture_density_for_each_k_and_falls():
    W, b, sigma, _ = _truth()
    model = linear_gaussian_vae(W, b, sigma)
    x = _test_points(200)
    log_px = density.log_px_at(model, x)
    curve = lab.mixture_curve(model, x, log_px, ks=(1000, 1, 10, 100, 10))
    assert curve.ks.tolist() == [1, 10, 100, 1000]
    for k, error in zip(curve.ks, curve.mean_abs_error):
        mix = density.mixture_density(model, int(k), x=x, log_px=log_px, seed=lab.MIXTURE_SEED)
        assert error == mix.mean_abs_error
        assert error == pytest.approx(np.mean(np.abs(mix.test_log_pk - log_px)))
    assert curve.mean_abs_error[-1] < curve.mean_abs_error[0] / 10 and curve.mean_abs_error[-1] < 0.1


def test_a_sharp_decoder_gets_a_finer_latent_grid_and_the_exact_density():
    """A linear-Gaussian model with a tiny sigma: on the default latent grid the decoder's mean moves many sigma
    between neighbouring grid points and the quadrature is off; the lab refines the grid and matches the closed
    form N(b, W^T W + sigma^2 I) again."""
    from vae_tfp import evaluation

    W, b, sigma = np.array([[1.2, 0.8]]), np.array([0.5, -0.3]), 0.002
    model = linear_gaussian_vae(W, b, sigma)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 1)) @ W + b + sigma * rng.normal(size=(300, 2))
    exact = evaluation.exact_log_px(model, x.astype(np.float32))
    coarse = density.density_grid(model, 40, points=x)
    assert coarse.latent_step > 2 * lab.STEP_LIMIT
    assert np.max(np.abs(density.log_px_at(model, x, quadrature=coarse.quadrature) - exact)) > 0.05
    side = lab.model_plane(model, lab.plane_axes(lab.data_extent(x), 40), x)
    assert side.grid.latent_grid > density.DEFAULT_LATENT_GRID[1] and side.grid.latent_step <= lab.STEP_TARGET + 0.1
    np.testing.assert_allclose(side.test_log_px, exact, rtol=0, atol=2e-3)
