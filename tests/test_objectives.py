"""ELBO, KL, IWAE, beta, warm-up and free bits, checked against closed forms and independent estimates."""

import numpy as np
import pytest
import scipy.stats as st
from helpers import linear_gaussian_vae, random_linear_model

from vae_tfp._tf import tf, tfd
from vae_tfp.model import VAE
from vae_tfp.objectives import (
    elbo_terms,
    factorized_kl,
    free_bits_kl,
    iwae_bound,
    kl_divergence,
    kl_factorizes,
    log_importance_weights,
    training_loss,
    warmup_beta,
)


def _mc_kl(q, p, n=20000):
    z = q.sample(n, seed=1)
    terms = (q.log_prob(z) - p.log_prob(z)).numpy()  # [n, batch]
    return terms.mean(0), terms.std(0) / np.sqrt(n)


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_analytic_kl_matches_monte_carlo(rng, kind):
    loc = rng.normal(size=(3, 4)).astype(np.float32)
    if kind == "diag":
        q = tfd.MultivariateNormalDiag(loc, rng.uniform(0.3, 1.5, size=(3, 4)).astype(np.float32))
    else:
        a = rng.normal(size=(3, 4, 4))
        tril = np.tril(a) * 0.4 + np.eye(4) * 0.7
        q = tfd.MultivariateNormalTriL(loc, tril.astype(np.float32))
    p = tfd.MultivariateNormalDiag(tf.zeros(4), tf.ones(4))
    analytic = kl_divergence(q, p, "analytic").numpy()
    mc, se = _mc_kl(q, p)
    assert np.all(np.abs(analytic - mc) < 4 * se + 1e-4)


def test_kl_closed_form_against_hand_formula(rng):
    mu, s = rng.normal(size=(2, 3)), rng.uniform(0.2, 2, size=(2, 3))
    q = tfd.MultivariateNormalDiag(mu.astype(np.float32), s.astype(np.float32))
    p = tfd.MultivariateNormalDiag(tf.zeros(3), tf.ones(3))
    hand = 0.5 * np.sum(mu**2 + s**2 - 1 - 2 * np.log(s), axis=-1)  # KL(N(mu, s^2) || N(0, 1))
    np.testing.assert_allclose(kl_divergence(q, p).numpy(), hand, rtol=1e-5)
    per_dim = factorized_kl(q, p, factorizes=True).numpy()
    np.testing.assert_allclose(per_dim.sum(-1), hand, rtol=1e-5)
    np.testing.assert_allclose(per_dim, 0.5 * (mu**2 + s**2 - 1 - 2 * np.log(s)), rtol=1e-4)


def test_mixture_prior_falls_back_to_monte_carlo():
    model = VAE((5,), latent_dim=2, likelihood="gaussian", prior="mixture", prior_components=3)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    q, p = model.encode(x), model.prior_distribution()
    z = q.sample(50000, seed=2)
    est = kl_divergence(q, p, "analytic", z=z).numpy()  # no closed form: uses the samples
    mc, se = _mc_kl(q, p, 50000)
    assert np.all(np.abs(est - mc) < 6 * se)
    assert not kl_factorizes(model) and factorized_kl(q, p, kl_factorizes(model)) is None


@pytest.mark.parametrize("posterior,prior,splits", [("diagonal", "standard_normal", True),
                                                    ("full", "standard_normal", False),
                                                    ("diagonal", "mixture", False)])
def test_the_kl_splits_over_dimensions_as_the_registry_entries_say(posterior, prior, splits, rng):
    """Per-dimension KLs only where q and p are both diagonal Gaussians (their entries' flags, not their types); there
    they sum to the joint KL of elbo_terms."""
    model = VAE((5,), latent_dim=3, likelihood="gaussian", posterior=posterior, prior=prior, prior_components=2)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    terms = elbo_terms(model, x)
    assert kl_factorizes(model) is splits and (terms.kl_per_dim is not None) is splits
    if splits:
        np.testing.assert_allclose(terms.kl_per_dim.numpy().sum(-1), terms.kl.numpy(), rtol=1e-5)


def test_unknown_kl_method():
    q = tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2))
    with pytest.raises(ValueError, match="unknown KL method 'exact'; allowed: analytic, mc"):
        kl_divergence(q, q, "exact")


