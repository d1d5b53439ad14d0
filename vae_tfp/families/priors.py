"""The prior registry: one `PriorFamily` per p(z), importable without TensorFlow.

Properties the library branches on instead of the prior's type:
    standard_normal     p(z) = N(0, I) exactly (with a linear decoder and a Gaussian likelihood: exact log p(x))
    diagonal_gaussian   p(z) is one Gaussian with diagonal covariance (then KL(q || p) splits over dimensions
                        when q is diagonal too)
    mixture             p(z) = sum_k pi_k N(mu_k, diag(sigma_k^2)) over `prior_components` components
    learnable           p(z) has trainable parameters

builder: lazy reference to a function (latent_dim, components=..., seed=...) -> a `vae_tfp.priors.Prior` layer.
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

    def n_params(self, latent_dim: int, components: int = 1) -> int:
        """Trainable parameters: a mixture holds K x L locations, K x L scales and K mixture logits."""
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
)}


def get(name: str) -> PriorFamily:
    """The registry entry of a prior; ValueError naming the allowed names."""
    return lookup("prior", name, PRIORS)
