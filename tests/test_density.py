"""vae_tfp.density: the model's p(x) over the plane, checked against closed forms, importance sampling, an
independent quadrature and its own definition (it integrates to 1); and `python -m vae_tfp density`."""

import json
import math

import numpy as np
import pytest
from helpers import linear_gaussian_vae
from scipy.special import erf, logsumexp
from scipy.stats import multivariate_normal

from vae_tfp import density, evaluation
from vae_tfp.cli import main
from vae_tfp.config import RunConfig
from vae_tfp.gaussian_mixture import grid_integral, grid_mesh, log_density_at, log_density_grid
from vae_tfp.model import VAE


def train_model(config: RunConfig):
    """The one place these tests train: (model, prepared data). No run directory is written."""
    from vae_tfp.training import Trainer

    trainer = Trainer(config)
    trainer.train()
    return trainer.model, trainer.data


@pytest.fixture(scope="module")
def moons_models():
    """Small two_moons VAEs with a 1-D and a 2-D latent (a few epochs: the checks hold for any weights)."""
    out = {}
    for latent in (1, 2):
        config = RunConfig(dataset="two_moons", likelihood="gaussian", latent_dim=latent, hidden=(32, 32), epochs=4,
                           sigma_mode="shared", lr=3e-3, seed=latent)
        out[latent] = train_model(config)
    return out


# --- the mixture-of-Gaussians kernel --------------------------------------------------------------------------
def test_mixture_kernel_matches_scipy_at_points_and_on_a_grid(rng):
    means = rng.normal(size=(300, 2)) * 2
    sigma = np.array([0.15, 0.4])  # per-dimension scales
    log_w = np.log(rng.uniform(size=300))
    x = rng.normal(size=(25, 2)) * 2
    ref = np.array([logsumexp(log_w + multivariate_normal(np.zeros(2), np.diag(sigma**2)).logpdf(xi - means))
                    for xi in x])
    np.testing.assert_allclose(log_density_at(x, means, sigma, log_w), ref, rtol=0, atol=1e-9)
    axes = [np.linspace(-5, 5, 31), np.linspace(-4, 6, 27)]
    on_grid = log_density_grid(axes, means, sigma, log_w)
    assert on_grid.shape == (31, 27)
    at_points = log_density_at(grid_mesh(axes).reshape(-1, 2), means, sigma, log_w).reshape(31, 27)
    np.testing.assert_allclose(on_grid, at_points, rtol=0, atol=1e-9)


def test_mixture_kernel_far_from_every_component_stays_finite_and_exact():
    means = np.array([[0.0, 0.0], [1.0, 0.5]])
    axes = [np.linspace(-40, 40, 9), np.linspace(-40, 40, 9)]  # log p down to about -1.3e5 (sigma 0.1)
    on_grid = log_density_grid(axes, means, 0.1, np.log([0.5, 0.5]))
    mesh = grid_mesh(axes).reshape(-1, 2)
    ref = logsumexp(np.log(0.5) + np.stack([multivariate_normal(m, 0.01 * np.eye(2)).logpdf(mesh) for m in means]),
                    axis=0).reshape(9, 9)
    assert np.all(np.isfinite(on_grid)) and on_grid.min() < -1e5
    np.testing.assert_allclose(on_grid, ref, rtol=1e-10)


# --- quadrature: the grid density ----------------------------------------------------------------------------
@pytest.mark.parametrize("latent", [1, 2])
def test_grid_density_integrates_to_one(moons_models, latent):
    model, data = moons_models[latent]
    grid = density.density_grid(model, 160, points=data.x_train)
    assert grid.method == "quadrature" and grid.log_density.shape == (160, 160) and grid.k is None
    assert grid.latent_grid == density.DEFAULT_LATENT_GRID[latent] and grid.latent_points == grid.latent_grid**latent
    # the standard-normal prior's mass in [-5, 5]^L, and the grid's Riemann sum of it
    assert grid.latent_extent == [(-5.0, 5.0)] * latent
    assert grid.prior_mass == pytest.approx(erf(5 / math.sqrt(2)) ** latent, abs=1e-6)
    assert grid.integral == pytest.approx(1.0, abs=0.01)
    assert grid.integral <= grid.prior_mass + 1e-9  # the plane holds at most the latent grid's mass
    x0, x1 = grid.axes
    assert x0.min() <= data.x_train[:, 0].min() and x0.max() >= data.x_train[:, 0].max()
    assert x1.min() <= data.x_train[:, 1].min() and x1.max() >= data.x_train[:, 1].max()
    assert 0 < grid.latent_step < 3  # the latent grid resolves the decoder (moves < 3 sigma between neighbours)