def test_elbo_terms_are_consistent_and_match_direct_computation(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=5)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    terms = elbo_terms(model, x, n_samples=20000)
    np.testing.assert_allclose(terms.elbo.numpy(), terms.reconstruction.numpy() - terms.kl.numpy(), rtol=1e-6)
    # E_q[log p(x|z)] for a linear-Gaussian decoder has a closed form given q = N(m, S):
    q = model.encode(x)
    m, S = q.mean().numpy().astype(np.float64), q.covariance().numpy().astype(np.float64)
    mean_x = m @ W + b
    trace = np.einsum("bjk,jd,kd->b", S, W, W)  # sum_d w_d^T S w_d
    expected_ll = st.norm.logpdf(x, mean_x, sigma).sum(-1) - 0.5 * trace / sigma**2
    np.testing.assert_allclose(terms.reconstruction.numpy(), expected_ll, rtol=0, atol=0.05)  # E_q[log p(x|z)]
    assert terms.loss.shape == ()
    assert terms.kl_per_dim.shape == (7, 2)


def test_beta_scales_the_kl_in_the_loss(rng):
    model = VAE((6,), latent_dim=3, likelihood="gaussian")
    x = rng.normal(size=(8, 6)).astype(np.float32)
    tf.random.set_seed(3)
    a = elbo_terms(model, x, beta=1.0)
    tf.random.set_seed(3)
    b = elbo_terms(model, x, beta=4.0)
    np.testing.assert_allclose(b.loss.numpy() - a.loss.numpy(), 3.0 * np.mean(a.kl.numpy()), rtol=1e-4)
    np.testing.assert_allclose(a.loss.numpy(), np.mean(a.kl.numpy() - a.reconstruction.numpy()), rtol=1e-5)


def test_free_bits_floor_per_dimension():
    kl = tf.constant([[0.1, 2.0, 0.0], [0.3, 1.0, 0.0]])  # [batch, latent]
    total = tf.reduce_sum(kl, -1)
    # batch means per dim: 0.2, 1.5, 0.0 -> floored at 0.5: 0.5 + 1.5 + 0.5
    assert free_bits_kl(total, kl, 0.5, 3).numpy() == pytest.approx(2.5)
    assert free_bits_kl(total, kl, 0.0, 3).numpy() == pytest.approx(1.7)
    assert free_bits_kl(total, None, 1.0, 3).numpy() == pytest.approx(3.0)  # not factorised: floor on the sum


def test_warmup_schedule():
    assert float(warmup_beta(0, 2.0, 100)) == 0.0
    assert float(warmup_beta(50, 2.0, 100)) == pytest.approx(1.0)
    assert float(warmup_beta(500, 2.0, 100)) == pytest.approx(2.0)
    assert float(warmup_beta(0, 2.0, 0)) == pytest.approx(2.0)


def test_iwae_with_one_sample_is_the_elbo_in_expectation(rng):
    W, b, sigma = random_linear_model(rng, L=2, D=4)
    model = linear_gaussian_vae(W, b, sigma)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    iw1 = np.mean(log_importance_weights(model, x, 20000).numpy(), axis=0)  # E[IWAE_1] over 20000 draws
    assert iwae_bound(model, x, 1).shape == (3,)
    elbo = elbo_terms(model, x, n_samples=20000).elbo.numpy()
    np.testing.assert_allclose(iw1, elbo, atol=0.1)


def test_training_loss_iwae_reports_terms(rng):
    model = VAE((6,), latent_dim=2, likelihood="gaussian")
    x = rng.normal(size=(4, 6)).astype(np.float32)
    loss, metrics = training_loss(model, x, iwae_k=8)
    assert set(metrics) == {"elbo", "reconstruction", "kl", "iwae", "loss"}
    assert float(loss) == pytest.approx(-float(metrics["iwae"])) and float(metrics["loss"]) == float(loss)
    assert float(metrics["elbo"]) == pytest.approx(float(metrics["reconstruction"]) - float(metrics["kl"]), rel=1e-6)
    _, mc = training_loss(model, x, iwae_k=8, kl="mc")  # KL from the same 8 z: elbo = mean_k log w_k
    assert float(mc["iwae"]) >= float(mc["elbo"])  # log mean_k w_k >= mean_k log w_k (Jensen)
    loss, metrics = training_loss(model, x, free_bits=0.1)
    assert set(metrics) == {"elbo", "reconstruction", "kl", "loss"}
    assert float(metrics["loss"]) == float(loss)
    assert float(metrics["elbo"]) == pytest.approx(float(metrics["reconstruction"]) - float(metrics["kl"]), rel=1e-6)


