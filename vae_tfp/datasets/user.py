"""User data: a `.npz` file or a folder of PNG images, validated strictly into a `Dataset`.

.npz: arrays `x_train` and `x_test` (optional `y_train` and `y_test`), or a single `x`
(optional `y`) split 90/10 with a fixed permutation (see `split_fixed`). An optional
scalar `levels` declares the number of grey levels of integer images. Loaded with
`allow_pickle=False`: object arrays are refused, nothing is ever unpickled.

PNG folder: `*.png` files at the top level (unlabelled), or, if there are none, in
class subfolders (label = index of the sorted subfolder name). All images must have
the same size; colour images are converted to greyscale ("L") with PIL. 90/10 split.

Arrays: 2-D [n, D] are points (real-valued), 3-D [n, H, W] or 4-D [n, H, W, C] images.
Levels rule for images (train and test together):
  1. a declared `levels` L: values must be integers in 0..L-1;
  2. else integer values in 0..255: levels = 2 if the maximum is <= 1 (binary), else 256;
  3. else float values in [0, 1]: intensities, converted to levels 0..255 by round(255 x);
  4. else ValueError naming the range found.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ._core import MIN_EXAMPLES, Dataset, check_finite, check_numeric, integer_labels, split_fixed

MAX_USER_FILE_BYTES = 200 * 1024 * 1024        # .npz file size, and total size of a PNG folder
MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024  # sum of array sizes inside an .npz
MAX_LEVELS = 65536
PNG_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
ALLOWED_IMAGE_VALUES = (
    "allowed: integers in 0..255, floats in [0, 1], or integers 0..L-1 with a scalar 'levels' entry L in the .npz"
)


class UserDataError(ValueError):
    """A user-supplied data file or folder that cannot be used; the message says why."""


def resolve_path(path: str | Path) -> Path:
    """Expand `~` and make the path absolute (no globbing, no environment expansion)."""
    return Path(path).expanduser().resolve()


# ---------------------------------------------------------------- shared validation

def _check_array(x: np.ndarray, what: str) -> None:
    check_numeric(x, what)
    check_finite(x, what)
    if x.ndim not in (2, 3, 4):
        raise UserDataError(
            f"{what} has {x.ndim} dimension(s) (shape {x.shape}); allowed are 2-D [n, D] points, "
            "3-D [n, H, W] or 4-D [n, H, W, C] images."
        )


def _image_levels(x_train: np.ndarray, x_test: np.ndarray, declared: int | None):
    """Apply the levels rule; returns (x_train, x_test, levels, note) with float32 grey levels."""
    both = (x_train, x_test)
    lo = float(min(x.min() for x in both))
    hi = float(max(x.max() for x in both))
    integral = all(x.dtype.kind in "biu" or bool(np.all(x == np.round(x))) for x in both)
    if declared is not None:
        if not integral or lo < 0 or hi > declared - 1:
            raise UserDataError(
                f"Image values range over [{lo:g}, {hi:g}]{'' if integral else ' with non-integer values'}, "
                f"but the declared levels={declared} allows only integers in 0..{declared - 1}."
            )
        return *(x.astype(np.float32) for x in both), declared, f"grey levels 0..{declared - 1} (declared)"
    if integral and lo >= 0 and hi <= 255:
        levels = 2 if hi <= 1 else 256
        return *(x.astype(np.float32) for x in both), levels, f"integer grey levels 0..{levels - 1}"
    if lo >= 0 and hi <= 1:
        converted = (np.round(x.astype(np.float64) * 255).astype(np.float32) for x in both)
        return *converted, 256, "float intensities in [0, 1] converted to grey levels 0..255 by round(255 x)"
    raise UserDataError(
        f"Image values range over [{lo:g}, {hi:g}]{'' if integral else ' with non-integer values'}; "
        f"{ALLOWED_IMAGE_VALUES}."
    )


def _declared_levels(value: np.ndarray | None) -> int | None:
    if value is None:
        return None
    if value.size != 1 or value.dtype.kind not in "iuf" or float(value.item()) != int(value.item()):
        raise UserDataError(f"'levels' must be a single integer, got {value!r}.")
    levels = int(value.item())
    if not 2 <= levels <= MAX_LEVELS:
        raise UserDataError(f"'levels' is {levels}; allowed are integers from 2 to {MAX_LEVELS}.")
    return levels


def build_user_dataset(name: str, source: str, x_train: np.ndarray, x_test: np.ndarray,
                       y_train: np.ndarray | None = None, y_test: np.ndarray | None = None,
                       levels: np.ndarray | None = None,
                       label_names: tuple[str, ...] | None = None) -> Dataset:
    """Validate user arrays (numeric, finite, ndim, shapes, sizes, labels) and build a `Dataset`."""
    _check_array(x_train, "x_train")
    _check_array(x_test, "x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserDataError(
            f"x_train examples have shape {x_train.shape[1:]} but x_test examples have shape "
            f"{x_test.shape[1:]}; train and test shapes must match."
        )
    if len(x_train) < MIN_EXAMPLES or len(x_test) < 1:
        raise UserDataError(
            f"Too few examples: {len(x_train)} train and {len(x_test)} test; need at least "
            f"{MIN_EXAMPLES} training examples and 1 test example."
        )
    labels = [None if y is None else integer_labels(y, what) for y, what in ((y_train, "y_train"), (y_test, "y_test"))]
    for y, x, what in ((labels[0], x_train, "y_train"), (labels[1], x_test, "y_test")):
        if y is not None and len(y) != len(x):
            raise UserDataError(f"{what} has {len(y)} labels but there are {len(x)} examples.")
    declared = _declared_levels(levels)
    if x_train.ndim == 2:
        if declared is not None:
            raise UserDataError("'levels' was given, but 2-D [n, D] arrays are real-valued points, not images.")
        return Dataset(name=name, description=f"User point data from {source}.", kind="points",
                       x_train=x_train.astype(np.float32), y_train=labels[0],
                       x_test=x_test.astype(np.float32), y_test=labels[1], levels=None)
    xtr, xte, n_levels, note = _image_levels(x_train, x_test, declared)
    return Dataset(name=name, description=f"User images from {source}: {note}.", kind="image",
                   x_train=xtr, y_train=labels[0], x_test=xte, y_test=labels[1],
                   levels=n_levels, label_names=label_names)


def _split(x: np.ndarray, y: np.ndarray | None):
    if len(x) < MIN_EXAMPLES + 1:
        raise UserDataError(f"Too few examples: {len(x)}; need at least {MIN_EXAMPLES + 1} to split 90/10.")
    if y is not None and len(y) != len(x):
        raise UserDataError(f"y has {len(y)} labels but x has {len(x)} examples.")
    tr, te = split_fixed(len(x))
    return x[tr], x[te], None if y is None else y[tr], None if y is None else y[te]


# ---------------------------------------------------------------- .npz

def _check_npz_file(path: Path) -> None:
    if not path.exists():
        raise UserDataError(f"Data file not found: {path}.")
    if not path.is_file():
        raise UserDataError(f"{path} is not a regular file; pass a .npz file or a folder of PNG images.")
    size = path.stat().st_size
    if size > MAX_USER_FILE_BYTES:
        raise UserDataError(f"Data file {path} is too large ({size} bytes); the limit is {MAX_USER_FILE_BYTES} bytes.")
    if not zipfile.is_zipfile(path):
        raise UserDataError(f"{path} is not a .npz file (not a zip archive); save it with numpy.savez.")
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    if total > MAX_UNCOMPRESSED_BYTES:
        raise UserDataError(f"{path} unpacks to {total} bytes; the limit is {MAX_UNCOMPRESSED_BYTES} bytes.")


def _npz_array(npz, key: str, path: Path) -> np.ndarray | None:
    if key not in npz.files:
        return None
    try:
        return npz[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise UserDataError(
                f"Array {key!r} in {path} is a pickled object array; pickled data is refused "
                "(store plain numeric arrays)."
            ) from exc
        raise UserDataError(f"Array {key!r} in {path} could not be read: {exc}.") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserDataError(f"Array {key!r} in {path} could not be read: {exc}.") from exc


def load_npz(path: str | Path) -> Dataset:
    """Load user data from a .npz file (see module docstring for the keys and rules)."""
    path = resolve_path(path)
    _check_npz_file(path)
    with np.load(path, allow_pickle=False) as npz:
        keys = sorted(npz.files)
        get = {k: _npz_array(npz, k, path) for k in ("x_train", "x_test", "y_train", "y_test", "x", "y", "levels")}
    if get["x_train"] is not None:
        for key, partner in (("x_test", "x_train"), ("y_test", "y_train"), ("y_train", "y_test")):
            if get[key] is None and get[partner] is not None:
                raise UserDataError(f"{path} has {partner!r} but is missing key {key!r} (found keys {keys}).")
        parts = (get["x_train"], get["x_test"], get["y_train"], get["y_test"])
    elif get["x"] is not None:
        x_train, x_test, y_train, y_test = _split(get["x"], get["y"])
        parts = (x_train, x_test, y_train, y_test)
    else:
        raise UserDataError(
            f"{path} is missing key 'x_train' (found keys {keys}); it needs arrays 'x_train' and "
            "'x_test' (optional 'y_train', 'y_test'), or a single 'x' (optional 'y') to split 90/10."
        )
    return build_user_dataset(path.name, str(path), *parts, levels=get["levels"])


# ---------------------------------------------------------------- PNG folder

def _is_png(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() == ".png"


def png_files(folder: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """Sorted top-level PNGs (no labels), or else PNGs in sorted class subfolders (labels)."""
    top = sorted(p for p in folder.iterdir() if _is_png(p))
    if top:
        return top, None, None
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and any(_is_png(p) for p in d.iterdir()))
    files, labels = [], []
    for label, sub in enumerate(classes):
        members = sorted(p for p in sub.iterdir() if _is_png(p))
        files += members
        labels += [label] * len(members)
    return files, labels, tuple(d.name for d in classes)


def _read_png(path: Path, expected_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise UserDataError(f"{path} is not a PNG image (PIL reads it as {img.format}).")
            if expected_size is not None and img.size != expected_size:
                raise UserDataError(
                    f"PNG sizes differ: {path.name} is {img.size[0]}x{img.size[1]} but the first image is "
                    f"{expected_size[0]}x{expected_size[1]}; all images must have the same size."
                )
            if img.mode not in PNG_MODES:
                raise UserDataError(f"{path} has PNG mode {img.mode!r}; allowed modes are {PNG_MODES}.")
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UserDataError(f"{path} could not be read as a PNG image: {exc}.") from exc


def load_png_folder(folder: str | Path) -> Dataset:
    """Load a folder of equally sized PNG images (greyscale, levels=256), split 90/10."""
    folder = resolve_path(folder)
    if not folder.is_dir():
        raise UserDataError(f"PNG folder not found: {folder}.")
    files, labels, names = png_files(folder)
    if not files:
        raise UserDataError(f"PNG folder {folder} is empty: no .png files at its top level or in class subfolders.")
    total = sum(p.stat().st_size for p in files)
    if total > MAX_USER_FILE_BYTES:
        raise UserDataError(
            f"PNG folder {folder} is too large ({total} bytes); the limit is {MAX_USER_FILE_BYTES} bytes."
        )
    first = _read_png(files[0], None)
    size = (first.shape[1], first.shape[0])
    x = np.stack([first] + [_read_png(p, size) for p in files[1:]])
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    x_train, x_test, y_train, y_test = _split(x, y)
    return build_user_dataset(folder.name, f"{len(files)} PNG files in {folder}",
                              x_train, x_test, y_train, y_test, label_names=names)
