"""The VAE: prior p(z) + encoder (-> q(z|x)) + decoder (-> p(x|z)), each built from its registry entry in
`vae_tfp.families` (the model keeps the entries: `prior_family`, `posterior_family`, `likelihood_family`,
`network_family`, so callers branch on their properties, never on a type or a name).

    q(z|x) = posterior family(encoder(x))         batch [batch],          event [latent]
    z ~ q(z|x)                                    [samples, batch, latent]
    p(x|z) = likelihood(decoder(z))               batch [samples, batch], event [*event_shape]

Calling the model returns a `VAEOutput` that holds the distributions themselves, so callers take
`.mean()`, `.sample()` and `.log_prob()` of each. `build_vae` first checks the model's parameter count against
`vae_tfp.budget` (BudgetError, a ValueError, before any layer is built).
"""

from dataclasses import dataclass

import numpy as np

from vae_tfp import families
from vae_tfp._tf import keras, tf, tfd
from vae_tfp.likelihoods import LikelihoodHead
from vae_tfp.networks import seed_kernels


@dataclass
class VAEOutput:
    prior: tfd.Distribution  # p(z), event [latent]
    posterior: tfd.Distribution  # q(z|x), batch [batch]
    z: tf.Tensor  # [samples, batch, latent], drawn from q(z|x)
    likelihood: tfd.Distribution  # p(x|z), batch [samples, batch]


class VAE(keras.Model):
    """A VAE whose parts are distributions. Build it with `build_vae(config, event_shape, levels)`."""

    def __init__(
        self,
        event_shape,
        *,
        latent_dim: int,
        likelihood: str,
        levels: int | None = None,
        prior: str = "standard_normal",
        prior_components: int = 10,
        posterior: str = "diagonal",
        network: str = "mlp",
        hidden=(256, 128),
        sigma: float = 0.1,
        sigma_mode: str = "fixed",
        seed: int = 0,
    ):
        super().__init__(name="vae")
        self.event_shape = tuple(int(d) for d in event_shape)
        self.latent_dim = int(latent_dim)
        self.network = network
        self.prior_family = families.priors.get(prior)
        self.posterior_family = families.posteriors.get(posterior)
        self.network_family = families.networks.get(network)
        self.likelihood_head = LikelihoodHead(likelihood, self.event_shape, levels=levels, sigma=sigma,
                                              sigma_mode=sigma_mode)
        self.likelihood_family = self.likelihood_head.family
        # a prior built from the encoder (the VampPrior) calls this model's encode, bound late (the encoder comes below)
        needs = dict(event_shape=self.event_shape, encode=self.encode) if self.prior_family.needs_encoder else {}
        self.prior = self.prior_family.build(self.latent_dim, components=prior_components, seed=seed, **needs)
        self.encoder, self.decoder = self.network_family.build(
            self.event_shape, self.latent_dim, self.posterior_family.n_params(self.latent_dim),
            self.likelihood_head.params_per_dim, hidden)
        seed_kernels(self.encoder, (seed, 1))  # initial weights from the seed alone, not Keras' global seed
        seed_kernels(self.decoder, (seed, 2))
        self.built = True

    # --- the three distributions -------------------------------------------------------------------------
    def prior_distribution(self) -> tfd.Distribution:
        """p(z), event [latent]."""
        return self.prior.distribution()

    def encode(self, x) -> tfd.Distribution:
        """q(z|x) for x [batch, *event_shape]; batch shape [batch], event [latent]."""
        x = self._check_shape(x)
        return self.posterior_family.build(self.encoder(x), self.latent_dim)

    def decode(self, z) -> tfd.Distribution:
        """p(x|z) for z [..., latent]; batch shape [...], event [*event_shape]."""
        z = tf.convert_to_tensor(z, tf.float32)
        lead = tf.shape(z)[:-1]
        flat = tf.reshape(z, [-1, self.latent_dim])  # the decoder sees one batch dim
        params = self.decoder(flat)  # [n, *event, P]
        params = tf.reshape(params, tf.concat([lead, tf.shape(params)[1:]], axis=0))
        return self.likelihood_head.distribution(params)

    def decoder_mean(self, z):
        """E[x|z], what the decoder network says x should look like, [..., *event_shape]."""
        return self.likelihood_head.mean(self.decode(z))

    def call(self, x, n_samples: int = 1, seed=None) -> VAEOutput:
        """`seed`: a stateless seed (int32 [2]) for z ~ q(z|x); None draws from TF's global random state."""
        if tf.executing_eagerly():
            self.likelihood_head.check_support(np.asarray(x))
        posterior = self.encode(x)
        z = posterior.sample(n_samples, seed=seed)  # [samples, batch, latent]
        return VAEOutput(self.prior_distribution(), posterior, z, self.decode(z))

    # --- helpers -----------------------------------------------------------------------------------------
    @property
    def likelihood_name(self) -> str:
        return self.likelihood_head.kind

    def _check_shape(self, x):
        x = tf.convert_to_tensor(x, tf.float32)
        got = tuple(x.shape[1:])
        if x.shape.rank != len(self.event_shape) + 1 or got != self.event_shape:
            raise ValueError(
                f"x has shape {tuple(x.shape)}, but this model takes [batch, {', '.join(map(str, self.event_shape))}]"
            )
        return x


def build_vae(config, event_shape, levels: int | None = None) -> VAE:
    """Build the VAE described by a `RunConfig` for data of `event_shape` (and `levels` grey levels), after checking
    its parameter count against the budget (`vae_tfp.budget`: BudgetError, a ValueError, before anything is built;
    the memory of a training step is checked where training is set up, e.g. by the CLI and the sidebar)."""
    from vae_tfp.budget import check

    check(config, event_shape, levels, training=False)
    return VAE(
        event_shape,
        latent_dim=config.latent_dim,
        likelihood=config.likelihood,
        levels=levels,
        prior=config.prior,
        prior_components=config.prior_components,
        posterior=config.posterior,
        network=config.network,
        hidden=config.hidden,
        sigma=config.sigma,
        sigma_mode=config.sigma_mode,
        seed=config.seed,
    )
