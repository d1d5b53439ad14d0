"""Built-in data sets: sklearn digits, (Fashion-)MNIST from IDX files, 2-D toy point sets, linear-Gaussian.

Loaders take `(data_dir, seed)` and return a `Dataset`. Only the MNIST-style
loaders look at `data_dir`; only the synthetic sets use `seed`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._core import Dataset, DatasetNotFoundError
from .idx import candidate_folders, find_idx_set, load_idx_set

DIGITS_N_TRAIN = 1500  # digits: the first 1500 of sklearn's 1797 images train, the last 297 test
N_TRAIN_POINTS = 5000
N_TEST_POINTS = 1000

FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_LABELS = tuple(str(i) for i in range(10))


def _keras_datasets_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"


# System folders searched after data_dir and $VAE_TFP_DATA (tests monkeypatch these entries).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"), _keras_datasets_dir() / "fashion-mnist"),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
SUBFOLDERS = {
    "fashion_mnist": ("fashion_mnist", "fashion-mnist"),
    "mnist": ("mnist",),
}
KERAS_CACHE_FILES = {"fashion_mnist": None, "mnist": "mnist.npz"}
HOW_TO_GET = {
    "fashion_mnist": "install the Debian package (apt-get install dataset-fashion-mnist)",
    "mnist": "download the MNIST IDX files",
}


# ---------------------------------------------------------------- digits

def load_digits(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """sklearn's 8x8 digits, grey levels 0..16 (levels=17); fixed split: first 1500 train, last 297 test."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.images.astype(np.float32)
    y = bunch.target.astype(np.int64)
    n = DIGITS_N_TRAIN
    return Dataset(
        name="digits",
        description="sklearn 8x8 handwritten digits, grey levels 0..16; first 1500 train, last 297 test.",
        kind="image",
        x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:],
        levels=17,
        label_names=MNIST_LABELS,
    )


# ---------------------------------------------------------------- MNIST-style IDX sets

def find_idx_files(name: str, data_dir: str | None = None) -> dict[str, Path] | None:
    """The first complete set of IDX files for `name` in the search folders, or None."""
    for folder in candidate_folders(data_dir, SUBFOLDERS[name], SYSTEM_DIRS[name]):
        found = find_idx_set(folder)
        if found is not None:
            return found
    return None


