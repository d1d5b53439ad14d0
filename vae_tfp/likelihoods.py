"""Likelihoods p(x|z): the TensorFlow builders of the families in `vae_tfp.families.likelihoods`.

The registry entry (TF-free) says what a family models, the data representation it needs and how many decoder
outputs it needs per data dimension; this module turns those outputs into a `tfd` distribution. The decoder emits
`params` of shape [..., *event_shape, params_per_dim]; `make_likelihood` wraps the per-dimension distribution in
`tfd.Independent` over the event dims, so `log_prob(x)` is [...] (e.g. [batch] or [samples, batch]).

    bernoulli             x in {0, 1}:        p(x|z) = prod_d lam_d^x_d (1 - lam_d)^(1 - x_d),  lam = sigmoid(logits)
    continuous_bernoulli  x in [0, 1]:        p(x|z) = prod_d C(lam_d) lam_d^x_d (1 - lam_d)^(1 - x_d)
    gaussian              x real:             p(x|z) = prod_d N(x_d; mu_d, sigma^2), sigma fixed or learned
    categorical           x in {0..K-1}:      p(x|z) = prod_d softmax(logits_d)[x_d]
    discretized_logistic  x in {0..K-1}:      p(x|z) = prod_d [F((x_d + 1/2 - mu_d)/s_d) - F((x_d - 1/2 - mu_d)/s_d)],
                                              edge bins take the tails; F the logistic CDF
"""

import numpy as np

from vae_tfp._tf import keras, tf, tfd
from vae_tfp.families.likelihoods import SIGMA_MODES, LikelihoodFamily
from vae_tfp.families.likelihoods import get as get_spec  # name -> registry entry (ValueError if unknown)

MIN_SCALE = 1e-3


# --- builders: (params [..., *event, P], levels, sigma) -> per-dimension distribution, batch [..., *event] -------
def bernoulli(params, levels, sigma):
    return tfd.Bernoulli(logits=params[..., 0], dtype=tf.float32)


def continuous_bernoulli(params, levels, sigma):
    return tfd.ContinuousBernoulli(logits=params[..., 0])


def gaussian(params, levels, sigma):
    return tfd.Normal(loc=params[..., 0], scale=sigma)


def categorical(params, levels, sigma):
    return tfd.Categorical(logits=params, dtype=tf.float32)


def discretized_logistic(params, levels, sigma):
    # loc in [0, K-1] level units; scale starts near K/16 levels.
    top = float(levels - 1)
    loc = top * tf.sigmoid(params[..., 0])
    scale = MIN_SCALE + tf.nn.softplus(params[..., 1]) * (levels / 16.0)
    # QuantizedDistribution puts P(j - 1 < X <= j) on j; shifting X by -1/2 centres bin j on j.
    return tfd.QuantizedDistribution(tfd.Logistic(loc=loc - 0.5, scale=scale), low=0.0, high=top)


def level_mean(dist, levels):
    # E[x] = sum_j j P(x = j), evaluated over all K levels -> [..., *event]
    grid = tf.reshape(tf.range(levels, dtype=tf.float32), [levels] + [1] * len(dist.batch_shape))
    probs = dist.prob(grid)  # [K, ..., *event]
    return tf.tensordot(tf.range(levels, dtype=tf.float32), probs, axes=[[0], [0]])


def make_likelihood(kind: str, params, event_shape, *, levels: int | None = None, sigma=None) -> tfd.Distribution:
    """p(x|z) from decoder outputs `params` [..., *event_shape, P]: `tfd.Independent` over the event dims."""
    family = get_spec(kind)
    event_shape = tuple(event_shape)
    expected = tuple(event_shape) + (family.params_per_dim(levels),)
    got = tuple(params.shape[-len(expected):])
    if got != expected:
        raise ValueError(f"{kind} needs decoder outputs ending in {expected}, got {tuple(params.shape)}")
    base = family.build(params, levels, sigma)
    return tfd.Independent(base, reinterpreted_batch_ndims=len(event_shape))


class LikelihoodHead(keras.layers.Layer):
    """Holds what p(x|z) owns beyond the decoder's outputs (a learned sigma) and builds the distribution.

    sigma_mode: "fixed" (sigma given by the user), "shared" (one learned sigma), "per_dim" (one learned sigma per
    data dimension). Only families whose entry says `has_sigma` (the gaussian) have one.
    """

    def __init__(self, kind: str, event_shape, *, levels=None, sigma: float = 0.1, sigma_mode: str = "fixed", **kw):
        super().__init__(name="likelihood", **kw)
        self.family: LikelihoodFamily = get_spec(kind)
        self.kind = kind
        self.event_shape = tuple(int(d) for d in event_shape)
        self.family.params_per_dim(levels)  # ValueError unless the levels it needs are given
        self.levels = int(levels) if levels is not None else None
        if sigma_mode not in SIGMA_MODES:
            raise ValueError(f"unknown sigma_mode {sigma_mode!r}; allowed: {', '.join(SIGMA_MODES)}")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        self.sigma_mode = sigma_mode
        self.fixed_sigma = float(sigma)
        self.raw_sigma = None
        if self.family.has_sigma and sigma_mode != "fixed":
            shape = () if sigma_mode == "shared" else self.event_shape
            inverse_softplus = float(np.log(np.expm1(max(sigma - MIN_SCALE, 1e-6))))
            self.raw_sigma = self.add_weight(
                shape=shape, initializer=keras.initializers.Constant(inverse_softplus), name="raw_sigma"
            )

    @property
    def params_per_dim(self) -> int:
        return self.family.params_per_dim(self.levels)

    @property
    def representation(self) -> str:
        return self.family.representation

    def sigma(self):
        """The Gaussian's sigma: a scalar, or [*event_shape] when learned per dimension; None without one."""
        if not self.family.has_sigma:
            return None
        if self.raw_sigma is None:
            return tf.constant(self.fixed_sigma)
        return MIN_SCALE + tf.nn.softplus(self.raw_sigma)

    def distribution(self, params) -> tfd.Distribution:
        return make_likelihood(self.kind, params, self.event_shape, levels=self.levels, sigma=self.sigma())

    def mean(self, likelihood: tfd.Distribution):
        """E[x|z], the decoder's mean, [..., *event_shape]."""
        return self.family.mean_of(likelihood.distribution, self.levels)

    def check_support(self, x) -> None:
        """Raise ValueError if x lies outside this likelihood's support (no silent clipping)."""
        check_data(self.kind, x, levels=self.levels)


def check_data(kind: str, x, *, levels: int | None = None) -> None:
    """ValueError naming the first value of `x` that `kind` cannot model, and what is allowed."""
    from vae_tfp.data import check_support

    family = get_spec(kind)
    try:
        check_support(np.asarray(x), family.representation, levels=levels)
    except ValueError as err:
        raise ValueError(f"{kind} likelihood: {err}") from None
