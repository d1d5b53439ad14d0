"""Priors p(z): the TensorFlow side of the families in `vae_tfp.families.priors`. Each is a Keras layer whose
`distribution()` returns a `tfd` distribution over z and whose `marginals(dims)` returns its one-dimensional
marginals, so no caller needs to know which prior it holds.

- `standard_normal`:      p(z) = N(0, I)
- `mixture_of_gaussians`: p(z) = sum_k pi_k N(mu_k, diag(sigma_k^2)), with mu, sigma, pi trainable

Every prior's distribution has batch shape [] and event shape [latent_dim]; marginals(dims) has batch shape
[len(dims)] and event shape []; marginal(dims) (the joint over a few dimensions) has event shape [len(dims)].
"""

from vae_tfp._tf import keras, tf, tfd
from vae_tfp.families.priors import get as get_family


class Prior(keras.layers.Layer):
    """Base class: holds the prior's parameters (if any) and builds p(z) and its marginals on demand."""

    def __init__(self, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        self.latent_dim = int(latent_dim)

    def distribution(self) -> tfd.Distribution:
        """p(z), event [latent_dim]."""
        raise NotImplementedError

    def marginals(self, dims=None) -> tfd.Distribution:
        """p(z_j) for each j in `dims` (default: every dimension): one-dimensional distributions, batch [len(dims)]."""
        raise NotImplementedError

    def marginal(self, dims) -> tfd.Distribution:
        """p(z_dims), the joint marginal over the latent dimensions `dims`, event [len(dims)]."""
        raise NotImplementedError

    def _dims(self, dims) -> list[int]:
        dims = list(range(self.latent_dim)) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < self.latent_dim]
        if bad or not dims:
            raise ValueError(f"latent dimensions must be a non-empty list in [0, {self.latent_dim - 1}], got {dims}")
        return dims


class StandardNormal(Prior):
    """p(z) = N(0, I): no parameters."""

    def distribution(self) -> tfd.Distribution:
        zeros = tf.zeros([self.latent_dim])
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))

    def marginals(self, dims=None) -> tfd.Distribution:
        zeros = tf.zeros([len(self._dims(dims))])  # [d]
        return tfd.Normal(zeros, tf.ones_like(zeros))

    def marginal(self, dims) -> tfd.Distribution:
        zeros = tf.zeros([len(self._dims(dims))])
        return tfd.MultivariateNormalDiag(loc=zeros, scale_diag=tf.ones_like(zeros))


class MixtureOfGaussians(Prior):
    """p(z) = sum_k softmax(logits)_k N(loc_k, diag(softplus(raw_scale_k)^2)), K components, all trainable.

    The components are diagonal, so a marginal over some dimensions keeps those coordinates of each component
    with the same weights: p(z_j) = sum_k pi_k N(loc_kj, scale_kj^2)."""

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

    def _scales(self):
        return tf.nn.softplus(self.raw_scales) + 1e-4  # [K, latent]

    def distribution(self) -> tfd.Distribution:
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=self.logits),
            components_distribution=tfd.MultivariateNormalDiag(loc=self.locs, scale_diag=self._scales()),
        )

    def marginals(self, dims=None) -> tfd.Distribution:
        dims = self._dims(dims)
        loc = tf.transpose(tf.gather(self.locs, dims, axis=1))  # [d, K]
        scale = tf.transpose(tf.gather(self._scales(), dims, axis=1))  # [d, K]
        logits = tf.broadcast_to(self.logits, tf.shape(loc))  # [d, K]: the same weights for every dimension
        return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Normal(loc, scale))

    def marginal(self, dims) -> tfd.Distribution:
        dims = self._dims(dims)
        loc = tf.gather(self.locs, dims, axis=1)  # [K, d]
        scale = tf.gather(self._scales(), dims, axis=1)
        return tfd.MixtureSameFamily(tfd.Categorical(logits=self.logits), tfd.MultivariateNormalDiag(loc, scale))


def standard_normal(latent_dim: int, **_) -> StandardNormal:
    return StandardNormal(latent_dim, name="prior")


def mixture_of_gaussians(latent_dim: int, components: int = 10, seed: int = 0, **_) -> MixtureOfGaussians:
    return MixtureOfGaussians(latent_dim, components=components, seed=seed, name="prior")


def make_prior(kind: str, latent_dim: int, **options) -> Prior:
    """Build the prior named `kind` from its registry entry (`vae_tfp.families.priors.PRIORS`)."""
    return get_family(kind).build(latent_dim, **options)
