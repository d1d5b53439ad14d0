"""The prior registry: one `PriorFamily` per p(z), importable without TensorFlow.

Properties the library branches on instead of the prior's type:
    standard_normal     p(z) = N(0, I) exactly (with a linear decoder and a Gaussian likelihood: exact log p(x))
    diagonal_gaussian   p(z) is one Gaussian with diagonal covariance (then KL(q || p) splits over dimensions
                        when q is diagonal too)
    mixture             p(z) = sum_k pi_k N(mu_k, diag(sigma_k^2)) over `prior_components` components
    learnable           p(z) has trainable parameters
    needs_encoder       p(z) is built from the model's own encoder (the VampPrior: a mixture of q(z|u_k) over
                        learned pseudo-inputs u_k shaped like the data); its builder takes event_shape and encode

builder: lazy reference to a function (latent_dim, components=..., seed=..., [event_shape=..., encode=...]) -> a
`vae_tfp.priors.Prior` layer.
"""

from dataclasses import dataclass

from vae_tfp.families.reference import lookup, resolve


@dataclass(frozen=True)
class PriorFamily:
    name: str
    words: str  # shown in a choice: "standard normal N(0, I)"
    help: str  # one line on what it is
    builder: str
    standard_normal: bool = False
    diagonal_gaussian: bool = False
    mixture: bool = False
    learnable: bool = False
    needs_encoder: bool = False

    def n_params(self, latent_dim: int, components: int = 1, event_size: int = 0) -> int:
        """Trainable parameters: a Gaussian mixture holds K x L locations, K x L scales and K mixture logits; the
        VampPrior K pseudo-inputs of `event_size` values each (the encoder it uses is the model's)."""
        if self.needs_encoder:
            return int(components) * int(event_size)
        return (2 * int(components) * int(latent_dim) + int(components)) if self.mixture else 0

    def build(self, latent_dim: int, **options):
        """The `Prior` layer (imports TensorFlow on first use); options: components, seed."""
        return resolve(self.builder)(latent_dim, **options)


PRIORS: dict[str, PriorFamily] = {f.name: f for f in (
    PriorFamily("standard_normal", "standard normal N(0, I)", "p(z) = N(0, I), no parameters",
                "vae_tfp.priors:standard_normal", standard_normal=True, diagonal_gaussian=True),
    PriorFamily("mixture", "mixture of Gaussians (learned)",
                "p(z) = sum_k pi_k N(mu_k, diag sigma_k^2): K learned components with diagonal covariance",
                "vae_tfp.priors:mixture_of_gaussians", mixture=True, learnable=True),
    PriorFamily("vamp", "VampPrior: mixture of q(z|u_k) over learned pseudo-inputs",
                "p(z) = (1/K) sum_k q(z|u_k): the encoder's own posteriors at K learned pseudo-inputs u_k "
                "(Tomczak & Welling 2018); KL(q || p) by Monte Carlo",
                "vae_tfp.priors:vamp", mixture=True, learnable=True, needs_encoder=True),
)}


def get(name: str) -> PriorFamily:
    """The registry entry of a prior; ValueError naming the allowed names."""
    return lookup("prior", name, PRIORS)
