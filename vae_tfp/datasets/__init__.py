"""Data sets for the VAE library: registry, loaders, user data and likelihood representations.

`vae_tfp.data` re-exports this public API; import from either.
"""

from ._core import Dataset, DatasetInfo, DatasetNotFoundError, split_fixed
from .builtin import FASHION_LABELS, linear_gaussian_truth, make_pinwheel
from .idx import parse_idx, read_idx
from .registry import DATASETS, DEFAULT_DATASET, list_datasets, load, load_user_data
from .representations import (
    BINARIZATIONS,
    REPRESENTATIONS,
    Prepared,
    binarize,
    check_support,
    prepare,
    scale_to_unit,
    to_unit,
)
from .user import UserDataError, load_npz, load_png_folder

__all__ = [
    "BINARIZATIONS", "DATASETS", "DEFAULT_DATASET", "FASHION_LABELS", "REPRESENTATIONS",
    "Dataset", "DatasetInfo", "DatasetNotFoundError", "Prepared", "UserDataError",
    "binarize", "check_support", "linear_gaussian_truth", "list_datasets", "load", "load_npz",
    "load_png_folder", "load_user_data", "make_pinwheel", "parse_idx", "prepare", "read_idx",
    "scale_to_unit", "split_fixed", "to_unit",
]
