"""Public data API: dataset registry, loaders, user data, representations and conversions.

The implementation lives in the `vae_tfp.datasets` package; this module re-exports its public API.
"""

from vae_tfp.datasets import (  # noqa: F401
    BINARIZATIONS,
    DATASETS,
    DEFAULT_DATASET,
    FASHION_LABELS,
    REPRESENTATIONS,
    Dataset,
    DatasetInfo,
    DatasetNotFoundError,
    Prepared,
    UserDataError,
    __all__,
    binarize,
    check_support,
    linear_gaussian_truth,
    list_datasets,
    load,
    load_npz,
    load_png_folder,
    load_user_data,
    make_pinwheel,
    parse_idx,
    prepare,
    read_idx,
    scale_to_unit,
    split_fixed,
    to_unit,
)
