"""The dataset registry `DATASETS`, `load` (registered names or user paths) and `list_datasets`.

Like the registries in `vae_tfp.families`, it imports no TensorFlow: each `DatasetInfo` holds the words a person reads
(`description`), its `kind` ("image" or "points", e.g. conv networks need images), its loader, whether it is
available offline, and `defaults`: the RunConfig settings the data set suggests (field -> value), which the dashboard
fills in when the data set is picked (`vae_tfp.presets.suggested`): a likelihood that fits the data, enough epochs
for a first training to show something (digits: 300 epochs, about 10 s of training on a 2-core machine, with a test
ELBO as good as after 500), and for the linear-Gaussian sets the linear model with a learned sigma, so the model can
match the known truth.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import builtin
from . import uploads as uploads_module
from ._core import Dataset, DatasetInfo
from .user import load_npz, load_png_folder, resolve_path

DEFAULT_DATASET = "digits"


def _idx_availability(name: str):
    return lambda data_dir: builtin.idx_available(name, data_dir)


# What each kind of data set fills in when picked (every key in all three, so switching data sets never keeps a
# setting that only suited the previous one). Fashion-MNIST and MNIST keep the config's defaults for the rest.
IMAGE_DEFAULTS = {"likelihood": "bernoulli", "network": "mlp", "sigma": 0.1, "sigma_mode": "fixed", "latent_dim": 2,
                  "epochs": 300, "eval_every": 10, "lr": 1e-3, "batch_size": 128}
TOY_DEFAULTS = {"likelihood": "gaussian", "network": "mlp", "sigma": 0.1, "sigma_mode": "fixed", "latent_dim": 2,
                "epochs": 60, "eval_every": 5, "lr": 1e-3, "batch_size": 128}
LINEAR_DEFAULTS = {"likelihood": "gaussian", "network": "linear", "sigma": 1.0, "sigma_mode": "shared",
                   "epochs": 100, "eval_every": 10, "lr": 1e-2, "batch_size": 128}

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("digits", "sklearn 8x8 handwritten digits (1500 train / 297 test, 17 grey levels); "
                    "the default, always available.", "image", builtin.load_digits, defaults=IMAGE_DEFAULTS),
        DatasetInfo("fashion_mnist", "Fashion-MNIST 28x28 clothing images (60000 / 10000, 256 grey levels).",
                    "image", builtin.load_fashion_mnist, _idx_availability("fashion_mnist")),
        DatasetInfo("mnist", "MNIST 28x28 handwritten digits (60000 / 10000, 256 grey levels).",
                    "image", builtin.load_mnist, _idx_availability("mnist")),
        DatasetInfo("two_moons", "2-D toy points: two interleaving half circles (5000 / 1000).",
                    "points", builtin.load_two_moons, defaults=TOY_DEFAULTS),
        DatasetInfo("rings", "2-D toy points: two concentric rings (5000 / 1000).", "points", builtin.load_rings,
                    defaults=TOY_DEFAULTS),
        DatasetInfo("pinwheel", "2-D toy points: five-armed pinwheel, Johnson et al. 2016 (5000 / 1000).",
                    "points", builtin.load_pinwheel, defaults=TOY_DEFAULTS),
        DatasetInfo("linear_gaussian", "10-D points from a known linear-Gaussian model with a 2-D latent "
                    "(5000 / 1000); the true W, b, sigma are in Dataset.truth.", "points",
                    builtin.load_linear_gaussian, defaults=LINEAR_DEFAULTS | {"latent_dim": 2}),
        DatasetInfo("linear_gaussian_2d", "2-D points from a known linear-Gaussian model with a 1-D latent "
                    "(5000 / 1000): the exact p(x) can be drawn on the plane.", "points",
                    builtin.load_linear_gaussian_2d, defaults=LINEAR_DEFAULTS | {"latent_dim": 1}),
    )
}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def looks_like_path(name: str | os.PathLike) -> bool:
    """True if `name` ends with .npz or is an existing directory."""
    text = os.fspath(name)
    return text.lower().endswith(".npz") or Path(text).expanduser().is_dir()


def load_user_data(path: str | os.PathLike) -> Dataset:
    """A folder is read as PNG images, anything else as a .npz file."""
    resolved = resolve_path(path)
    return load_png_folder(resolved) if resolved.is_dir() else load_npz(resolved)


def load(name: str | os.PathLike, *, data_dir: str | None = None, seed: int = 0, uploads=None) -> Dataset:
    """Load a registered data set by name, an uploaded one (`upload:<name>` from the folder `uploads`, default
    $VAE_TFP_UPLOADS or ./uploads), or user data from a .npz file or PNG folder path.

    `data_dir` is searched first for (Fashion-)MNIST IDX files; `seed` drives the synthetic
    point sets. Missing (Fashion-)MNIST files raise `DatasetNotFoundError` (a FileNotFoundError).
    """
    if isinstance(name, str) and _normalize(name) in DATASETS:
        return DATASETS[_normalize(name)].loader(data_dir, seed)
    if uploads_module.is_upload(name):
        return uploads_module.load(uploads_module.default_root(uploads), name)
    if uploads_module.is_bundled(name):
        raise ValueError(f"data set {name!r} is the test split an imported run carries in its folder "
                         f"({uploads_module.TEST_DATA}); open that run to use it")
    if looks_like_path(name):
        return load_user_data(name)
    raise ValueError(
        f"Unknown dataset {os.fspath(name)!r}; registered names are {', '.join(DATASETS)}. "
        "A path to a .npz file or to a folder of PNG images is also accepted."
    )


def list_datasets(data_dir: str | None = None) -> list[dict]:
    """One dict per registered data set: name, description, kind, available (offline, right now)."""
    return [
        {"name": info.name, "description": info.description, "kind": info.kind,
         "available": bool(info.available(data_dir))}
        for info in DATASETS.values()
    ]
