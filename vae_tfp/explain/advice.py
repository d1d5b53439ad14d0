"""Whether and how a likelihood fits a data set, in words: the advice the dashboard's sidebar shows under the
likelihood and the command line can print. No TensorFlow.

    fit_report(dataset, likelihood, binarization) -> FitReport(level, message, note)

level is "" (fits as it is), "info" (fits after a conversion worth knowing) or "error" (does not fit: the likelihood
cannot model this data); message says why and what to pick instead; note is `prepare`'s own account of what is done
to the data (empty on an error).
"""

import dataclasses
from typing import NamedTuple

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
