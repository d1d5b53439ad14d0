"""The approximate-posterior registry: one `PosteriorFamily` per q(z|x), importable without TensorFlow.

    factorized   q(z|x) is a product over latent dimensions
    diagonal     q(z|x) = N(mu(x), diag sigma(x)^2) (with a diagonal-Gaussian prior, KL per dimension in closed form)
    n_params     encoder outputs for a latent of dimension L: 2 L (diagonal), L + L (L + 1) / 2 (full covariance)

builder: lazy reference to a function (raw [..., n_params], latent_dim) -> tfd distribution, event [latent_dim].
"""

from collections.abc import Callable
from dataclasses import dataclass

from vae_tfp.families.reference import lookup, resolve


@dataclass(frozen=True)
class PosteriorFamily:
    name: str
    words: str  # shown in a choice
    help: str
    builder: str
    n_params: Callable[[int], int]  # latent_dim -> encoder outputs
    factorized: bool = False
    diagonal: bool = False

    def build(self, raw, latent_dim: int):
        """q(z|x) from the encoder's raw outputs (imports TensorFlow on first use)."""
        return resolve(self.builder)(raw, latent_dim)


def _diagonal_params(latent_dim: int) -> int:
    return 2 * latent_dim  # loc, raw scale


def _full_params(latent_dim: int) -> int:
    return latent_dim + latent_dim * (latent_dim + 1) // 2  # loc, the lower triangle of L


POSTERIORS: dict[str, PosteriorFamily] = {f.name: f for f in (
    PosteriorFamily("diagonal", "diagonal Gaussian N(mu(x), diag sigma(x)^2)",
                    "independent Gaussian per latent dimension", "vae_tfp.posteriors:diagonal_gaussian",
                    _diagonal_params, factorized=True, diagonal=True),
    PosteriorFamily("full", "full-covariance Gaussian N(mu(x), L(x) L(x)^T)",
                    "correlated Gaussian: a lower-triangular scale per image",
                    "vae_tfp.posteriors:full_covariance_gaussian", _full_params),
)}


def get(name: str) -> PosteriorFamily:
    """The registry entry of a posterior; ValueError naming the allowed names."""
    return lookup("posterior", name, POSTERIORS)
