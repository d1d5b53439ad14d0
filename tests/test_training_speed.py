"""The trainer's and objectives' fast paths compute what the plain formulations compute; the fused Adam kernel is
pinned to the Keras version it was checked against."""

import numpy as np
import pytest

from vae_tfp._tf import keras, tf, tfd


@pytest.mark.parametrize("batch_shape", [[], [3], [2, 3]])
def test_fused_bernoulli_log_likelihood_matches_tfp(batch_shape):
    from vae_tfp.objectives import log_likelihood

    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(scale=4.0, size=batch_shape + [5, 4]), tf.float32)
    x = tf.constant(rng.random(batch_shape + [5, 4]) < 0.4, tf.float32)
    lik = tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), reinterpreted_batch_ndims=2)
    fused = log_likelihood(lik, x)
    assert fused.shape == batch_shape
    np.testing.assert_allclose(fused.numpy(), lik.log_prob(x).numpy(), rtol=1e-5, atol=1e-4)


def test_other_likelihoods_use_their_own_log_prob():
    from vae_tfp.objectives import log_likelihood

    lik = tfd.Independent(tfd.Normal(tf.zeros([2, 3]), 1.0), 1)
    x = tf.ones([2, 3])
    np.testing.assert_allclose(log_likelihood(lik, x).numpy(), lik.log_prob(x).numpy())


def test_fused_adam_was_checked_against_the_installed_keras():
    """`fused_adam` reads Keras Adam's private slots; it was compared with `apply_gradients` (the tests below) on
    Keras 3.15.1. On another Keras version it steps aside (apply_gradients runs) and this test fails until the
    comparison has been re-run there and `KERAS_CHECKED` updated."""
    from vae_tfp.training.kernels import KERAS_CHECKED, fused_adam

    assert KERAS_CHECKED == "3.15"
    installed = ".".join(keras.__version__.split(".")[:2])
    assert installed == KERAS_CHECKED, (f"fused Adam was checked against Keras {KERAS_CHECKED}, Keras {installed} "
                                        "is installed: re-run test_fused_adam_matches_keras_adam, then update "
                                        "KERAS_CHECKED")
    assert fused_adam(keras.optimizers.Adam(0.1)) is not None


def test_fused_adam_steps_aside_on_an_unchecked_keras(monkeypatch):
    from vae_tfp.training import kernels

    monkeypatch.setattr(kernels, "KERAS_CHECKED", "2.99")
    assert kernels.fused_adam(keras.optimizers.Adam(0.1)) is None


@pytest.mark.parametrize("schedule", [False, True])
def test_fused_adam_matches_keras_adam(schedule):
    from vae_tfp.training.kernels import fused_adam

    rng = np.random.default_rng(1)
    w0 = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3,)).astype(np.float32)]
    grads = [[tf.constant(rng.normal(size=w.shape), tf.float32) for w in w0] for _ in range(5)]
    lr = keras.optimizers.schedules.CosineDecay(0.01, 10) if schedule else 0.01

    def run(fused):
        variables = [keras.Variable(w) for w in w0]
        opt = keras.optimizers.Adam(lr)
        opt.build(variables)
        apply = fused_adam(opt) if fused else (lambda g, v: opt.apply_gradients(zip(g, v)))
        step = tf.function(lambda g: apply(g, variables))
        for g in grads:
            step(g)
        return [v.numpy() for v in variables], [s.numpy() for s in opt.variables]

    (wa, sa), (wb, sb) = run(False), run(True)
    assert len(sa) == len(sb)  # iterations, (learning rate,) m and v of each variable: the slots checkpoints save
    assert sa[0] == sb[0] == 5
    for a, b in zip(wa + sa, wb + sb):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(wb[0], w0[0])  # it did move the weights


def test_fused_adam_is_not_used_for_other_optimizers():
    from vae_tfp.training.kernels import fused_adam

    assert fused_adam(keras.optimizers.SGD(0.1)) is None
    assert fused_adam(keras.optimizers.Adam(0.1, clipnorm=1.0)) is None


def test_bfloat16_precision_keeps_float32_weights_and_metrics():
    from vae_tfp.config import RunConfig
    from vae_tfp.training import Trainer

    trainer = Trainer(RunConfig(dataset="digits", latent_dim=2, hidden=(16, 8), epochs=1), precision="bfloat16")
    result = trainer.train()
    assert result.status == "completed" and np.isfinite(result.test_metrics["elbo"])
    assert all(v.dtype == "float32" for v in trainer.model.trainable_variables)
    with pytest.raises(ValueError, match="precision"):
        Trainer(RunConfig(dataset="digits"), precision="float16")
