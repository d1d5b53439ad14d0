"""vae_tfp.datasets.truth: the synthetic data sets' true p(x), checked against sklearn's own generators, scipy,
histograms of many samples, and their normalisation; and the 2-D linear-Gaussian data set."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.datasets import make_circles, make_moons

from vae_tfp import data
from vae_tfp.datasets import builtin, truth
from vae_tfp.gaussian_mixture import grid_integral, log_density_at

N = builtin.N_TRAIN_POINTS + builtin.N_TEST_POINTS
BOXES = {  # boxes holding all but ~1e-6 of each density
    "two_moons": ((-1.8, 2.8), (-1.3, 1.8)),
    "rings": ((-1.5, 1.5), (-1.5, 1.5)),
    "pinwheel": ((-3.5, 3.5), (-3.5, 3.5)),
    "linear_gaussian_2d": ((-6.0, 7.0), (-5.0, 4.4)),
}


def _samples(name, n, rng):
    if name == "two_moons":
        return make_moons(n, noise=builtin.MOONS_NOISE, random_state=int(rng.integers(2**31)))[0]
    if name == "rings":
        return make_circles(n, factor=builtin.RINGS_FACTOR, noise=builtin.RINGS_NOISE,
                            random_state=int(rng.integers(2**31)))[0]
    if name == "pinwheel":
        return builtin.make_pinwheel(n, rng)[0]
    t = builtin.linear_gaussian_2d_truth()
    return rng.normal(size=(n, 1)) @ t["W"] + t["b"] + t["sigma"] * rng.normal(size=(n, 2))


def test_sklearn_generators_are_what_is_integrated():
    # the noise-free positions are sklearn's (unshuffled, noise=None) ...
    np.testing.assert_allclose(truth.moons_centres(N), make_moons(N, shuffle=False)[0], atol=1e-12)
    np.testing.assert_allclose(truth.circles_centres(N), make_circles(N, factor=0.5, shuffle=False)[0], atol=1e-12)
    # ... and the noise sklearn adds to them is N(0, s^2 I): independent, isotropic, Gaussian, of the stated scale
    for make, centres, s in ((make_moons, truth.moons_centres(N), 0.1), (make_circles, truth.circles_centres(N), 0.05)):
        kwargs = {"factor": 0.5} if make is make_circles else {}
        noise = (make(N, noise=s, shuffle=False, random_state=3, **kwargs)[0] - centres) / s  # [N, 2]
        assert np.all(np.abs(noise.mean(0)) < 4 / math.sqrt(N)) and np.all(np.abs(noise.std(0) - 1) < 0.04)
        assert abs(np.corrcoef(noise.T)[0, 1]) < 4 / math.sqrt(N)
        assert stats.kstest(noise.reshape(-1), "norm").pvalue > 1e-3
    # the loaders call the generators with the parameters the truth integrates
    moons = data.load("two_moons", seed=4)
    x, _ = make_moons(N, noise=builtin.MOONS_NOISE, random_state=4)
    np.testing.assert_array_equal(moons.x_train, x[: builtin.N_TRAIN_POINTS].astype(np.float32))


def test_rings_closed_form_is_the_generators_sum_over_its_angles(rng):
    x = rng.uniform(-1.4, 1.4, size=(300, 2))
    centres = truth.circles_centres(N)  # sklearn's 3000 + 3000 positions, each weighted 1/N
    discrete = log_density_at(x, centres, builtin.RINGS_NOISE, np.full(N, -math.log(N)))
    np.testing.assert_allclose(truth.true_density("rings").log_prob(x), discrete, rtol=0, atol=1e-9)


def test_moons_sum_is_the_integral_over_the_position(rng):
    """sklearn's evenly spaced positions against scipy's adaptive integral over t (uniform on [0, pi])."""
    s = builtin.MOONS_NOISE
    x = make_moons(12, noise=s, random_state=5)[0]  # where the data are

    def continuous(xi):
        def arc(t, upper):
            c = (math.cos(t), math.sin(t)) if upper else (1 - math.cos(t), 0.5 - math.sin(t))
            return math.exp(-((xi[0] - c[0]) ** 2 + (xi[1] - c[1]) ** 2) / (2 * s * s)) / (2 * math.pi * s * s)
        return sum(0.5 * integrate.quad(arc, 0, math.pi, args=(u,), epsabs=0, epsrel=1e-10, limit=200)[0] / math.pi
                   for u in (True, False))

    ours = truth.true_density("two_moons").log_prob(x)
    # 3000 equal weights on 3000 even nodes per moon (both ends included) against (1/pi) int dt: a factor
    # 2999/3000 (3.3e-4 nats) along the moons; near a tip the end node's full weight (a trapezoid gives it half)
    # adds up to 0.005 nats, more only far beyond the tips (0.04 nats at log p(x) ~ -30)
    difference = ours - np.log([continuous(xi) for xi in x])
    assert np.all(np.abs(difference) < 0.01) and np.median(np.abs(difference)) < 1e-3


def test_linear_gaussian_truths_match_scipy(rng):
    for name, load_truth in (("linear_gaussian", builtin.linear_gaussian_truth),
                             ("linear_gaussian_2d", builtin.linear_gaussian_2d_truth)):
        t = load_truth()
        dim = len(t["b"])
        x = rng.normal(size=(40, dim)) * 2
        cov = t["W"].T @ t["W"] + t["sigma"] ** 2 * np.eye(dim)
        density = truth.true_density(name)
        assert density.dim == dim and "closed form" in density.method
        np.testing.assert_allclose(density.log_prob(x), stats.multivariate_normal(t["b"], cov).logpdf(x), atol=1e-10)
    with pytest.raises(ValueError, match="10-D points"):
        truth.true_density("linear_gaussian").log_density_grid([np.zeros(3), np.zeros(3)])


def _simpson_weights(bins, sub, h):
    """Row b integrates a function on the nodes over bin b by Simpson's rule (sub even): h/3 [1, 4, 2, ..., 4, 1]."""
    one = np.ones(sub + 1)
    one[1:-1:2], one[2:-1:2] = 4, 2
    weights = np.zeros((bins, bins * sub + 1))
    for b in range(bins):
        weights[b, b * sub:(b + 1) * sub + 1] = one * h / 3
    return weights


