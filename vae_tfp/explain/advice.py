"""Whether and how a likelihood fits a data set, in words: the advice the dashboard's sidebar shows under the
likelihood and the command line can print. No TensorFlow.

    fit_report(dataset, likelihood, binarization) -> FitReport(level, message, note)
    training_warnings(config, sigma, train_elbos, dims, baseline) -> [sentences]   a training that "completed" into
                                                                          numbers that mean nothing
    uniform_baseline(representation, dims, levels) -> nats or None        the ELBO of a model that ignores z

level is "" (fits as it is), "info" (fits after a conversion worth knowing) or "error" (does not fit: the likelihood
cannot model this data); message says why and what to pick instead; note is `prepare`'s own account of what is done
to the data (empty on an error).
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from vae_tfp import families
from vae_tfp.data import BINARIZATIONS, Dataset, prepare
from vae_tfp.explain.data import representation as representation_of

FEW = 20  # the note does not depend on the data set's size: a few examples are prepared
MANY_LEVELS = 32  # above this many grey levels a per-level likelihood is worth a word


class FitReport(NamedTuple):
    level: str  # "", "info" or "error"
    message: str  # markdown
    note: str  # what is done to the data (from `prepare`)


def fit_report(dataset: Dataset, likelihood: str, binarization: str = "dynamic") -> FitReport:
    """How `dataset` is turned into what `likelihood` models, and whether that fits (see the module docstring)."""
    representation = representation_of(likelihood)
    k = min(FEW, len(dataset.x_train), len(dataset.x_test))
    few = dataclasses.replace(dataset, x_train=dataset.x_train[:k], x_test=dataset.x_test[:k],
                              y_train=None if dataset.y_train is None else dataset.y_train[:k],
                              y_test=None if dataset.y_test is None else dataset.y_test[:k])
    try:
        note = prepare(few, representation, binarization=binarization).note
    except ValueError as err:
        return FitReport("error", f"{err} Pick **gaussian** for {dataset.name}.", "")
    if dataset.kind != "image":
        return FitReport("", "", note)
    if representation == "binary" and dataset.levels > 2:
        return FitReport("info", f"**{dataset.name}** has {dataset.levels} grey levels; the Bernoulli likelihood "
                                 f"models binary pixels, so images are binarized ({BINARIZATIONS[binarization]}). "
                                 "Pick **continuous_bernoulli** to model grey values.", note)
    if representation == "levels" and dataset.levels > MANY_LEVELS:
        extra = (f" The categorical needs {dataset.levels} decoder outputs per pixel, so it trains slower than the "
                 "others." if likelihood == "categorical" else "")
        return FitReport("info", f"**{dataset.name}** has {dataset.levels} grey levels per pixel, each modelled as "
                                 f"one of {dataset.levels} values.{extra}", note)
    if representation == "real":
        sample = families.likelihoods.get(likelihood).sample
        return FitReport("info", "Pixels are treated as real numbers: log p(x|z) is a density (it can be positive) "
                                 "and is not comparable with the discrete likelihoods. A sample x ~ p(x|z): "
                                 f"{sample}.", note)
    return FitReport("", "", note)


MIN_SIGMA = 5e-3  # a learned Gaussian sigma below this (its floor is likelihoods.MIN_SCALE = 1e-3) ran away
BLOWN_UP_PER_DIM = 1e4  # a train ELBO below -1e4 nats per data dimension: the optimisation blew up


def uniform_baseline(representation: str, dims: int, levels: int | None = None) -> float | None:
    """The ELBO (nats per example) of a model that ignores z and gives every value the same probability, with
    q(z|x) = p(z) (KL = 0): -D log 2 for D binary values, -D log K for K levels, 0 for intensities in [0, 1] (the
    uniform density, a continuous Bernoulli with parameter 1/2); None for real values (no uniform distribution over
    the real line). Any training worth the name ends above it."""
    if representation == "binary":
        return -dims * float(np.log(2))
    if representation == "levels" and levels is not None and int(levels) >= 2:
        return -dims * float(np.log(int(levels)))
    if representation == "unit":
        return 0.0
    return None


def training_warnings(config, sigma, train_elbos, dims: int, baseline: float | None = None) -> list[str]:
    """Sentences for a training whose numbers mean nothing though it ran to the end: a learned Gaussian sigma that
    collapsed towards 0 (the likelihood is unbounded: on (near-)constant data log p(x|z) -> +inf, so the ELBO climbs
    without limit), or a train ELBO that blew up: not finite, or far below any sensible value (below -1e4 nats per
    value; far below `baseline`, the ELBO of a model that ignores z: `uniform_baseline`), or ending far below the
    best it reached (usually a learning rate too large), or below `baseline` at all (nothing learned yet).
    `sigma`: the learned sigma's values (None when fixed or absent); `train_elbos`: the history's train ELBOs in
    order; `dims`: values per example. "Far below" a reference r: more than |r| / 2 + dims nats under it (a fresh
    model's KL and a short training's noise stay well inside)."""
    out = []
    if sigma is not None:
        smallest = float(np.min(sigma))
        if smallest < MIN_SIGMA:
            out.append(f"The learned sigma fell to {smallest:.2g} (it cannot go below 0.001): a Gaussian whose sigma "
                       "can shrink has an unbounded likelihood (on data that is constant, or nearly, in some "
                       "dimension, log p(x|z) grows towards +infinity as sigma -> 0, held back only by that floor), "
                       "so this ELBO and any log p(x) from it mean nothing. Fix sigma (sigma is: fixed), or add "
                       "noise to constant data.")
    elbos = [float(e) for e in train_elbos if e is not None]
    if not elbos:
        return out
    dims = max(1, int(dims))
    last, best = elbos[-1], max((e for e in elbos if np.isfinite(e)), default=float("nan"))

    def far_below(reference: float) -> bool:
        return last < reference - (0.5 * abs(reference) + dims)

    if not np.isfinite(last) or last < -BLOWN_UP_PER_DIM * dims:
        out.append(f"Training blew up: the final train ELBO is {last:.4g} nats ({last / dims:.3g} per value). With a "
                   f"learning rate of {config.lr:g} the steps are probably far too large; try 1e-3.")
    elif baseline is not None and far_below(baseline):
        out.append(f"Training went wrong: the final train ELBO is {last:.4g} nats, far below {baseline:.4g}, what a "
                   "model that ignores z and gives every value the same probability reaches. The numbers of this "
                   f"run mean nothing; with a learning rate of {config.lr:g} the steps are probably too large "
                   "(try 1e-3).")
    elif len(elbos) > 2 and far_below(best):
        out.append(f"The train ELBO got much worse during training ({best:.4g} at its best, {last:.4g} at the end): "
                   f"the optimisation went astray (learning rate {config.lr:g}?).")
    elif baseline is not None and last < baseline:
        out.append(f"The final train ELBO ({last:.4g} nats) is below {baseline:.4g}, what a model that ignores z and "
                   "gives every value the same probability reaches: this model has learned nothing useful yet (too "
                   f"few steps, or a learning rate of {config.lr:g} too large or too small).")
    return out


def learned_sigma(model):
    """The model's learned Gaussian sigma as numpy (None when sigma is fixed or there is none)."""
    head = model.likelihood_head
    return None if getattr(head, "raw_sigma", None) is None else np.asarray(head.sigma())


def run_warnings(model, config, records, event_shape) -> list[str]:
    """`training_warnings` for a trained model and its history records, against the uniform baseline of the data
    representation its likelihood models."""
    elbos = [r.get("elbo") for r in records if r.get("kind") == "train"]
    dims = int(np.prod(event_shape))
    baseline = uniform_baseline(model.likelihood_family.representation, dims, model.likelihood_head.levels)
    return training_warnings(config, learned_sigma(model), elbos, dims, baseline)