@pytest.mark.parametrize("latent", [1, 2])
def test_log_px_at_test_points_agrees_with_importance_sampling_and_an_adaptive_grid(moons_models, latent):
    model, data = moons_models[latent]
    x = data.x_test[:120]
    quadrature = density.latent_quadrature(model)
    ours = density.log_px_at(model, x, quadrature=quadrature)
    sampled = evaluation.log_px_importance(model, x, k=5000)
    assert np.median(np.abs(ours - sampled)) < 0.05
    if latent == 2:  # the mean, which `evaluate` reports
        assert np.mean(ours) == pytest.approx(np.mean(sampled), abs=0.05)
    else:  # a 1-D latent folds the moons: p(z|x) has modes q(z|x) misses, where IS at k = 5000 falls short
        assert np.mean(ours) > np.mean(sampled) - 0.05
    # per point against an independent quadrature that zooms its latent grid onto each posterior
    np.testing.assert_allclose(ours[:20], evaluation.log_px_quadrature(model, x[:20]), atol=0.01)
    # the grid density is the same function: on a grid through test points it takes the same values
    grid = density.density_grid(model, 12, extent=((-1.0, 2.0), (-0.5, 1.0)), quadrature=quadrature)
    at_nodes = density.log_px_at(model, grid_mesh(grid.axes).reshape(-1, 2), quadrature=quadrature)
    np.testing.assert_allclose(grid.log_density, at_nodes.reshape(12, 12), atol=1e-8)


def _per_dim_linear_gaussian(W, b, sigma):
    """A linear-Gaussian VAE whose likelihood learns one sigma per data dimension, set to `sigma` [D]."""
    from vae_tfp.likelihoods import MIN_SCALE

    model = VAE((W.shape[1],), latent_dim=W.shape[0], likelihood="gaussian", network="linear", sigma_mode="per_dim")
    dense = [layer for layer in model.decoder.layers if hasattr(layer, "kernel")][0]
    dense.kernel.assign(W.astype(np.float32))
    dense.bias.assign(b.astype(np.float32))
    model.likelihood_head.raw_sigma.assign(np.log(np.expm1(sigma - MIN_SCALE)).astype(np.float32))
    return model


@pytest.mark.parametrize("latent, per_dim", [(1, False), (2, False), (1, True)])
def test_linear_gaussian_grid_density_is_the_closed_form(latent, per_dim):
    W = np.array([[1.2, 0.8], [-0.3, 0.6]])[:latent]
    b = np.array([0.5, -0.3])
    if per_dim:
        model = _per_dim_linear_gaussian(W, b, np.array([0.2, 0.45]))
    else:
        model = linear_gaussian_vae(W, b, 0.3)
    exact = evaluation.linear_gaussian(model)  # reads W, b and sigma back from the model
    sd = np.sqrt(np.diag(W.T @ W + np.diag(exact.sigma**2)))
    extent = tuple((b_i - 3.5 * s, b_i + 3.5 * s) for b_i, s in zip(b, sd))
    grid = density.density_grid(model, 81, extent=extent)
    mesh = grid_mesh(grid.axes).reshape(-1, 2)
    truth = exact.log_px(mesh).reshape(81, 81)
    # where p(z|x) lies inside the latent grid (mean +- 5 posterior sd within +-5 prior sd): all but the far tails
    posterior = exact.posterior(mesh)
    reach = np.abs(posterior.mean().numpy()) + 5 * posterior.stddev().numpy()  # [G G, latent]
    inside = (np.max(reach, axis=1) < 5.0).reshape(81, 81)
    assert inside.mean() > (0.99 if latent == 1 else 0.6)
    np.testing.assert_allclose(grid.log_density[inside], truth[inside], rtol=0, atol=1e-3)
    assert np.all(grid.log_density <= truth + 1e-3)  # outside, the truncated prior can only lose mass
    assert grid.integral == pytest.approx(grid_integral(grid.axes, truth), abs=1e-4)


def test_linear_gaussian_log_px_at_points_in_ten_dimensions(rng):
    W, b, sigma = rng.normal(size=(2, 10)), rng.normal(size=10), 0.5
    model = linear_gaussian_vae(W, b, sigma)
    x = (rng.normal(size=(50, 2)) @ W + b + sigma * rng.normal(size=(50, 10))).astype(np.float32)
    np.testing.assert_allclose(density.log_px_at(model, x), evaluation.exact_log_px(model, x), atol=1e-3)


