"""The registries: one entry per choice, importable without TensorFlow.

    likelihoods.LIKELIHOODS   p(x|z) families: what each models, the data representation it needs, decoder outputs
                              per data dimension, how a sample x' ~ p(x|z) looks
    priors.PRIORS             p(z) families: standard normal, diagonal Gaussian, mixture components, learnable
    posteriors.POSTERIORS     q(z|x) families: factorized, diagonal, encoder outputs n_params(latent)
    networks.NETWORKS         encoder/decoder architectures: images only, linear, parameter count from the data's shape
    (data sets keep their registry in `vae_tfp.datasets.registry.DATASETS`)

Each entry is a frozen dataclass holding the name, the words shown to people, the properties the rest of the library
branches on (never on a type or a name), and a lazy reference ("module:attribute") to its TensorFlow builder, which
is imported on first use. Config validation, the CLI's choices and the sidebar's widgets read these registries, so
adding a family is one entry here plus its builder.
"""

from vae_tfp.families import likelihoods, networks, posteriors, priors
from vae_tfp.families.likelihoods import LIKELIHOODS, SIGMA_MODES, LikelihoodFamily
from vae_tfp.families.networks import NETWORKS, NetworkFamily
from vae_tfp.families.posteriors import POSTERIORS, PosteriorFamily
from vae_tfp.families.priors import PRIORS, PriorFamily
from vae_tfp.families.reference import resolve

__all__ = [
    "LIKELIHOODS", "NETWORKS", "POSTERIORS", "PRIORS", "SIGMA_MODES", "LikelihoodFamily", "NetworkFamily",
    "PosteriorFamily", "PriorFamily", "likelihoods", "networks", "posteriors", "priors", "resolve",
]
