"""The registries in vae_tfp.families: importable without TensorFlow, every lazy builder reference resolves, the
entries' properties agree with what their builders make, and the priors' marginals are the right distributions."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp, softmax

from vae_tfp import families
from vae_tfp.datasets import DATASETS
from vae_tfp.families.networks import NetworkFamily
from vae_tfp.families.reference import resolve

ROOT = Path(__file__).resolve().parents[1]


def test_registries_config_budget_and_links_import_without_tensorflow():
    script = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from vae_tfp import budget, families, sharing
from vae_tfp.config import SETTINGS, RunConfig
from vae_tfp.datasets.registry import DATASETS
assert set(families.LIKELIHOODS) and set(families.PRIORS) and set(families.POSTERIORS) and set(families.NETWORKS)
size = budget.estimate(RunConfig(), (8, 8))
assert size.parameters > 0 and "tensorflow" not in [m.split(".")[0] for m in sys.modules if sys.modules[m]]
print("TF-FREE OK", size.parameters)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "TF-FREE OK" in out.stdout, out.stdout + out.stderr


def _references():
    for registry in (families.LIKELIHOODS, families.PRIORS, families.POSTERIORS):
        for entry in registry.values():
            yield entry.name, entry.builder
            if getattr(entry, "mean", None):
                yield entry.name, entry.mean
    for entry in families.NETWORKS.values():
        yield entry.name, entry.encoder
        yield entry.name, entry.decoder


@pytest.mark.parametrize("name,reference", list(_references()))
def test_every_builder_reference_resolves_to_a_callable(name, reference):
    assert callable(resolve(reference)), (name, reference)


def test_a_bad_reference_says_what_a_reference_looks_like():
    with pytest.raises(ValueError, match="package.module:attribute"):
        resolve("vae_tfp.likelihoods.bernoulli")


@pytest.mark.parametrize("registry", [families.LIKELIHOODS, families.PRIORS, families.POSTERIORS, families.NETWORKS])
def test_entries_are_frozen_named_by_their_key_and_have_words(registry):
    for name, entry in registry.items():
        assert entry.name == name and entry.words.strip()
        with pytest.raises(AttributeError):
            entry.name = "other"


def test_likelihood_entries_say_what_they_need():
    for family in families.LIKELIHOODS.values():
        assert family.representation in ("binary", "unit", "levels", "real") and family.sample.strip()
        if family.params_per_level:
            assert family.params_per_dim(7) == 7
        elif not family.needs_levels:
            assert family.params_per_dim(None) == family.params
    with pytest.raises(ValueError, match="needs the number of intensity levels"):
        families.LIKELIHOODS["categorical"].params_per_dim(None)
    with pytest.raises(ValueError, match=r"unknown likelihood 'poisson'; allowed: bernoulli"):
        families.likelihoods.get("poisson")


@pytest.mark.parametrize("mode,expected", [("fixed", 0), ("shared", 1), ("per_dim", 12)])
def test_a_learned_sigma_is_counted_as_the_head_builds_it(mode, expected):
    from vae_tfp.likelihoods import LikelihoodHead

    family = families.LIKELIHOODS["gaussian"]
    head = LikelihoodHead("gaussian", (3, 4), sigma=0.5, sigma_mode=mode)
    assert family.head_params((3, 4), mode) == expected == sum(int(np.prod(w.shape)) for w in head.weights)
    assert families.LIKELIHOODS["bernoulli"].head_params((3, 4), "per_dim") == 0  # no sigma, whatever the mode


@pytest.mark.parametrize("latent", [1, 2, 5])
@pytest.mark.parametrize("name", list(families.POSTERIORS))
def test_posterior_n_params_is_what_its_builder_takes(name, latent, rng):
    family = families.POSTERIORS[name]
    raw = rng.normal(size=(3, family.n_params(latent))).astype(np.float32)
    q = family.build(raw, latent)
    assert q.batch_shape == (3,) and q.event_shape == (latent,)
    cov = q.covariance().numpy()
    off_diagonal = cov - cov * np.eye(latent)
    if family.diagonal:  # the diagonal flag <=> a diagonal covariance
        np.testing.assert_allclose(off_diagonal, 0)
    elif latent > 1:
        assert not np.allclose(off_diagonal, 0)


def test_prior_flags_match_what_the_builders_make():
    from vae_tfp._tf import tfd
    from vae_tfp.model import VAE

    for family in families.PRIORS.values():
        encoder = {}
        if family.needs_encoder:  # the VampPrior encodes its pseudo-inputs with a model's encoder
            model = VAE((5, 2), latent_dim=3, likelihood="bernoulli", hidden=(8,))
            encoder = dict(event_shape=(5, 2), encode=model.encode)
        prior = family.build(3, components=4, seed=0, **encoder)
        p = prior.distribution()
        assert p.event_shape == (3,)
        assert sum(int(np.prod(w.shape)) for w in prior.weights) == family.n_params(3, 4, event_size=10)
        assert bool(prior.trainable_weights) == family.learnable
        if family.diagonal_gaussian:
            assert isinstance(p, tfd.MultivariateNormalDiag)
        if family.standard_normal:
            np.testing.assert_allclose(p.mean().numpy(), 0)
            np.testing.assert_allclose(p.stddev().numpy(), 1)


def test_mixture_marginals_against_scipy(rng):
    """p(z_j) = sum_k pi_k N(z_j; mu_kj, s_kj^2), batch [len(dims)]; marginal(dims) is the joint over dims."""
    prior = families.PRIORS["mixture"].build(4, components=3, seed=1)
    prior.logits.assign(np.array([0.3, -1.0, 0.8], np.float32))
    locs, scales = prior.locs.numpy(), prior._scales().numpy()  # [K, L]
    weights = softmax(prior.logits.numpy())
    z = rng.normal(size=(6, 2)).astype(np.float32)  # 6 points for dims (3, 1)
    dims = (3, 1)
    got = prior.marginals(dims).log_prob(z).numpy()  # [6, 2]
    want = np.stack([logsumexp(np.log(weights) + st.norm.logpdf(z[:, [i]], locs[:, d], scales[:, d]), axis=1)
                     for i, d in enumerate(dims)], axis=1)
    assert prior.marginals(dims).batch_shape == (2,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    joint = prior.marginal(dims).log_prob(z).numpy()  # [6]
    want_joint = logsumexp(np.log(weights) + st.norm.logpdf(z[:, None, 0], locs[:, 3], scales[:, 3])
                           + st.norm.logpdf(z[:, None, 1], locs[:, 1], scales[:, 1]), axis=1)
    np.testing.assert_allclose(joint, want_joint, rtol=1e-5, atol=1e-5)
    assert prior.marginals().batch_shape == (4,)


def test_standard_normal_marginals_and_bad_dims(rng):
    prior = families.PRIORS["standard_normal"].build(3)
    z = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(prior.marginals().log_prob(z).numpy(), st.norm.logpdf(z), rtol=1e-5)
    np.testing.assert_allclose(prior.marginal((0, 2)).log_prob(z[:, [0, 2]]).numpy(),
                               st.norm.logpdf(z[:, [0, 2]]).sum(-1), rtol=1e-5)
    with pytest.raises(ValueError, match=r"latent dimensions must be a non-empty list in \[0, 2\]"):
        prior.marginals((3,))


def test_evaluation_prior_marginals_asks_the_prior_layer():
    from vae_tfp.evaluation import prior_marginals
    from vae_tfp.model import VAE

    model = VAE((4,), latent_dim=2, likelihood="gaussian", prior="mixture", prior_components=3)
    z = np.array([[0.3, -1.2]], np.float32)
    np.testing.assert_allclose(prior_marginals(model).log_prob(z).numpy(),
                               model.prior.marginal([0, 1]).log_prob(z).numpy())
    np.testing.assert_allclose(prior_marginals(model, [1]).log_prob(z[:, 1:]).numpy(),
                               model.prior.marginals([1]).log_prob(z[:, 1:]).numpy()[:, 0], rtol=1e-6)


def test_linear_gaussian_is_read_from_the_entries():
    from vae_tfp.evaluation import is_linear_gaussian
    from vae_tfp.model import VAE

    def model(**kw):
        return VAE((4,), **({"latent_dim": 2, "likelihood": "gaussian", "network": "linear"} | kw))

    assert is_linear_gaussian(model())
    assert not is_linear_gaussian(model(prior="mixture"))
    assert not is_linear_gaussian(model(network="mlp"))
    assert not is_linear_gaussian(model(likelihood="continuous_bernoulli"))


def test_network_entries_know_which_data_they_need():
    for family in families.NETWORKS.values():
        assert isinstance(family, NetworkFamily)
    with pytest.raises(ValueError, match="conv networks need images"):
        families.NETWORKS["conv"].layer_sizes((5,), 2, 4, 1, (8,))
    assert families.NETWORKS["conv"].images_only and families.NETWORKS["linear"].linear


def test_dataset_entries_have_words_a_kind_and_valid_defaults():
    from vae_tfp.config import RunConfig

    for name, info in DATASETS.items():
        assert info.name == name and info.description.strip() and info.kind in ("image", "points")
        RunConfig.from_dict(dict(info.defaults))  # whatever a data set suggests must be a valid config