def test_a_latent_above_two_uses_importance_sampling_and_says_so(rng):
    W = np.array([[1.0, 0.2], [0.3, -0.8], [0.5, 0.5]])  # latent 3, data 2
    b = np.array([0.2, 0.1])
    model = linear_gaussian_vae(W, b, 0.4)
    cov = W.T @ W + 0.16 * np.eye(2)
    sd = np.sqrt(np.diag(cov))
    grid = density.density_grid(model, 30, extent=tuple((bi - 4 * s, bi + 4 * s) for bi, s in zip(b, sd)), k=1000)
    assert grid.method == "importance" and grid.k == 1000
    assert grid.latent_grid is None and grid.prior_mass is None and grid.latent_step is None
    truth = multivariate_normal(b, cov).logpdf(grid_mesh(grid.axes).reshape(-1, 2)).reshape(30, 30)
    assert np.median(np.abs(grid.log_density - truth)) < 0.05  # q is near p(z|x) here: IS is close
    assert grid.integral == pytest.approx(1.0, abs=0.02)
    x = rng.normal(size=(20, 2)).astype(np.float32)
    np.testing.assert_allclose(density.log_px_at(model, x, k=2000), multivariate_normal(b, cov).logpdf(x), atol=0.05)
    with pytest.raises(ValueError, match="latent_dim <= 2"):
        density.latent_quadrature(model)


# --- p(x) as a mixture of K components ---------------------------------------------------------------------------
def test_mixture_of_k_components_approaches_p_of_x(moons_models):
    model, data = moons_models[2]
    x = data.x_test[:200]
    quadrature = density.latent_quadrature(model)
    log_px = density.log_px_at(model, x, quadrature=quadrature)
    axes = density.grid_axes(density.plane_extent(model, data.x_train), 80)
    errors = {}
    for K in (1, 10, 100, 1000, 20_000):
        mix = density.mixture_density(model, K, axes=axes, x=x, log_px=log_px, seed=3)
        errors[K] = mix.mean_abs_error
        assert mix.means.shape == (K, 2) and mix.sigmas.shape == (K, 2) and mix.weight == 1 / K
        assert grid_integral(axes, mix.log_density) == pytest.approx(1.0, abs=0.01)  # weights 1/K: a density
    assert errors[1] > errors[10] > errors[100] > errors[1000] > errors[20_000]
    assert errors[20_000] < 0.1
    # the components are the decoder's Gaussians at z_k, and a larger K keeps the first components
    small = density.mixture_density(model, 10, seed=3)
    large = density.mixture_density(model, 1000, seed=3)
    np.testing.assert_array_equal(small.z, large.z[:10])
    np.testing.assert_allclose(small.means, model.decoder_mean(small.z.astype(np.float32)).numpy(), atol=1e-6)
    np.testing.assert_allclose(small.sigmas[0], density.likelihood_sigma(model))


# --- sampling both ways and one point ----------------------------------------------------------------------------
def test_sampling_both_ways_draws_from_p_of_x_and_reconstructs_through_q(rng):
    W, b, sigma = np.array([[1.2, 0.8]]), np.array([0.5, -0.3]), 0.3
    model = linear_gaussian_vae(W, b, sigma)
    x = (rng.normal(size=(300, 1)) @ W + b + sigma * rng.normal(size=(300, 2))).astype(np.float32)
    both = density.sampling_both_ways(model, x, n=20_000, seed=1)
    assert both.samples.shape == (20_000, 2) and both.prior_z.shape == (20_000, 1) and both.x.shape == (300, 2)
    cov = W.T @ W + sigma**2 * np.eye(2)  # p(x) = N(b, W^T W + sigma^2 I): the samples include the noise
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / 20_000)
    assert np.all(np.abs(np.cov(both.samples.T) - cov) < 5 * se)
    assert np.all(np.abs(both.samples.mean(0) - b) < 5 * np.sqrt(np.diag(cov) / 20_000))
    np.testing.assert_allclose(both.prior_means, both.prior_z @ W + b, atol=1e-5)  # f(z), z ~ p(z)
    np.testing.assert_allclose(both.reconstruction_means, both.posterior_z @ W + b, atol=1e-5)  # f(z), z ~ q(z|x)
    q = model.encode(x)  # z ~ q(z|x): standardised, the draws are N(0, 1)
    standard = (both.posterior_z - q.mean().numpy()) / q.stddev().numpy()
    assert abs(standard.mean()) < 0.25 and 0.8 < standard.std() < 1.2
    noise = (both.reconstructions - both.reconstruction_means) / sigma  # x' ~ p(x|z): N(f(z), sigma^2)
    assert 0.85 < noise.std() < 1.15


