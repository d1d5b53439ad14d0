"""Core types shared by the dataset loaders: `Dataset`, `DatasetInfo`, errors and array checks.

Nothing here imports TensorFlow; the module is cheap to import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

KINDS = ("image", "points")

# Fixed seed of the 90/10 split applied to user data that comes without a test set.
# It does not depend on the `seed` argument, so the test set stays the same across runs.
USER_SPLIT_SEED = 0
USER_TEST_FRACTION = 0.1
MIN_EXAMPLES = 10


class DatasetNotFoundError(FileNotFoundError):
    """A built-in data set whose files cannot be found offline (and could not be downloaded)."""


@dataclass(frozen=True)
class Dataset:
    """A loaded data set with raw values (see `prepare` for likelihood-specific conversions).

    Images hold integer grey levels 0..levels-1 as float32 [n, H, W] (or [n, H, W, C]);
    points hold real vectors as float32 [n, D] and have `levels=None`.
    """

    name: str
    description: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    levels: int | None
    label_names: tuple[str, ...] | None = None
    truth: dict | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Dataset kind {self.kind!r} is not allowed; use one of {KINDS}.")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"x_train example shape {self.x_train.shape[1:]} differs from "
                f"x_test example shape {self.x_test.shape[1:]}."
            )
        if self.kind == "image" and (self.levels is None or self.levels < 2):
            raise ValueError(f"Image data needs levels >= 2, got {self.levels!r}.")
        if self.kind == "points" and self.levels is not None:
            raise ValueError(f"Point data is real-valued and must have levels=None, got {self.levels!r}.")
        _check_labels(self.y_train, len(self.x_train), "y_train")
        _check_labels(self.y_test, len(self.x_test), "y_test")

    @property
    def event_shape(self) -> tuple:
        """Shape of one example, e.g. (8, 8) for digits or (2,) for two_moons."""
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class DatasetInfo:
    """Registry record: what a built-in data set is (words for people, its kind "image" or "points"), how to load it,
    whether it is available offline, and the RunConfig settings it suggests (`defaults`, field -> value)."""

    name: str
    description: str
    kind: str
    loader: Callable[[str | None, int], Dataset]
    available: Callable[[str | None], bool] = lambda data_dir: True
    defaults: dict = field(default_factory=dict)


def _check_labels(y: np.ndarray | None, n: int, what: str) -> None:
    if y is None:
        return
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what} must be a 1-D array of {n} labels, got shape {y.shape}.")


def split_fixed(n: int, fraction: float = USER_TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic shuffled split of range(n): returns (train_idx, test_idx).

    The permutation uses `np.random.default_rng(USER_SPLIT_SEED)`; the last
    `max(1, round(fraction * n))` shuffled indices form the test set.
    """
    perm = np.random.default_rng(USER_SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(fraction * n)))
    return np.sort(perm[:-n_test]), np.sort(perm[-n_test:])


def check_numeric(x: np.ndarray, what: str) -> None:
    """Reject non-numeric arrays (strings, objects, complex numbers) with a clear message."""
    if x.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} has dtype {x.dtype} which is not numeric; allowed are bool, integer and float arrays."
        )


def check_finite(x: np.ndarray, what: str) -> None:
    """Reject arrays holding NaN or +-Inf, naming the first offending index."""
    if x.dtype.kind != "f":
        return
    bad = ~np.isfinite(x)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), x.shape)
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN/Inf value(s), first {x[idx]} at index "
            f"{tuple(int(i) for i in idx)}; all values must be finite."
        )


def integer_labels(y: np.ndarray, what: str) -> np.ndarray:
    """Validate labels as integer-valued 1-D numbers and return them as int64."""
    check_numeric(y, what)
    check_finite(y, what)
    if y.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one label per example), got shape {y.shape}.")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(f"{what} must hold integer class labels, found non-integer values.")
    return y.astype(np.int64)
