"""The likelihood registry: one `LikelihoodFamily` per p(x|z), importable without TensorFlow.

An entry says what the family models (words for people), which representation of the data it needs ("binary",
"unit", "levels" or "real"; see `vae_tfp.datasets.representations`), how many decoder outputs it needs per data
dimension (given the data's K levels), whether it has a sigma, whether it is the Gaussian N(mean, sigma^2) of the
linear-Gaussian model, how a sample x' ~ p(x|z) looks, and where its TensorFlow builder lives:

    builder  "vae_tfp.likelihoods:bernoulli"   (params [..., *event, P], levels, sigma) -> per-dimension tfd
                                               distribution, batch [..., *event]
    mean     "vae_tfp.likelihoods:level_mean"  (per-dimension distribution, levels) -> E[x|z] [..., *event];
                                               None: the distribution's own mean()

A new likelihood is one entry here plus its builder in `vae_tfp/likelihoods.py` (and its tests).
"""

import math
from dataclasses import dataclass

from vae_tfp.families.reference import lookup, resolve

# Gaussian sigma: given by the user, one learned value, or one learned value per data dimension.
SIGMA_MODES = {"fixed": "fixed", "shared": "learned, shared", "per_dim": "learned per dimension"}


@dataclass(frozen=True)
class LikelihoodFamily:
    name: str
    words: str  # what it models, for people: "binary pixels; grey data is binarized first"
    representation: str  # the data it needs: "binary", "unit", "levels" or "real"
    sample: str  # how a sample x' ~ p(x|z) looks, for people
    builder: str  # lazy reference to the TensorFlow builder (see the module docstring)
    params: int = 1  # decoder outputs per data dimension (unless params_per_level)
    params_per_level: bool = False  # one decoder output per level K (a softmax over levels)
    needs_levels: bool = False  # needs the data's number of levels K >= 2
    has_sigma: bool = False  # owns a sigma (fixed or learned, see SIGMA_MODES)
    gaussian: bool = False  # p(x|z) = N(decoder output, sigma^2) per dimension: the linear-Gaussian model's
    mean: str | None = None  # lazy reference to E[x|z]; None: the per-dimension distribution's mean()

    def params_per_dim(self, levels: int | None = None) -> int:
        """Decoder outputs per data dimension."""
        if self.needs_levels and (levels is None or int(levels) < 2):
            raise ValueError(f"{self.name} needs the number of intensity levels K >= 2, got {levels!r}")
        return int(levels) if self.params_per_level else self.params

    def head_params(self, event_shape, sigma_mode: str = "fixed") -> int:
        """Trainable parameters p(x|z) holds beyond the decoder's outputs: a learned sigma (shared or per dim)."""
        lookup("sigma_mode", sigma_mode, SIGMA_MODES)
        if not self.has_sigma or sigma_mode == "fixed":
            return 0
        return 1 if sigma_mode == "shared" else math.prod(int(d) for d in event_shape)

    def build(self, params, levels, sigma):
        """The per-dimension distribution from decoder outputs (imports TensorFlow on first use)."""
        return resolve(self.builder)(params, levels, sigma)

    def mean_of(self, distribution, levels):
        """E[x|z] of the per-dimension distribution, [..., *event]."""
        return distribution.mean() if self.mean is None else resolve(self.mean)(distribution, levels)


LIKELIHOODS: dict[str, LikelihoodFamily] = {f.name: f for f in (
    LikelihoodFamily(
        "bernoulli", "binary pixels; grey data is binarized first", "binary",
        "each pixel is 0 or 1 with probability E[x|z], so the sample is a speckled black-and-white image",
        "vae_tfp.likelihoods:bernoulli"),
    LikelihoodFamily(
        "continuous_bernoulli", "intensities in [0, 1] (the normalised fix for a Bernoulli on grey pixels)", "unit",
        "each pixel is drawn from a continuous Bernoulli on [0, 1] with the decoder's parameter",
        "vae_tfp.likelihoods:continuous_bernoulli"),
    LikelihoodFamily(
        "gaussian", "real values (points as they are, pixels scaled to [0, 1]); sigma fixed or learned", "real",
        "each value is E[x|z] plus Gaussian noise of standard deviation sigma, so the sample is visibly noisy",
        "vae_tfp.likelihoods:gaussian", has_sigma=True, gaussian=True),
    LikelihoodFamily(
        "categorical", "K intensity levels per pixel, a softmax over levels", "levels",
        "each pixel is one of K levels, drawn from the decoder's softmax",
        "vae_tfp.likelihoods:categorical", params_per_level=True, needs_levels=True,
        mean="vae_tfp.likelihoods:level_mean"),
    LikelihoodFamily(
        "discretized_logistic", "K intensity levels per pixel as a quantized logistic", "levels",
        "each pixel is one of K levels, drawn from a quantized logistic around the decoder's mean",
        "vae_tfp.likelihoods:discretized_logistic", params=2, needs_levels=True,
        mean="vae_tfp.likelihoods:level_mean"),
)}


def get(name: str) -> LikelihoodFamily:
    """The registry entry of a likelihood; ValueError naming the allowed names."""
    return lookup("likelihood", name, LIKELIHOODS)
