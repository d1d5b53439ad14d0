"""Approximate posteriors q(z|x): the TensorFlow builders of the families in `vae_tfp.families.posteriors`, each
turning the encoder's raw outputs [batch, n_params] into a distribution.

    diagonal:  q(z|x) = N(loc(x), diag(scale(x)^2)),   scale = softplus(raw) + 1e-5      (2 L outputs)
    full:      q(z|x) = N(loc(x), L(x) L(x)^T),        L lower-triangular, positive diag  (L + L (L + 1) / 2 outputs)

Both have batch shape [batch] and event shape [latent_dim].
"""

from vae_tfp._tf import tf, tfb, tfd

MIN_SCALE = 1e-5


def diagonal_gaussian(raw, latent_dim: int) -> tfd.Distribution:
    loc, raw_scale = raw[..., :latent_dim], raw[..., latent_dim:]
    return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.nn.softplus(raw_scale) + MIN_SCALE)


def full_covariance_gaussian(raw, latent_dim: int) -> tfd.Distribution:
    loc, raw_tril = raw[..., :latent_dim], raw[..., latent_dim:]
    scale_tril = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=MIN_SCALE)(raw_tril)
    return tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale_tril)
