"""Representations that likelihoods declare, conversions into them (`prepare`), and support checks.

Representations: "binary" ({0, 1} floats), "unit" (floats in [0, 1]), "levels"
(integer grey levels 0..levels-1 as float32) and "real" (unbounded floats).

Binarization seed rule (`prepare(..., representation="binary", seed=s)`):
  * the test set is binarized once with `np.random.default_rng(123 + s)`;
  * with binarization="static" the training set is binarized once with `np.random.default_rng(456 + s)`;
  * with binarization="dynamic" (default) the training set stays as [0, 1] intensities and the
    trainer re-samples it every epoch with `binarize(x_train, rng)`;
  * binarization="threshold" maps x >= 0.5 to 1 and the rest to 0 (no randomness).
Dequantization (`dequantize=True`, "real" only): (level + u) / levels with u ~ U[0, 1),
training noise from `default_rng(789 + s)`, test noise from `default_rng(987 + s)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._core import Dataset

REPRESENTATIONS = ("binary", "unit", "levels", "real")
# How grey data becomes binary (the one list of them; `RunConfig.binarization` offers these), with words for people.
BINARIZATIONS = {"dynamic": "dynamic: re-sampled each epoch", "static": "static: sampled once",
                 "threshold": "thresholded at 0.5"}
TEST_BINARIZATION_SEED = 123
TRAIN_BINARIZATION_SEED = 456
DEQUANTIZE_TRAIN_SEED = 789
DEQUANTIZE_TEST_SEED = 987


@dataclass(frozen=True)
class Prepared:
    """Data converted for one likelihood's representation, ready for training."""

    x_train: np.ndarray
    x_test: np.ndarray
    representation: str
    levels: int | None
    dynamic_binarization: bool
    note: str


def _check_choice(value: str, allowed, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}; allowed are {tuple(allowed)}.")


def scale_to_unit(x: np.ndarray, levels: int) -> np.ndarray:
    """Grey levels 0..levels-1 -> [0, 1] as float32: x / (levels - 1)."""
    return (np.asarray(x, dtype=np.float32) / np.float32(levels - 1)).astype(np.float32)