def _load_from_keras(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fallback: keras.datasets.<name>.load_data() (uses the keras cache, may try to download)."""
    import keras  # lazy: pulls in TensorFlow

    return getattr(keras.datasets, name).load_data()


def _not_found_message(name: str, data_dir: str | None, keras_error: Exception) -> str:
    searched = ", ".join(str(p) for p in candidate_folders(data_dir, SUBFOLDERS[name], SYSTEM_DIRS[name]))
    return (
        f"Could not find the {name} IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz) in: {searched}; "
        f"and the keras download failed ({type(keras_error).__name__}: {keras_error}). "
        f"To get them: {HOW_TO_GET[name]}, or put the IDX files in a folder and pass "
        f"--data-dir FOLDER (data_dir=...) or set VAE_TFP_DATA=FOLDER."
    )


def _idx_arrays(name: str, data_dir: str | None) -> tuple[dict[str, np.ndarray], str]:
    files = find_idx_files(name, data_dir)
    if files is not None:
        return load_idx_set(files), f"IDX files in {files['x_train'].parent}"
    try:
        (x_train, y_train), (x_test, y_test) = _load_from_keras(name)
    except Exception as exc:  # noqa: BLE001 - any keras failure means "not available"
        raise DatasetNotFoundError(_not_found_message(name, data_dir, exc)) from exc
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return arrays, "keras.datasets"


def _load_mnist_like(name: str, title: str, labels: tuple[str, ...], data_dir: str | None) -> Dataset:
    arrays, source = _idx_arrays(name, data_dir)
    return Dataset(
        name=name,
        description=f"{title} 28x28 greyscale images, grey levels 0..255 (from {source}).",
        kind="image",
        x_train=np.asarray(arrays["x_train"], dtype=np.float32),
        y_train=np.asarray(arrays["y_train"], dtype=np.int64),
        x_test=np.asarray(arrays["x_test"], dtype=np.float32),
        y_test=np.asarray(arrays["y_test"], dtype=np.int64),
        levels=256,
        label_names=labels,
    )


def load_fashion_mnist(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Fashion-MNIST (60000 train / 10000 test, levels=256); raises DatasetNotFoundError if unavailable."""
    return _load_mnist_like("fashion_mnist", "Fashion-MNIST (Zalando)", FASHION_LABELS, data_dir)


def load_mnist(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """MNIST (60000 train / 10000 test, levels=256); raises DatasetNotFoundError if unavailable."""
    return _load_mnist_like("mnist", "MNIST handwritten digits", MNIST_LABELS, data_dir)


def idx_available(name: str, data_dir: str | None = None) -> bool:
    """True if IDX files (or the keras cache file) are present, without importing keras."""
    if find_idx_files(name, data_dir) is not None:
        return True
    cache = KERAS_CACHE_FILES[name]
    return cache is not None and (_keras_datasets_dir() / cache).is_file()


# ---------------------------------------------------------------- 2-D toy point sets

def _points_dataset(name: str, description: str, x: np.ndarray, y: np.ndarray | None) -> Dataset:
    x = x.astype(np.float32)
    y = None if y is None else y.astype(np.int64)
    n = N_TRAIN_POINTS
    return Dataset(
        name=name, description=description, kind="points",
        x_train=x[:n], y_train=None if y is None else y[:n],
        x_test=x[n:], y_test=None if y is None else y[n:],
        levels=None,
    )


MOONS_NOISE = 0.1  # make_moons(noise=...): std of the Gaussian noise added to each coordinate
RINGS_FACTOR, RINGS_NOISE = 0.5, 0.05  # make_circles(factor=..., noise=...): inner radius / outer radius, noise std
PINWHEEL_RADIAL_STD, PINWHEEL_TANGENTIAL_STD, PINWHEEL_ARMS, PINWHEEL_RATE = 0.3, 0.05, 5, 0.25


def load_two_moons(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """sklearn make_moons, noise 0.1; labels are the moon (0/1)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(N_TRAIN_POINTS + N_TEST_POINTS, noise=MOONS_NOISE, random_state=seed)
    return _points_dataset("two_moons", "Two interleaving half circles in 2-D (sklearn make_moons, noise 0.1).", x, y)


def load_rings(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """sklearn make_circles, factor 0.5, noise 0.05; labels are the ring (0 outer, 1 inner)."""
    from sklearn.datasets import make_circles

    x, y = make_circles(N_TRAIN_POINTS + N_TEST_POINTS, factor=RINGS_FACTOR, noise=RINGS_NOISE,
                        random_state=seed)
    return _points_dataset("rings", "Two concentric rings in 2-D (sklearn make_circles, factor 0.5, noise 0.05).", x, y)


def make_pinwheel(n: int, rng: np.random.Generator, radial_std: float = PINWHEEL_RADIAL_STD,
                  tangential_std: float = PINWHEEL_TANGENTIAL_STD, num_classes: int = PINWHEEL_ARMS,
                  rate: float = PINWHEEL_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Pinwheel of Johnson et al. (2016, SVAE): arm drawn uniformly per point, no final x10 scaling."""
    rads = np.linspace(0, 2 * np.pi, num_classes, endpoint=False)
    labels = rng.integers(0, num_classes, size=n)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    angles = rads[labels] + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    rotations = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [n, 2, 2]
    return np.einsum("ti,tij->tj", features, rotations), labels


def load_pinwheel(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Five-armed pinwheel (radial std 0.3, tangential std 0.05, rate 0.25); labels are the arm."""
    x, y = make_pinwheel(N_TRAIN_POINTS + N_TEST_POINTS, np.random.default_rng(seed))
    return _points_dataset("pinwheel", "Five-armed 2-D pinwheel (Johnson et al. 2016 SVAE).", x, y)


# ---------------------------------------------------------------- linear-Gaussian

LG_DIM, LG_LATENT, LG_SIGMA = 10, 2, 0.5
LG_MODEL_SEED = 1234  # W and b are part of the data set's definition: they do not change with `seed`


def linear_gaussian_truth() -> dict:
    """The generating model: {"W": [2, 10], "b": [10], "sigma": 0.5}, so x = z @ W + b + sigma * eps."""
    rng = np.random.default_rng(LG_MODEL_SEED)
    w = rng.standard_normal((LG_LATENT, LG_DIM))
    b = rng.standard_normal(LG_DIM)
    return {"W": w, "b": b, "sigma": LG_SIGMA}


def load_linear_gaussian(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Samples of x = z W + b + sigma eps, z ~ N(0, I_2), eps ~ N(0, I_10); fixed model, samples from `seed`."""
    truth = linear_gaussian_truth()
    rng = np.random.default_rng(seed)
    n = N_TRAIN_POINTS + N_TEST_POINTS
    z = rng.standard_normal((n, LG_LATENT))
    x = z @ truth["W"] + truth["b"] + truth["sigma"] * rng.standard_normal((n, LG_DIM))
    ds = _points_dataset(
        "linear_gaussian",
        "10-D data from a known linear-Gaussian model x = zW + b + 0.5 eps with a 2-D latent z "
        "(probabilistic PCA ground truth in `truth`).",
        x, None,
    )
    return replace(ds, truth=truth)


# ---------------------------------------------------------------- linear-Gaussian in the plane

LG2_W = ((1.2, 0.8),)  # [1, 2]: the one latent direction
LG2_B = (0.5, -0.3)
LG2_SIGMA = 0.3


def linear_gaussian_2d_truth() -> dict:
    """The generating model: {"W": [1, 2], "b": [2], "sigma": 0.3}, so x = z W + b + sigma eps with z ~ N(0, 1)."""
    return {"W": np.array(LG2_W), "b": np.array(LG2_B), "sigma": LG2_SIGMA}


def load_linear_gaussian_2d(data_dir: str | None = None, seed: int = 0) -> Dataset:
    """Samples of x = z W + b + sigma eps, z ~ N(0, 1), eps ~ N(0, I_2): a tilted Gaussian ellipse in the plane,
    p(x) = N(b, W^T W + sigma^2 I) exactly; fixed model, samples from `seed`."""
    truth = linear_gaussian_2d_truth()
    rng = np.random.default_rng(seed)
    n = N_TRAIN_POINTS + N_TEST_POINTS
    z = rng.standard_normal((n, 1))
    x = z @ truth["W"] + truth["b"] + truth["sigma"] * rng.standard_normal((n, 2))
    ds = _points_dataset(
        "linear_gaussian_2d",
        "2-D points from a known linear-Gaussian model x = zW + b + 0.3 eps with a 1-D latent z "
        "(p(x) = N(b, W^T W + 0.09 I), exactly; ground truth in `truth`).",
        x, None,
    )
    return replace(ds, truth=truth)
