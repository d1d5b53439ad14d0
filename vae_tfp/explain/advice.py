"""Whether and how a likelihood fits a data set, in words: the advice the dashboard's sidebar shows under the
likelihood and the command line can print. No TensorFlow.

    fit_report(dataset, likelihood, binarization) -> FitReport(level, message, note)
    training_warnings(config, sigma, train_elbos, dims) -> [sentences]   a training that "completed" into numbers
                                                                          that mean nothing

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


def training_warnings(config, sigma, train_elbos, dims: int) -> list[str]:
    """Sentences for a training whose numbers mean nothing though it ran to the end: a learned Gaussian sigma that
    collapsed towards 0 (the likelihood is unbounded: on (near-)constant data log p(x|z) -> +inf, so the ELBO climbs
    without limit), or a train ELBO that blew up (far below any sensible value, or ending far below where it
    started: usually a learning rate too large). `sigma`: the learned sigma's values (None when fixed or absent);
    `train_elbos`: the history's train ELBOs in order; `dims`: values per example."""
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
    if elbos:
        last = elbos[-1]
        if not np.isfinite(last) or last < -BLOWN_UP_PER_DIM * max(1, int(dims)):
            out.append(f"Training blew up: the final train ELBO is {last:.4g} nats ({last / max(1, dims):.3g} per "
                       f"value). With a learning rate of {config.lr:g} the steps are probably far too large; try "
                       "1e-3.")
        elif len(elbos) > 2 and last < elbos[0] - 0.5 * (abs(elbos[0]) + dims):
            out.append(f"The train ELBO got much worse during training ({elbos[0]:.4g} at the start, {last:.4g} at "
                       f"the end): the optimisation went astray (learning rate {config.lr:g}?).")
    return out


def learned_sigma(model):
    """The model's learned Gaussian sigma as numpy (None when sigma is fixed or there is none)."""
    head = model.likelihood_head
    return None if getattr(head, "raw_sigma", None) is None else np.asarray(head.sigma())


def run_warnings(model, config, records, event_shape) -> list[str]:
    """`training_warnings` for a trained model and its history records."""
    elbos = [r.get("elbo") for r in records if r.get("kind") == "train"]
    return training_warnings(config, learned_sigma(model), elbos, int(np.prod(event_shape)))
