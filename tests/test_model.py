"""The VAE's output holds distributions with the right shapes; bad input raises ValueError."""

import numpy as np
import pytest

from vae_tfp import families
from vae_tfp.config import RunConfig
from vae_tfp.model import VAE, build_vae
from vae_tfp.priors import make_prior


@pytest.mark.parametrize("prior", list(families.PRIORS))
@pytest.mark.parametrize("posterior", list(families.POSTERIORS))
@pytest.mark.parametrize("network", list(families.NETWORKS))
def test_the_model_keeps_the_registry_entries_it_was_built_from(prior, posterior, network):
    model = VAE((8, 8), latent_dim=3, likelihood="gaussian", prior=prior, posterior=posterior, network=network,
                hidden=(8,), prior_components=2)
    assert model.prior_family is families.PRIORS[prior] and model.posterior_family is families.POSTERIORS[posterior]
    assert model.network_family is families.NETWORKS[network]
    assert model.likelihood_family is families.LIKELIHOODS["gaussian"]
    assert model.encoder.output_shape == (None, families.POSTERIORS[posterior].n_params(3))


@pytest.mark.parametrize("network", ["mlp", "conv", "linear"])
@pytest.mark.parametrize("likelihood,levels", [("bernoulli", None), ("categorical", 17),
                                               ("discretized_logistic", 256), ("gaussian", None)])
def test_output_shapes(network, likelihood, levels, rng):
    event = (28, 28) if network == "conv" else (8, 8)
    model = VAE(event, latent_dim=3, likelihood=likelihood, levels=levels, network=network, hidden=(16,))
    x = rng.integers(0, 2, size=(5,) + event).astype(np.float32)
    out = model(x, n_samples=4)
    assert out.posterior.batch_shape == (5,) and out.posterior.event_shape == (3,)
    assert out.z.shape == (4, 5, 3)
    assert out.likelihood.batch_shape == (4, 5) and out.likelihood.event_shape == event
    assert out.likelihood.log_prob(x).shape == (4, 5)
    assert out.prior.log_prob(out.z).shape == (4, 5)
    assert model.decoder_mean(out.z).shape == (4, 5) + event


def test_conv_on_odd_image_sizes(rng):
    model = VAE((9, 7), latent_dim=2, likelihood="bernoulli", network="conv", hidden=(8,))
    x = rng.integers(0, 2, size=(2, 9, 7)).astype(np.float32)
    assert model(x).likelihood.log_prob(x).shape == (1, 2)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
@pytest.mark.parametrize("prior", ["standard_normal", "mixture"])
def test_posteriors_and_priors(posterior, prior, rng):
    model = VAE((6,), latent_dim=4, likelihood="gaussian", posterior=posterior, prior=prior, prior_components=3)
    out = model(rng.normal(size=(2, 6)).astype(np.float32))
    cov = out.posterior.covariance().numpy()
    assert cov.shape == (2, 4, 4)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    if posterior == "diagonal":
        np.testing.assert_allclose(cov - np.eye(4) * cov, 0, atol=1e-7)
    assert out.prior.event_shape == (4,)


def test_mixture_prior_is_trainable_and_normalised():
    prior = make_prior("mixture", 2, components=5)
    assert len(prior.trainable_variables) == 3
    g = np.linspace(-12, 12, 801)
    mesh = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
    mass = np.exp(prior.distribution().log_prob(mesh).numpy()).sum() * (g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_build_from_config():
    model = build_vae(RunConfig(latent_dim=5, likelihood="categorical", network="mlp", hidden=(32, 16)), (8, 8), 17)
    assert model.latent_dim == 5 and model.likelihood_head.params_per_dim == 17
    widths = [layer.units for layer in model.decoder.layers if hasattr(layer, "units")]
    assert widths == [16, 32, 64 * 17]  # the decoder mirrors the encoder


def test_wrong_shape_is_a_value_error():
    model = VAE((8, 8), latent_dim=2, likelihood="bernoulli")
    with pytest.raises(ValueError, match=r"x has shape \(3, 64\), but this model takes \[batch, 8, 8\]"):
        model(np.zeros((3, 64), np.float32))


def test_grey_pixels_given_to_bernoulli_are_refused():
    model = VAE((4,), latent_dim=2, likelihood="bernoulli")
    with pytest.raises(ValueError, match="bernoulli.*0.5"):
        model(np.array([[0, 0.5, 1, 1]], np.float32))


@pytest.mark.parametrize("kw,pattern", [
    ({"prior": "flow"}, r"unknown prior 'flow'; allowed: mixture, standard_normal, vamp"),
    ({"posterior": "flow"}, r"unknown posterior 'flow'; allowed: diagonal, full"),
    ({"network": "resnet"}, r"unknown network 'resnet'; allowed: conv, linear, mlp"),
    ({"likelihood": "poisson"}, r"unknown likelihood 'poisson'"),
    ({"latent_dim": 0}, r"latent_dim must be a positive integer"),
])
def test_unknown_names_are_value_errors(kw, pattern):
    args = {"latent_dim": 2, "likelihood": "gaussian"} | kw
    with pytest.raises(ValueError, match=pattern):
        VAE((4,), **args)


def test_conv_needs_images():
    with pytest.raises(ValueError, match="conv networks need images"):
        VAE((5,), latent_dim=2, likelihood="gaussian", network="conv")