def test_one_point_has_all_four_densities(rng):
    W, b, sigma = np.array([[1.2, 0.8], [-0.3, 0.6]]), np.array([0.5, -0.3]), 0.3
    model = linear_gaussian_vae(W, b, sigma)
    x1 = np.array([0.9, 0.2], np.float32)
    point = density.one_point(model, x1)
    assert point.method == "exact"
    assert point.log_px == pytest.approx(float(evaluation.exact_log_px(model, x1[None])[0]), abs=1e-6)
    assert point.log_px == pytest.approx(float(density.log_px_at(model, x1[None])[0]), abs=1e-3)
    assert point.gap > 0 and point.gap == pytest.approx(point.kl_true_posterior, abs=0.03)
    assert point.elbo == pytest.approx(point.reconstruction - point.kl, abs=1e-5)
    pic = point.posterior
    cell = (pic.axes[0][1] - pic.axes[0][0]) * (pic.axes[1][1] - pic.axes[1][0])
    assert np.exp(pic.log_true).sum() * cell == pytest.approx(1.0, abs=0.01)
    assert np.exp(pic.log_q).sum() * cell == pytest.approx(1.0, abs=0.01)


def test_one_point_of_a_deep_latent_uses_importance_sampling():
    model = VAE((2,), latent_dim=3, likelihood="gaussian", hidden=(16,))
    point = density.one_point(model, np.array([0.3, 0.1], np.float32), k=2000)
    assert point.method == "importance" and point.posterior is None and np.isfinite(point.log_px)
    assert point.log_px > point.elbo - 0.05


# --- bad input ---------------------------------------------------------------------------------------------------
def test_bad_input_is_refused_with_what_is_allowed(moons_models):
    model, _ = moons_models[2]
    with pytest.raises(ValueError, match="needs 2-D points"):
        density.density_grid(VAE((3,), latent_dim=2, likelihood="gaussian", hidden=(8,)), 10)
    with pytest.raises(ValueError, match="gaussian likelihood"):
        density.density_grid(VAE((2,), latent_dim=2, likelihood="continuous_bernoulli", hidden=(8,)), 10)
    with pytest.raises(ValueError, match="grid must be an integer from 2 to 2000"):
        density.density_grid(model, 1)
    with pytest.raises(ValueError, match="latent grid size must be an integer from 2 to 1000"):
        density.density_grid(model, 10, latent_grid=5000)
    with pytest.raises(ValueError, match="extent must be"):
        density.density_grid(model, 10, extent=((1, 0), (0, 1)))
    with pytest.raises(ValueError, match="K must be an integer"):
        density.mixture_density(model, 0)


# --- the command line --------------------------------------------------------------------------------------------
def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_density_command_reports_the_grid_the_truth_and_writes_a_png(tmp_path, capsys):
    from PIL import Image

    from vae_tfp.datasets.truth import true_density
    from vae_tfp.summary import test_data

    run_dir = tmp_path / "moons"
    assert main(["train", "--dataset", "two_moons", "--likelihood", "gaussian", "--latent-dim", "2", "--epochs", "2",
                 "--hidden", "16,16", "--sigma-mode", "shared", "--run-dir", str(run_dir), "--json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["density", str(run_dir), "--grid", "60", "--latent-grid", "80", "--json"]) == 0
    out = _last_json(capsys)
    assert out["method"] == "quadrature" and out["grid"] == 60 and out["latent_grid"] == 80
    assert out["latent_points"] == 6400 and out["prior_mass"] == pytest.approx(1.0, abs=1e-5)
    assert out["integral"] == pytest.approx(out["prior_mass"], abs=0.02) and out["seconds"] > 0
    x_test = test_data(RunConfig(dataset="two_moons", likelihood="gaussian"))
    assert out["test_n"] == len(x_test)
    truth = true_density("two_moons")
    assert out["true_test_log_px_mean"] == pytest.approx(float(np.mean(truth.log_prob(x_test))), abs=1e-9)
    assert out["true_method"] == truth.method and out["true_integral"] == pytest.approx(1.0, abs=0.01)
    assert out["test_log_px_mean"] < out["true_test_log_px_mean"] + 0.2  # a 2-epoch model is no better than truth
    with Image.open(out["png"]) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100  # model and truth side by side


def test_density_command_refuses_image_runs_and_bad_grids(tmp_path, capsys):
    from vae_tfp.runs import create_run

    run = create_run(RunConfig(dataset="digits"), tmp_path, "digits")
    run.write_data_info({"event_shape": [8, 8], "levels": 17, "representation": "binary", "note": ""})
    assert main(["density", str(run.path)]) == 2
    assert "2-D point data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["density", str(run.path), "--grid", "1"])
    assert exit_info.value.code == 2 and "--grid" in capsys.readouterr().err
    assert main(["density", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err
