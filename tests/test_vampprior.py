"""The VampPrior p(z) = (1/K) sum_k q(z | u_k): its density against scipy, its samples against the mixture's moments,
gradients into the pseudo-inputs and the encoder, save/load/resume, evaluation and the views, and a short training
run that learns."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp, softplus

from vae_tfp import evaluation
from vae_tfp._tf import tf, tfd
from vae_tfp.config import RunConfig
from vae_tfp.explain import prior_posterior as views
from vae_tfp.model import VAE, build_vae
from vae_tfp.objectives import elbo_terms
from vae_tfp.posteriors import MIN_SCALE
from vae_tfp.priors import VampPrior
from vae_tfp.runs import load_model
from vae_tfp.training import RunRecorder, Trainer

FAST = dict(dataset="digits", batch_size=128, latent_dim=2, hidden=(64, 32), prior="vamp", prior_components=20)


def vamp_model(latent=3, K=6, event=(5, 4), posterior="diagonal", seed=0):
    return VAE(event, latent_dim=latent, likelihood="bernoulli", prior="vamp", prior_components=K,
               posterior=posterior, hidden=(16,), seed=seed)


def component_params(model):
    """An independent read-out of q(z | u_k): the encoder's raw outputs at clip(u, 0, 1), turned into locs and
    scales in numpy (posteriors.py: loc = raw[:L], scale = softplus(raw[L:]) + 1e-5). float64 [K, L] each."""
    u = np.clip(model.prior.pseudo_inputs.numpy(), 0.0, 1.0)
    raw = model.encoder(u).numpy().astype(np.float64)
    L = model.latent_dim
    return raw[:, :L], softplus(raw[:, L:]) + MIN_SCALE


def scipy_log_prob(z, locs, scales):
    """log (1/K) sum_k prod_j N(z_j; loc_kj, scale_kj^2) for z [n, L] -> [n]."""
    per_dim = stats.norm.logpdf(z[:, None, :], locs[None], scales[None])  # [n, K, L]
    return logsumexp(per_dim.sum(-1), axis=1) - np.log(len(locs))


def test_vamp_is_in_the_registry_and_the_config():
    from vae_tfp import budget, families
    from vae_tfp.config import SETTINGS

    family = families.priors.get("vamp")
    assert family.needs_encoder and family.mixture and not family.diagonal_gaussian
    assert "vamp" in SETTINGS["prior"].choices and SETTINGS["prior_components"].applies_to({"prior": "vamp"})
    config = RunConfig(prior="vamp", prior_components=7, latent_dim=3, hidden=(8,))
    assert budget.estimate(config, (8, 8)).parameters == budget.estimate(config.replace(prior="standard_normal"),
                                                                         (8, 8)).parameters + 7 * 64
    model = build_vae(RunConfig(prior="vamp", prior_components=7, latent_dim=3, hidden=(8,)), (8, 8))
    assert isinstance(model.prior, VampPrior) and model.prior.pseudo_inputs.shape == (7, 8, 8)
    assert model.prior_distribution().event_shape == (3,) and model.prior_distribution().batch_shape == ()


def test_log_prob_equals_scipy_mixture_of_encoder_posteriors(rng):
    model = vamp_model()
    locs, scales = component_params(model)
    z = rng.normal(size=(50, 3)) * 2
    z = np.concatenate([z, locs + 0.3 * scales])  # points near each component too
    got = model.prior_distribution().log_prob(z.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, scipy_log_prob(z, locs, scales), rtol=1e-5, atol=1e-4)
    # leading sample dims are kept: [samples, batch, latent] -> [samples, batch]
    assert model.prior_distribution().log_prob(z[:48].reshape(4, 12, 3).astype(np.float32)).shape == (4, 12)


def test_log_prob_stays_exact_for_sharp_components(rng):
    """Posterior scales of 1e-3 make z^2 / s^2 ~ 1e6: the expanded square must not lose the small difference."""
    model = vamp_model()
    dense = model.encoder.layers[-1]
    bias = dense.bias.numpy()
    bias[3:] = -8.0  # softplus(-8 + ...) ~ 3e-4 .. 1e-3
    dense.bias.assign(bias)
    locs, scales = component_params(model)
    assert scales.max() < 2e-3
    z = locs[rng.integers(0, len(locs), 40)] + rng.normal(size=(40, 3)) * scales.max()
    got = model.prior_distribution().log_prob(z.astype(np.float32)).numpy()
    want = scipy_log_prob(z.astype(np.float32).astype(np.float64), locs, scales)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-3)


def test_full_covariance_posterior_components(rng):
    model = vamp_model(posterior="full")
    comp = model.prior.components_distribution()
    mean, cov = comp.mean().numpy().astype(np.float64), comp.covariance().numpy().astype(np.float64)
    z = rng.normal(size=(30, 3))
    dens = np.stack([stats.multivariate_normal(m, c).logpdf(z) for m, c in zip(mean, cov)], 1)  # [n, K]
    want = logsumexp(dens, axis=1) - np.log(len(mean))
    got = model.prior_distribution().log_prob(z.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_samples_have_the_mixture_mean_and_covariance():
    model = vamp_model(latent=2, K=5)
    locs, scales = component_params(model)
    mean = locs.mean(0)  # E z = (1/K) sum_k m_k
    cov = np.mean([np.diag(s**2) + np.outer(m, m) for m, s in zip(locs, scales)], 0) - np.outer(mean, mean)
    n = 200_000
    z = model.prior_distribution().sample(n, seed=3).numpy().astype(np.float64)  # [n, 2]
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(z.mean(0) - mean) < 5 * se_mean), (z.mean(0), mean, se_mean)
    centred = z - mean
    prods = centred[:, :, None] * centred[:, None, :]  # [n, 2, 2]: each sample's contribution to the covariance
    se_cov = prods.std(0) / np.sqrt(n)
    assert np.all(np.abs(prods.mean(0) - cov) < 5 * se_cov), (prods.mean(0), cov, se_cov)
    d = model.prior_distribution()
    np.testing.assert_allclose(d.mean().numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d.variance().numpy(), np.diag(cov), rtol=1e-4, atol=1e-5)


def test_gradients_reach_pseudo_inputs_and_encoder_and_match_finite_differences(rng):
    model = vamp_model()
    model.prior.pseudo_inputs.assign(rng.uniform(0.1, 0.9, size=(6, 5, 4)).astype(np.float32))
    z = tf.constant(rng.normal(size=(8, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(model.prior_distribution().log_prob(z))
    u, enc = model.prior.pseudo_inputs, model.encoder.trainable_variables
    grads = tape.gradient(value, [u, *enc, *model.decoder.trainable_variables])
    assert np.all(np.isfinite(grads[0].numpy())) and np.abs(grads[0].numpy()).max() > 0
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads[1:1 + len(enc)])
    assert all(g is None for g in grads[1 + len(enc):])  # the decoder plays no part in p(z)
    # d log p / d u[k, i, j] by central differences (float64 sums of float32 terms; a 1e-2 step)
    eps, base = 1e-2, u.numpy().copy()
    for k, i, j in [(0, 0, 0), (3, 2, 1), (5, 4, 3)]:
        vals = []
        for sign in (1, -1):
            w = base.copy()
            w[k, i, j] += sign * eps
            u.assign(w)
            vals.append(np.sum(model.prior_distribution().log_prob(z).numpy().astype(np.float64)))
        u.assign(base)
        fd = (vals[0] - vals[1]) / (2 * eps)
        assert grads[0].numpy()[k, i, j] == pytest.approx(fd, rel=2e-2, abs=2e-3)


def test_pseudo_inputs_are_clipped_to_the_data_range(rng):
    """u = clip(w, 0, 1): a pseudo-input pixel outside [0, 1] encodes like the clipped value and gets no gradient."""
    model = vamp_model()
    w = rng.uniform(0, 1, size=(6, 5, 4)).astype(np.float32)
    w[0, 0, 0], w[1, 0, 0] = 1.7, -0.4
    model.prior.pseudo_inputs.assign(w)
    np.testing.assert_array_equal(model.prior.inputs().numpy(), np.clip(w, 0, 1))
    z = tf.constant(rng.normal(size=(4, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(model.prior_distribution().log_prob(z))
    g = tape.gradient(value, model.prior.pseudo_inputs).numpy()
    assert g[0, 0, 0] == 0 and g[1, 0, 0] == 0 and np.abs(g[2:]).max() > 0


def test_set_pseudo_inputs_checks_the_shape():
    model = vamp_model()
    model.prior.set_pseudo_inputs(np.ones((6, 5, 4), np.float32))
    np.testing.assert_array_equal(model.prior.pseudo_inputs.numpy(), 1.0)
    with pytest.raises(ValueError, match=r"pseudo-inputs have shape \(6, 5, 4\), got \(6, 20\)"):
        model.prior.set_pseudo_inputs(np.ones((6, 20), np.float32))


def test_kl_is_monte_carlo_with_the_posterior_sample(rng):
    model = vamp_model()
    x = rng.integers(0, 2, size=(4, 5, 4)).astype(np.float32)
    tf.random.set_seed(1)
    terms = elbo_terms(model, x, n_samples=1)
    assert terms.kl_per_dim is None  # no closed form, no per-dimension split
    tf.random.set_seed(1)
    out = model(x, n_samples=1)
    want = (out.posterior.log_prob(out.z) - out.prior.log_prob(out.z)).numpy()[0]  # log q(z|x) - log p(z)
    np.testing.assert_allclose(terms.kl.numpy(), want, rtol=1e-5, atol=1e-5)


def test_weights_round_trip_through_save_and_load(tmp_path, rng):
    a = vamp_model(seed=0)
    a.prior.pseudo_inputs.assign(rng.uniform(size=(6, 5, 4)).astype(np.float32))
    b = vamp_model(seed=1)
    z = rng.normal(size=(10, 3)).astype(np.float32)
    assert not np.allclose(a.prior_distribution().log_prob(z), b.prior_distribution().log_prob(z))
    path = str(tmp_path / "m.weights.h5")
    a.save_weights(path)
    b.load_weights(path)
    np.testing.assert_array_equal(b.prior.pseudo_inputs.numpy(), a.prior.pseudo_inputs.numpy())
    np.testing.assert_allclose(b.prior_distribution().log_prob(z), a.prior_distribution().log_prob(z), rtol=1e-6)
    assert len(b.weights) == len({id(w) for w in b.weights})  # the encoder's weights are the model's, once


def test_training_improves_the_elbo_moves_pseudo_inputs_and_resumes(tmp_path):
    trainer = Trainer(RunConfig(**FAST | {"epochs": 3, "checkpoint_every": 10}),
                      callbacks=[RunRecorder(tmp_path / "run")])
    before_elbo = trainer.evaluate_test()["elbo"]
    before_u = trainer.model.prior.pseudo_inputs.numpy().copy()
    assert trainer.train(max_steps=20).steps == 20
    resumed = Trainer.resume(tmp_path / "run", callbacks=[RunRecorder(tmp_path / "run")])
    np.testing.assert_array_equal(resumed.model.prior.pseudo_inputs.numpy(), trainer.model.prior.pseudo_inputs)
    result = resumed.train()
    assert result.status == "completed" and result.steps == 36
    assert result.test_metrics["elbo"] > before_elbo + 5.0  # nats
    assert np.abs(resumed.model.prior.pseudo_inputs.numpy() - before_u).max() > 1e-3
    from vae_tfp.runs import open_run

    saved = load_model(open_run(tmp_path / "run"))
    z = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    np.testing.assert_allclose(saved.prior_distribution().log_prob(z), resumed.model.prior_distribution().log_prob(z),
                               rtol=1e-6)


def test_quadrature_agrees_with_sampling_the_prior(rng):
    """log p(x) by quadrature over a 2-D latent (the VampPrior's log_prob on a grid) against plain Monte Carlo with
    the prior's own samples, log (1/n) sum_i p(x|z_i), z_i ~ p(z) (an untrained encoder is a poor proposal, so
    importance sampling through q(z|x) is not the reference here)."""
    from scipy.special import logsumexp

    from vae_tfp.objectives import log_likelihood

    model = VAE((5, 4), latent_dim=2, likelihood="bernoulli", prior="vamp", prior_components=8, hidden=(16,))
    x = rng.integers(0, 2, size=(3, 5, 4)).astype(np.float32)
    quad = evaluation.log_px_quadrature(model, x)
    z = model.prior_distribution().sample(200_000, seed=tf.constant([1, 2]))  # [n, 2]
    log_lik = log_likelihood(model.decode(z[:, None, :]), x).numpy().astype(np.float64)  # [n, 3]
    np.testing.assert_allclose(logsumexp(log_lik, axis=0) - np.log(len(log_lik)), quad, atol=0.01)


def test_views_draw_prior_samples_and_marginals(rng):
    model = VAE((5, 4), latent_dim=3, likelihood="bernoulli", prior="vamp", prior_components=8, hidden=(16,))
    x = rng.integers(0, 2, size=(30, 5, 4)).astype(np.float32)
    dec = views.prior_decodes(model, 12)
    assert dec.z.shape == (12, 3) and np.all(np.isfinite(dec.mean))
    scatter = views.latent_scatter(model, x, dims=(0, 2))
    assert scatter.prior_density.shape == (80, 80) and np.all(np.isfinite(scatter.prior_density))
    agg = views.aggregate_posterior(model, x)
    assert np.all(np.isfinite(agg.prior_pdf)) and agg.prior_pdf.shape == (3, 200)
    assert np.all(np.isfinite(views.latent_usage(model, x).kl_per_dim))


def test_marginals_integrate_the_joint(rng):
    """p(z_0) from `marginals` and the views equals the joint density integrated over z_1 on a fine grid, and the
    2-D `marginal` equals the joint itself (latent 2)."""
    model = VAE((5, 4), latent_dim=2, likelihood="bernoulli", prior="vamp", prior_components=4, hidden=(16,))
    joint = model.prior_distribution()
    g = np.linspace(-10, 10, 801)
    mesh = np.stack(np.meshgrid(g, g, indexing="ij"), -1).astype(np.float32)  # [G, G, 2]
    dens = np.exp(joint.log_prob(mesh).numpy().astype(np.float64))  # [G, G]
    p0 = dens.sum(1) * (g[1] - g[0])  # integrate out z_1
    layer = model.prior.marginals([0]).prob(g[:, None].astype(np.float32)).numpy()[:, 0]
    from_views = evaluation.prior_marginals(model, [0]).prob(g[:, None].astype(np.float32)).numpy()
    np.testing.assert_allclose(layer, p0, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(from_views, p0, rtol=1e-3, atol=1e-5)
    for two_d in (model.prior.marginal([0, 1]), evaluation.prior_marginals(model, [0, 1])):
        np.testing.assert_allclose(two_d.log_prob(mesh[::40, ::40]), joint.log_prob(mesh[::40, ::40]), rtol=1e-4,
                                   atol=1e-4)


def test_full_covariance_marginal_keeps_each_components_block(rng):
    model = vamp_model(posterior="full")
    comp = model.prior.components_distribution()
    mean, cov = comp.mean().numpy().astype(np.float64), comp.covariance().numpy().astype(np.float64)
    z = rng.normal(size=(20, 2))
    dims = [2, 0]
    dens = np.stack([stats.multivariate_normal(m[dims], c[np.ix_(dims, dims)]).logpdf(z) for m, c in zip(mean, cov)])
    want = logsumexp(dens, axis=0) - np.log(len(mean))
    np.testing.assert_allclose(model.prior.marginal(dims).log_prob(z.astype(np.float32)), want, rtol=1e-4, atol=1e-4)


def test_a_vamp_mixture_is_a_mixture_same_family():
    """The dashboard's views read a mixture's components and weights; the VampPrior's p(z) is one."""
    d = vamp_model().prior_distribution()
    assert isinstance(d, tfd.MixtureSameFamily)
    np.testing.assert_allclose(d.mixture_distribution.probs_parameter().numpy(), np.full(6, 1 / 6), rtol=1e-6)


def test_marginal_dims_out_of_range_are_value_errors():
    model = vamp_model()
    with pytest.raises(ValueError, match=r"latent dimensions must be a non-empty list in \[0, 2\], got \[3\]"):
        model.prior.marginals([3])
    with pytest.raises(ValueError, match="non-empty"):
        model.prior.marginal([])
