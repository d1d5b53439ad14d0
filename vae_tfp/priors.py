"""Priors p(z), each a Keras layer whose `distribution()` returns a `tfd` distribution over z.

- `standard_normal`:      p(z) = N(0, I)
- `mixture_of_gaussians`: p(z) = sum_k pi_k N(mu_k, diag(sigma_k^2)), with mu, sigma, pi trainable

Every prior's distribution has batch shape [] and event shape [latent_dim].
"""

from vae_tfp._tf import keras, tf, tfd
from vae_tfp.errors import choose


class Prior(keras.layers.Layer):
    """Base class: holds the prior's parameters (if any) and builds p(z) on demand."""

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        self.latent_dim = int(latent_dim)

    def distribution(self) -> tfd.Distribution:
        raise NotImplementedError


class StandardNormal(Prior):
    """p(z) = N(0, I): no parameters."""

    def distribution(self) -> tfd.Distribution:
        zeros = tf.zeros([self.latent_dim])
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))


class MixtureOfGaussians(Prior):
    """p(z) = sum_k softmax(logits)_k N(loc_k, diag(softplus(raw_scale_k)^2)), K components, all trainable."""

    def __init__(self, latent_dim: int, components: int = 10, seed: int = 0, **kwargs):
        super().__init__(latent_dim, **kwargs)
        if int(components) < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        self.components = int(components)
        init = keras.initializers.RandomNormal(stddev=1.0, seed=seed)
        self.locs = self.add_weight(shape=(self.components, self.latent_dim), initializer=init, name="locs")
        # softplus(0.5413) = 1: components start with unit scale
        self.raw_scales = self.add_weight(
            shape=(self.components, self.latent_dim), initializer=keras.initializers.Constant(0.5413), name="raw_scales"
        )
        self.logits = self.add_weight(shape=(self.components,), initializer="zeros", name="logits")

    def distribution(self) -> tfd.Distribution:
        scales = tf.nn.softplus(self.raw_scales) + 1e-4  # [K, latent]
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=self.logits),
            components_distribution=tfd.MultivariateNormalDiag(loc=self.locs, scale_diag=scales),
        )


def standard_normal(latent_dim: int, **_) -> StandardNormal:
    return StandardNormal(latent_dim, name="prior")


def mixture_of_gaussians(latent_dim: int, components: int = 10, seed: int = 0, **_) -> MixtureOfGaussians:
    return MixtureOfGaussians(latent_dim, components=components, seed=seed, name="prior")


PRIORS = {"standard_normal": standard_normal, "mixture": mixture_of_gaussians}


def make_prior(kind: str, latent_dim: int, **options) -> Prior:
    """Build the prior named `kind` (see PRIORS)."""
    return choose("prior", kind, PRIORS)(latent_dim, **options)