def test_training_loss_terms_match_elbo_terms(rng):
    """The metrics are the batch means of elbo_terms' per-example terms (same seed, same z), in the same names."""
    model = VAE((6,), latent_dim=2, likelihood="gaussian")
    x = rng.normal(size=(5, 6)).astype(np.float32)
    tf.random.set_seed(11)
    loss, metrics = training_loss(model, x, beta=2.0)
    tf.random.set_seed(11)
    terms = elbo_terms(model, x, beta=2.0)
    for name in ("elbo", "reconstruction", "kl"):
        assert float(metrics[name]) == pytest.approx(float(np.mean(getattr(terms, name).numpy())), rel=1e-5)
    assert float(loss) == pytest.approx(float(terms.loss), rel=1e-5)
    assert float(loss) == pytest.approx(-float(metrics["reconstruction"]) + 2.0 * float(metrics["kl"]), rel=1e-5)


def test_the_bernoulli_log_likelihood_and_its_written_out_gradient_match_the_plain_formula(rng):
    """Value and both gradients of the fused sum_d [x_d l_d - softplus(l_d)] against tfd.Bernoulli's log_prob
    differentiated by autodiff, with x broadcast along the samples axis (x [batch, 4, 3], logits [2, batch, 4, 3])."""
    from vae_tfp.objectives import bernoulli_log_likelihood

    x = tf.constant(rng.uniform(size=(5, 4, 3)), tf.float32)  # grey values: the x gradient is exercised too
    logits = tf.constant(rng.normal(scale=3.0, size=(2, 5, 4, 3)), tf.float32)
    weights = tf.constant(rng.normal(size=(2, 5)), tf.float32)  # an upstream gradient that is not all ones
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, logits])
        fused = bernoulli_log_likelihood(x, logits, 2)
        plain = tf.reduce_sum(x * tf.math.log_sigmoid(logits) + (1 - x) * tf.math.log_sigmoid(-logits), [-2, -1])
        fused_obj, plain_obj = tf.reduce_sum(weights * fused), tf.reduce_sum(weights * plain)
    binary = tf.cast(x > 0.5, tf.float32)
    reference = tfd.Independent(tfd.Bernoulli(logits=logits), 2).log_prob(binary)
    np.testing.assert_allclose(bernoulli_log_likelihood(binary, logits, 2).numpy(), reference.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-5, atol=1e-5)
    for var in (x, logits):
        np.testing.assert_allclose(tape.gradient(fused_obj, var).numpy(), tape.gradient(plain_obj, var).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_the_diagonal_fast_path_gives_the_same_terms_and_gradients_as_the_distributions(rng):
    """elbo_terms on raw tensors (diagonal q and p) against sampled_elbo_terms through tfd objects, same seed."""
    from vae_tfp.config import RunConfig
    from vae_tfp.model import build_vae
    from vae_tfp.objectives import diagonal_elbo_terms, sampled_elbo_terms

    model = build_vae(RunConfig(latent_dim=3, hidden=(16,)), (8, 8), None)
    x = tf.constant((rng.uniform(size=(6, 8, 8)) > 0.5).astype(np.float32))
    seed = tf.constant([3, 4], tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        fast = diagonal_elbo_terms(model, x, n_samples=2, beta=0.7, free_bits=0.1, seed=seed)
        slow = sampled_elbo_terms(model, x, n_samples=2, beta=0.7, free_bits=0.1, seed=seed)
    for name in ("elbo", "reconstruction", "kl", "loss", "kl_per_dim"):
        np.testing.assert_allclose(getattr(fast, name).numpy(), getattr(slow, name).numpy(), rtol=1e-4, atol=1e-4)
    for g_fast, g_slow in zip(tape.gradient(fast.loss, model.trainable_variables),
                              tape.gradient(slow.loss, model.trainable_variables)):
        np.testing.assert_allclose(g_fast.numpy(), g_slow.numpy(), rtol=1e-3, atol=1e-5)
    mixture = build_vae(RunConfig(latent_dim=3, hidden=(16,), prior="mixture"), (8, 8), None)
    assert not kl_factorizes(mixture)  # a mixture prior takes the general path
    with pytest.raises(ValueError, match="diagonal-Gaussian"):
        diagonal_elbo_terms(mixture, x)