@pytest.mark.parametrize("name", sorted(BOXES))
def test_each_truth_integrates_to_one_and_matches_a_histogram_of_samples(name, rng):
    density = truth.true_density(name)
    axes = [np.linspace(lo, hi, 401) for lo, hi in BOXES[name]]
    on_grid = density.log_density_grid(axes)
    assert np.all(np.isfinite(on_grid))
    assert grid_integral(axes, on_grid) == pytest.approx(1.0, abs=1e-3)
    # a histogram of 10^6 samples against the truth's probability of each bin (Simpson's rule over a sub-grid of
    # the bin): every well-filled bin within 5 standard errors, and chi^2 per bin near 1
    n, bins, sub = 1_000_000, 24, 12
    x = _samples(name, n, rng)
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in BOXES[name]]
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    nodes = [np.linspace(e[0], e[-1], bins * sub + 1) for e in edges]
    simpson = [_simpson_weights(bins, sub, ax[1] - ax[0]) for ax in nodes]  # [bins, bins sub + 1] per axis
    expected = simpson[0] @ np.exp(density.log_density_grid(nodes)) @ simpson[1].T * n  # [bins, bins]
    full = expected > 200
    z = (counts[full] - expected[full]) / np.sqrt(expected[full])
    assert full.sum() > 20
    assert np.max(np.abs(z)) < 5 and 0.6 < np.mean(z**2) < 1.5, (np.max(np.abs(z)), np.mean(z**2))


def test_pinwheel_change_of_variables_counts_every_preimage(rng):
    # far out the arms wind over each other: several roots per arm, each one found (compare many scan nodes)
    x = rng.uniform(-3, 3, size=(200, 2))
    fine = truth.pinwheel_log_prob(x, bisections=60, newton=0)
    np.testing.assert_allclose(truth.pinwheel_log_prob(x), fine, rtol=0, atol=1e-8)
    assert truth.true_density("pinwheel").method.startswith("change of variables")


def test_truth_of_unknown_data_is_none():
    assert truth.true_density("digits") is None and truth.true_density("/tmp/my.npz") is None
    assert set(truth.TRUTHS) <= set(data.DATASETS)


def test_linear_gaussian_2d_data_set_matches_its_truth():
    ds = data.load("linear_gaussian_2d", seed=5)
    t = ds.truth
    assert t["W"].shape == (1, 2) and t["b"].shape == (2,) and t["sigma"] == builtin.LG2_SIGMA
    assert ds.kind == "points" and ds.event_shape == (2,) and ds.y_train is None
    assert ds.x_train.shape == (5000, 2) and ds.x_test.shape == (1000, 2)
    cov = t["W"].T @ t["W"] + t["sigma"] ** 2 * np.eye(2)
    n = len(ds.x_train)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(ds.x_train.astype(np.float64), rowvar=False) - cov) < 5 * se)
    assert np.all(np.abs(ds.x_train.mean(0) - t["b"]) < 5 * np.sqrt(np.diag(cov) / n))
    assert "linear_gaussian_2d" in {row["name"] for row in data.list_datasets()}
    np.testing.assert_array_equal(data.load("linear_gaussian_2d", seed=6).truth["W"], t["W"])  # the model is fixed
    assert not np.array_equal(data.load("linear_gaussian_2d", seed=6).x_train, ds.x_train)
