"""Approximate posteriors q(z|x), built from the encoder's raw outputs [batch, n_params].

    diagonal:  q(z|x) = N(loc(x), diag(scale(x)^2)),   scale = softplus(raw) + 1e-5      (2 L outputs)
    full:      q(z|x) = N(loc(x), L(x) L(x)^T),        L lower-triangular, positive diag  (L + L (L + 1) / 2 outputs)

Both have batch shape [batch] and event shape [latent_dim].
"""

from collections.abc import Callable
from dataclasses import dataclass

from vae_tfp._tf import tf, tfb, tfd
from vae_tfp.errors import choose

MIN_SCALE = 1e-5


@dataclass(frozen=True)
class PosteriorSpec:
    name: str
    n_params: Callable[[int], int]  # latent_dim -> encoder outputs
    build: Callable  # (raw [..., n_params], latent_dim) -> tfd distribution, event [latent_dim]
    factorized: bool  # q(z|x) is a product over latent dimensions


def diagonal_gaussian(raw, latent_dim: int) -> tfd.Distribution:
    loc, raw_scale = raw[..., :latent_dim], raw[..., latent_dim:]
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.nn.softplus(raw_scale) + MIN_SCALE)


def full_covariance_gaussian(raw, latent_dim: int) -> tfd.Distribution:
    loc, raw_tril = raw[..., :latent_dim], raw[..., latent_dim:]
    scale_tril = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=MIN_SCALE)(raw_tril)
    return tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)


POSTERIORS = {
    "diagonal": PosteriorSpec("diagonal", lambda d: 2 * d, diagonal_gaussian, factorized=True),
    "full": PosteriorSpec("full", lambda d: d + d * (d + 1) // 2, full_covariance_gaussian, factorized=False),
}


def get_posterior(kind: str) -> PosteriorSpec:
    return choose("posterior", kind, POSTERIORS)