def to_unit(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(x_train, x_test) of an image data set scaled to [0, 1]."""
    if dataset.kind != "image":
        raise ValueError(f"to_unit needs image data; {dataset.name!r} holds real-valued points.")
    return scale_to_unit(dataset.x_train, dataset.levels), scale_to_unit(dataset.x_test, dataset.levels)


def binarize(x_unit: np.ndarray, rng_or_seed: int | np.random.Generator) -> np.ndarray:
    """One Bernoulli(x) sample per value of `x_unit` (in [0, 1]) as float32 {0, 1}."""
    x_unit = np.asarray(x_unit, dtype=np.float32)
    check_support(x_unit, "unit")
    rng = np.random.default_rng(rng_or_seed)
    return (rng.random(x_unit.shape, dtype=np.float32) < x_unit).astype(np.float32)


def _range_text(levels: int) -> str:
    return f"Grey levels 0..{levels - 1}"


def _prepare_binary(ds: Dataset, binarization: str, seed: int) -> Prepared:
    train, test = to_unit(ds)
    head = f"{_range_text(ds.levels)} scaled to [0, 1], then"
    if binarization == "threshold":
        return Prepared((train >= 0.5).astype(np.float32), (test >= 0.5).astype(np.float32), "binary", None, False,
                        f"{head} thresholded at 0.5 (x >= 0.5 -> 1).")
    test_b = binarize(test, TEST_BINARIZATION_SEED + seed)
    if binarization == "static":
        train_b = binarize(train, TRAIN_BINARIZATION_SEED + seed)
        return Prepared(train_b, test_b, "binary", None, False,
                        f"{head} binarized once: test set with seed {TEST_BINARIZATION_SEED + seed}, "
                        f"training set with seed {TRAIN_BINARIZATION_SEED + seed}.")
    return Prepared(train, test_b, "binary", None, True,
                    f"{head} binarized: test set once with seed {TEST_BINARIZATION_SEED + seed}, "
                    "training set re-sampled every epoch.")


def _dequantized(x: np.ndarray, levels: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).random(x.shape, dtype=np.float32)
    return ((x + noise) / np.float32(levels)).astype(np.float32)


def _prepare_real_images(ds: Dataset, seed: int, dequantize: bool) -> Prepared:
    if dequantize:
        train = _dequantized(ds.x_train, ds.levels, DEQUANTIZE_TRAIN_SEED + seed)
        test = _dequantized(ds.x_test, ds.levels, DEQUANTIZE_TEST_SEED + seed)
        note = (f"{_range_text(ds.levels)} dequantized as (level + U[0, 1)) / {ds.levels} "
                f"(training noise seed {DEQUANTIZE_TRAIN_SEED + seed}, test noise seed {DEQUANTIZE_TEST_SEED + seed}) "
                "and treated as real values.")
        return Prepared(train, test, "real", None, False, note)
    train, test = to_unit(ds)
    return Prepared(train, test, "real", None, False,
                    f"{_range_text(ds.levels)} scaled to [0, 1] and treated as real values.")


def _prepare_points(ds: Dataset, representation: str) -> Prepared:
    if representation != "real":
        raise ValueError(
            f"Data set {ds.name!r} holds real-valued toy points; representation {representation!r} does not fit. "
            "Only likelihoods with the 'real' representation (e.g. gaussian) fit point data."
        )
    return Prepared(ds.x_train.astype(np.float32), ds.x_test.astype(np.float32), "real", None, False,
                    "Real-valued points used as they are.")


def prepare(dataset: Dataset, representation: str, *, binarization: str = "dynamic", seed: int = 0,
            dequantize: bool = False) -> Prepared:
    """Convert `dataset` into `representation` (see the module docstring for seeds and rules)."""
    _check_choice(representation, REPRESENTATIONS, "representation")
    _check_choice(binarization, BINARIZATIONS, "binarization")
    if dequantize and representation != "real":
        raise ValueError(f"dequantize=True applies only to the 'real' representation, not {representation!r}.")
    if dataset.kind == "points":
        return _prepare_points(dataset, representation)
    if representation == "binary":
        return _prepare_binary(dataset, binarization, seed)
    if representation == "real":
        return _prepare_real_images(dataset, seed, dequantize)
    if representation == "unit":
        train, test = to_unit(dataset)
        return Prepared(train, test, "unit", None, False, f"{_range_text(dataset.levels)} scaled to [0, 1].")
    return Prepared(dataset.x_train.astype(np.float32), dataset.x_test.astype(np.float32), "levels",
                    dataset.levels, False, f"{_range_text(dataset.levels)} kept as integer levels.")


# ---------------------------------------------------------------- support checks

def _support_mask(x: np.ndarray, representation: str, levels: int | None) -> tuple[np.ndarray, str]:
    if representation == "binary":
        return (x == 0) | (x == 1), "{0, 1}"
    if representation == "unit":
        return (x >= 0) & (x <= 1), "floats in [0, 1]"
    return (x >= 0) & (x <= levels - 1) & (x == np.round(x)), f"integers 0..{levels - 1}"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_support(x, representation: str, levels: int | None = None) -> None:
    """Raise ValueError naming the first value/location outside `representation`'s support."""
    _check_choice(representation, REPRESENTATIONS, "representation")
    if representation == "levels" and (levels is None or int(levels) != levels or levels < 2):
        raise ValueError(f"The 'levels' representation needs an integer levels >= 2, got {levels!r}.")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"Data has dtype {x.dtype}; {representation!r} data must be numeric.")
    if x.size == 0:
        return
    if representation == "unit" and x.min() >= 0 and x.max() <= 1:  # fast path (False if NaN present)
        return
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            idx = _first(~finite)
            raise ValueError(f"Non-finite value {x[idx]} at index {idx}; {representation!r} data must be finite.")
    if representation == "real":
        return
    ok, allowed = _support_mask(x, representation, levels)
    if not ok.all():
        idx = _first(~ok)
        raise ValueError(
            f"Value {x[idx]} at index {idx} is outside the support of the {representation!r} "
            f"representation; allowed are {allowed}."
        )
