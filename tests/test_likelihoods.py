"""Each likelihood's log_prob against scipy.stats or a hand formula; shapes; support errors."""

import numpy as np
import pytest
import scipy.stats as st
from scipy.special import expit, log_softmax

from vae_tfp._tf import tf
from vae_tfp.families import LIKELIHOODS
from vae_tfp.likelihoods import LikelihoodHead, check_data, make_likelihood

EVENT = (3, 2)


def _params(rng, batch, p):
    return rng.normal(size=tuple(batch) + EVENT + (p,)).astype(np.float32)


@pytest.mark.parametrize("kind", list(LIKELIHOODS))
def test_every_family_builds_from_its_entry_with_the_outputs_it_declares(kind, rng):
    """The registry's params_per_dim is what the builder consumes; the distribution has the data's event shape, its
    mean E[x|z] the event's shape, and a sample lies in the support of the representation the entry declares."""
    family = LIKELIHOODS[kind]
    levels = 5 if family.needs_levels else None
    params = _params(rng, (4,), family.params_per_dim(levels))
    dist = make_likelihood(kind, params, EVENT, levels=levels, sigma=0.3 if family.has_sigma else None)
    assert dist.batch_shape == (4,) and dist.event_shape == EVENT
    head = LikelihoodHead(kind, EVENT, levels=levels, sigma=0.3)
    assert head.mean(dist).shape == (4,) + EVENT
    check_data(kind, dist.sample(seed=1).numpy(), levels=levels)  # a sample is data this family models


@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
def test_bernoulli_matches_scipy(rng, batch):
    params = _params(rng, batch, 1)
    x = rng.integers(0, 2, size=tuple(batch) + EVENT).astype(np.float32)
    lp = make_likelihood("bernoulli", params, EVENT).log_prob(x).numpy()
    ref = st.bernoulli.logpmf(x, expit(params[..., 0])).sum(axis=(-1, -2))
    assert lp.shape == tuple(batch)
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-5)


def _cb_log_normaliser(lam):
    """log C(lam), C(lam) = 2 artanh(1 - 2 lam) / (1 - 2 lam), C(1/2) = 2 (hand formula in float64)."""
    lam = np.asarray(lam, np.float64)
    out = np.full(lam.shape, np.log(2.0))
    far = np.abs(lam - 0.5) > 1e-6
    u = 1 - 2 * lam[far]
    out[far] = np.log(2 * np.arctanh(u) / u)
    return out


@pytest.mark.parametrize("logit", [0.0, 1e-3, -1e-3, 0.3, 3.0, -3.0, 9.0, -9.0])
def test_continuous_bernoulli_normaliser_near_half_and_edges(logit):
    x = np.array([0.0, 0.2, 0.5, 0.9, 1.0], np.float64)
    lam = expit(logit)
    ref = x * np.log(lam) + (1 - x) * np.log1p(-lam) + _cb_log_normaliser(np.full(x.shape, lam))
    params = np.full((5, 1, 1, 1), logit, np.float32)
    lp = make_likelihood("continuous_bernoulli", params, (1, 1)).log_prob(x.reshape(5, 1, 1).astype(np.float32))
    np.testing.assert_allclose(lp.numpy(), ref, rtol=2e-4, atol=2e-4)


def test_continuous_bernoulli_density_integrates_to_one():
    grid = np.linspace(0, 1, 20001, dtype=np.float32)
    for logit in (-6.0, -0.01, 0.0, 0.7, 5.0):
        d = make_likelihood("continuous_bernoulli", np.full((grid.size, 1, 1), logit, np.float32), (1,))
        dens = np.exp(d.log_prob(grid[:, None]).numpy())
        assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
def test_gaussian_fixed_sigma_matches_scipy(rng, batch):
    params = _params(rng, batch, 1)
    x = rng.normal(size=tuple(batch) + EVENT).astype(np.float32)
    lp = make_likelihood("gaussian", params, EVENT, sigma=0.3).log_prob(x).numpy()
    ref = st.norm.logpdf(x, params[..., 0], 0.3).sum(axis=(-1, -2))
    assert lp.shape == tuple(batch)
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode,shape", [("shared", ()), ("per_dim", EVENT)])
def test_gaussian_learned_sigma_is_a_trainable_variable(rng, mode, shape):
    head = LikelihoodHead("gaussian", EVENT, sigma=0.5, sigma_mode=mode)
    assert head.sigma().shape == shape
    np.testing.assert_allclose(head.sigma().numpy(), 0.5, rtol=1e-5)
    assert len(head.trainable_variables) == 1
    params = _params(rng, (4,), 1)
    x = rng.normal(size=(4,) + EVENT).astype(np.float32)
    with tf.GradientTape() as tape:
        lp = tf.reduce_sum(head.distribution(params).log_prob(x))
    grad = tape.gradient(lp, head.trainable_variables)[0]
    assert grad is not None and np.all(np.isfinite(grad.numpy()))
    ref = st.norm.logpdf(x, params[..., 0], 0.5).sum(axis=(-1, -2))
    np.testing.assert_allclose(head.distribution(params).log_prob(x).numpy(), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
def test_categorical_matches_log_softmax(rng, batch):
    K = 5
    params = _params(rng, batch, K)
    x = rng.integers(0, K, size=tuple(batch) + EVENT)
    lp = make_likelihood("categorical", params, EVENT, levels=K).log_prob(x.astype(np.float32)).numpy()
    ref = np.take_along_axis(log_softmax(params, axis=-1), x[..., None], axis=-1)[..., 0].sum(axis=(-1, -2))
    assert lp.shape == tuple(batch)
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-4)


def _discretized_logistic_ref(x, params, K):
    loc = (K - 1) * expit(params[..., 0])
    scale = 1e-3 + np.log1p(np.exp(params[..., 1])) * (K / 16.0)
    upper = np.where(x >= K - 1, 1.0, st.logistic.cdf(x + 0.5, loc, scale))
    lower = np.where(x <= 0, 0.0, st.logistic.cdf(x - 0.5, loc, scale))
    return np.log(upper - lower)


@pytest.mark.parametrize("K", [17, 256])
def test_discretized_logistic_matches_cdf_differences(rng, K):
    params = _params(rng, (4,), 2)
    x = rng.integers(0, K, size=(4,) + EVENT).astype(np.float64)
    x[0, 0, 0], x[0, 0, 1] = 0, K - 1  # both edge bins
    lp = make_likelihood("discretized_logistic", params, EVENT, levels=K).log_prob(x.astype(np.float32)).numpy()
    ref = _discretized_logistic_ref(x, params.astype(np.float64), K).sum(axis=(-1, -2))
    np.testing.assert_allclose(lp, ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", ["categorical", "discretized_logistic"])
def test_discrete_likelihoods_sum_to_one_and_mean_matches(rng, kind):
    K = 6
    head = LikelihoodHead(kind, (1,), levels=K)
    params = rng.normal(size=(3, 1, head.params_per_dim)).astype(np.float32)
    dist = head.distribution(params)
    probs = np.stack([np.exp(dist.log_prob(np.full((3, 1), j, np.float32)).numpy()) for j in range(K)])
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(head.mean(dist).numpy()[:, 0], (np.arange(K)[:, None] * probs).sum(0), rtol=1e-5)


def test_means_are_what_the_decoder_outputs(rng):
    params = _params(rng, (2,), 1)
    bern = LikelihoodHead("bernoulli", EVENT)
    np.testing.assert_allclose(bern.mean(bern.distribution(params)).numpy(), expit(params[..., 0]), rtol=1e-5)
    gauss = LikelihoodHead("gaussian", EVENT)
    np.testing.assert_allclose(gauss.mean(gauss.distribution(params)).numpy(), params[..., 0])
    cb = LikelihoodHead("continuous_bernoulli", EVENT)
    lam = expit(params[..., 0].astype(np.float64))
    ref = lam / (2 * lam - 1) + 1 / (2 * np.arctanh(1 - 2 * lam))
    np.testing.assert_allclose(cb.mean(cb.distribution(params)).numpy(), ref, rtol=1e-3)


def test_unknown_likelihood_names_allowed():
    with pytest.raises(ValueError, match=r"unknown likelihood 'poisson'.*bernoulli.*gaussian"):
        make_likelihood("poisson", np.zeros((1, 1), np.float32), (1,))


def test_wrong_param_shape_is_an_error():
    with pytest.raises(ValueError, match=r"categorical needs decoder outputs ending in \(3, 2, 4\)"):
        make_likelihood("categorical", np.zeros((1, 3, 2, 5), np.float32), EVENT, levels=4)


def test_levels_required():
    with pytest.raises(ValueError, match="needs the number of intensity levels"):
        LikelihoodHead("categorical", EVENT)


def test_bad_sigma_mode_and_value():
    with pytest.raises(ValueError, match="unknown sigma_mode 'learned'.*fixed, shared, per_dim"):
        LikelihoodHead("gaussian", EVENT, sigma_mode="learned")
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        LikelihoodHead("gaussian", EVENT, sigma=-1.0)


@pytest.mark.parametrize(
    "kind,x,levels,pattern",
    [
        ("bernoulli", [0.0, 0.5, 1.0], None, "0.5"),
        ("categorical", [0.0, -1.0, 2.0], 17, "-1"),
        ("categorical", [0.0, 17.0], 17, "17"),
        ("discretized_logistic", [0.0, 2.5], 256, "2.5"),
        ("continuous_bernoulli", [0.0, 1.2], None, "1.2"),
        ("gaussian", [0.0, np.nan], None, "nan|NaN"),
    ],
)
def test_data_outside_support_is_a_value_error(kind, x, levels, pattern):
    with pytest.raises(ValueError, match=pattern) as err:
        check_data(kind, np.array(x, np.float32), levels=levels)
    assert kind in str(err.value)


def test_data_inside_support_passes():
    check_data("bernoulli", np.array([0.0, 1.0]))
    check_data("categorical", np.array([0.0, 16.0]), levels=17)
    check_data("continuous_bernoulli", np.array([0.0, 0.3, 1.0]))
    check_data("gaussian", np.array([-3.0, 100.0]))
