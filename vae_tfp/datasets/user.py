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

Two ways in, one validator:
    load_npz(path), load_png_folder(folder)          files on disk (the command line), capped by the constants below
    dataset_from_upload(data, filename, limits)      bytes from a browser: an .npz, or a zip of PNGs (top level, or
                                                     one folder per class, optionally inside one top folder), capped
                                                     by `vae_tfp.settings.UploadLimits`

Every zip (an .npz is one) is checked before anything is decompressed: only plain members (no folders deeper than
allowed, no absolute or '..' paths, no links, no encryption), the sizes the zip declares within the caps, and, for
an .npz, each array's header (dtype and shape) read first, so an array that would unpack to more than its member
declares, or more than the cap, is refused before memory is allocated. A PNG's pixel count is checked from its
header before it is decoded. Each refusal is a `UserDataError` whose message says what was wrong and what is
allowed.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from ._core import MIN_EXAMPLES, Dataset, check_finite, check_numeric, integer_labels, split_fixed

MAX_USER_FILE_BYTES = 200 * 1024 * 1024        # .npz file size, and total size of a PNG folder
MAX_UNCOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024  # sum of array sizes inside an .npz
MAX_LEVELS = 65536
MAX_PNG_PIXELS = 4096 * 4096  # one image of a PNG folder on disk
PNG_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
NPZ_KEYS = ("x_train", "x_test", "y_train", "y_test", "x", "y", "levels", "label_names")
MAX_LABEL_NAMES, MAX_LABEL_CHARS = 1000, 100
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
    try:
        check_numeric(x, what)
        check_finite(x, what)
    except ValueError as err:
        raise UserDataError(str(err)) from None
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
                       label_names: tuple[str, ...] | None = None, *, min_train: int = MIN_EXAMPLES) -> Dataset:
    """Validate user arrays (numeric, finite, ndim, shapes, sizes, labels) and build a `Dataset`. `min_train`: the
    fewest training examples accepted (a bundle's test split comes without a training set: 0)."""
    _check_array(x_train, "x_train")
    _check_array(x_test, "x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserDataError(
            f"x_train examples have shape {x_train.shape[1:]} but x_test examples have shape "
            f"{x_test.shape[1:]}; train and test shapes must match."
        )
    if len(x_train) < min_train or len(x_test) < 1:
        raise UserDataError(
            f"Too few examples: {len(x_train)} train and {len(x_test)} test; need at least "
            f"{min_train} training examples and 1 test example."
        )
    try:
        labels = [None if y is None else integer_labels(y, what)
                  for y, what in ((y_train, "y_train"), (y_test, "y_test"))]
    except ValueError as err:
        raise UserDataError(str(err)) from None
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


# ---------------------------------------------------------------- zip members (an .npz is a zip too)

def megabytes(n: int) -> str:
    """A size in words: "80 MB", "1.5 MB", "2,000 bytes"."""
    if n < 2**20 / 10:
        return f"{n:,} bytes"
    return f"{n / 2**20:.1f}".rstrip("0").rstrip(".") + " MB"


def open_zip(source, label: str, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise UserDataError(f"{label} is not {what} (not a zip archive).") from None


def _member_problem(info: zipfile.ZipInfo) -> str:
    """Why a zip member cannot be read safely ("" when it can): a link, a device, encryption, an unsafe name."""
    name = info.filename
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip does not say (a plain file)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"{name!r} is a link or a special file; only plain files are read"
    if info.flag_bits & 0x1:
        return f"{name!r} is encrypted"
    path = PurePosixPath(name)
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in path.parts \
            or "\x00" in name:
        return f"{name!r} is not a safe name inside a zip (absolute, '..' or a backslash)"
    return ""


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, label: str) -> bytes:
    """A member's bytes, reading at most cap + 1 (the size a zip declares may lie)."""
    try:
        with zf.open(info) as f:
            blob = f.read(cap + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        raise UserDataError(f"{info.filename!r} in {label} cannot be read: {err}.") from None
    if len(blob) > cap:
        raise UserDataError(f"{info.filename!r} in {label} unpacks to more than {megabytes(cap)}; refused "
                            "(a decompression bomb?).")
    return blob


# ---------------------------------------------------------------- .npz

def npz_arrays(zf: zipfile.ZipFile, label: str, max_unpacked: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays by key, every key the file holds): only the keys `NPZ_KEYS` are read. Every member must be a plain
    `<key>.npy`; the sizes the zip declares must fit `max_unpacked`, and each array's header is read first: an
    object (pickled) dtype is refused and an array larger than its member declares is refused before allocating."""
    infos = zf.infolist()
    for info in infos:
        problem = _member_problem(info)
        if problem:
            raise UserDataError(f"{label}: {problem}.")
        if info.is_dir() or "/" in info.filename or not info.filename.endswith(".npy"):
            raise UserDataError(f"{label} holds {info.filename!r}, which is not an array; an .npz written by "
                                "numpy.savez holds only <name>.npy members.")
    total = sum(info.file_size for info in infos)
    if total > max_unpacked:
        raise UserDataError(f"{label} unpacks to {megabytes(total)}; the limit is {megabytes(max_unpacked)}.")
    keys = [info.filename[:-4] for info in infos]
    if len(keys) != len(set(keys)):
        raise UserDataError(f"{label} holds the same array name twice.")
    arrays = {}
    for info in infos:
        key = info.filename[:-4]
        if key not in NPZ_KEYS:
            continue
        arrays[key] = _npy_member(zf, info, key, label)
    return arrays, sorted(keys)


def _npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, label: str) -> np.ndarray:
    fmt = np.lib.format
    try:
        with zf.open(info) as f:
            version = fmt.read_magic(f)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as err:
        raise UserDataError(f"Array {key!r} in {label} could not be read: {err}.") from None
    if dtype.hasobject:
        raise UserDataError(f"Array {key!r} in {label} is a pickled object array; pickled data is refused "
                            "(store plain numeric arrays).")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > info.file_size:
        raise UserDataError(f"Array {key!r} in {label} declares shape {tuple(shape)} ({megabytes(nbytes)}), more "
                            f"than its member holds ({megabytes(info.file_size)}); refused (a decompression "
                            "bomb or a damaged file).")
    try:
        with zf.open(info) as f:
            return fmt.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as err:
        raise UserDataError(f"Array {key!r} in {label} could not be read: {err}.") from None


def label_names_from(value: np.ndarray | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value.dtype.kind != "U" or value.ndim != 1 or len(value) > MAX_LABEL_NAMES \
            or any(len(v) > MAX_LABEL_CHARS for v in value.tolist()):
        raise UserDataError(f"'label_names' must be a 1-D array of at most {MAX_LABEL_NAMES} strings of at most "
                            f"{MAX_LABEL_CHARS} characters.")
    return tuple(str(v) for v in value.tolist())


def dataset_from_arrays(found: tuple[dict, list[str]], name: str, source: str, label: str) -> Dataset:
    """The .npz rules (module docstring) applied to its arrays (`found`: what `npz_arrays` returns)."""
    get, keys = found
    if get.get("x_train") is not None:
        for key, partner in (("x_test", "x_train"), ("y_test", "y_train"), ("y_train", "y_test")):
            if get.get(key) is None and get.get(partner) is not None:
                raise UserDataError(f"{label} has {partner!r} but is missing key {key!r} (found keys {keys}).")
        parts = (get["x_train"], get["x_test"], get.get("y_train"), get.get("y_test"))
    elif get.get("x") is not None:
        parts = _split(get["x"], get.get("y"))
    else:
        raise UserDataError(
            f"{label} is missing key 'x_train' (found keys {keys}); it needs arrays 'x_train' and "
            "'x_test' (optional 'y_train', 'y_test'), or a single 'x' (optional 'y') to split 90/10."
        )
    return build_user_dataset(name, source, *parts, levels=get.get("levels"),
                              label_names=label_names_from(get.get("label_names")))


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


def read_npz_arrays(path: str | Path, max_unpacked: int = MAX_UNCOMPRESSED_BYTES) \
        -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays with the keys `NPZ_KEYS`, every key) of an .npz file on disk, checked as in the module docstring."""
    path = resolve_path(path)
    _check_npz_file(path)
    with open_zip(path, str(path), "a .npz file") as zf:
        return npz_arrays(zf, str(path), max_unpacked)


def load_npz(path: str | Path) -> Dataset:
    """Load user data from a .npz file (see module docstring for the keys and rules)."""
    path = resolve_path(path)
    return dataset_from_arrays(read_npz_arrays(path), path.name, str(path), str(path))


# ---------------------------------------------------------------- PNG images

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


def _read_png(source, name: str, expected_size: tuple[int, int] | None,
              max_pixels: int = MAX_PNG_PIXELS) -> np.ndarray:
    """One PNG (a path or a file object) as a greyscale [H, W] uint8 array; its size is checked from the header,
    before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source, formats=["PNG"]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise UserDataError(f"{name} is {width}x{height} = {width * height:,} pixels; the limit is "
                                    f"{max_pixels:,} pixels per image (refused before decoding it).")
            if expected_size is not None and img.size != expected_size:
                raise UserDataError(
                    f"PNG sizes differ: {Path(name).name} is {img.size[0]}x{img.size[1]} but the first image is "
                    f"{expected_size[0]}x{expected_size[1]}; all images must have the same size."
                )
            if img.mode not in PNG_MODES:
                raise UserDataError(f"{name} has PNG mode {img.mode!r}; allowed modes are {PNG_MODES}.")
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        if isinstance(exc, UserDataError):
            raise
        raise UserDataError(f"{name} could not be read as a PNG image: {exc}.") from exc


def _png_dataset(name: str, source: str, images, labels, label_names, max_pixels: int) -> Dataset:
    """`images`: [(name, source)] in order -> a Dataset split 90/10."""
    first = _read_png(images[0][1], images[0][0], None, max_pixels)
    size = (first.shape[1], first.shape[0])
    x = np.stack([first] + [_read_png(src, label, size, max_pixels) for label, src in images[1:]])
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    x_train, x_test, y_train, y_test = _split(x, y)
    return build_user_dataset(name, source, x_train, x_test, y_train, y_test, label_names=label_names)


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
    return _png_dataset(folder.name, f"{len(files)} PNG files in {folder}", [(str(p), p) for p in files],
                        labels, names, MAX_PNG_PIXELS)


# ---------------------------------------------------------------- uploads (bytes from a browser)

IGNORED_ZIP_NAMES = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")  # what archivers add on their own
PNG_ZIP_LAYOUT = ("PNG images at the top of the zip (no labels), or one folder per class (the folder name is the "
                  "label), optionally all inside one top folder")


def _ignored(name: str) -> bool:
    base = PurePosixPath(name).name
    return name.startswith("__MACOSX/") or base in IGNORED_ZIP_NAMES or base.startswith("._")


def _png_zip_layout(infos: list[zipfile.ZipInfo], label: str):
    """([(member, label index or None)], label names or None) from a zip's member names (module docstring)."""
    files = [i for i in infos if not i.is_dir() and not _ignored(i.filename)]
    if not files:
        raise UserDataError(f"{label} holds no PNG images; it should hold {PNG_ZIP_LAYOUT}.")
    others = [i.filename for i in files if not i.filename.lower().endswith(".png")]
    if others:
        raise UserDataError(f"{label} holds {others[0]!r}, which is not a .png file ({len(others)} such file(s)); "
                            f"a data zip holds only {PNG_ZIP_LAYOUT}.")
    parts = [PurePosixPath(i.filename).parts for i in files]
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) > 1 for p in parts):  # everything inside one top folder: drop it
        parts = [p[1:] for p in parts]
    depth = {len(p) for p in parts}
    if max(depth) > 2:
        deep = files[[len(p) for p in parts].index(max(depth))].filename
        raise UserDataError(f"{label}: {deep!r} is nested too deep; the zip should hold {PNG_ZIP_LAYOUT}.")
    if depth == {2}:
        classes = sorted({p[0] for p in parts})
        order = sorted(range(len(files)), key=lambda k: (parts[k][0], parts[k][1]))
        return [(files[k], classes.index(parts[k][0])) for k in order], tuple(classes)
    if depth == {1}:
        order = sorted(range(len(files)), key=lambda k: parts[k][0])
        return [(files[k], None) for k in order], None
    raise UserDataError(f"{label} mixes PNG images at the top with images in class folders; it should hold "
                        f"{PNG_ZIP_LAYOUT}.")


def dataset_from_png_zip(data: bytes, name: str, limits, label: str = "the zip") -> Dataset:
    """A zip of PNG images (see `PNG_ZIP_LAYOUT`) as a data set of grey images (levels 256), split 90/10.
    `limits`: a `vae_tfp.settings.UploadLimits`."""
    with open_zip(io.BytesIO(data), label, "a zip of PNG images") as zf:
        infos = zf.infolist()
        for info in infos:
            problem = _member_problem(info)
            if problem:
                raise UserDataError(f"{label}: {problem}.")
        members, classes = _png_zip_layout(infos, label)
        if len(members) > limits.max_examples:
            raise UserDataError(f"{label} holds {len(members):,} images; this server takes at most "
                                f"{limits.max_examples:,} examples per data set.")
        total = sum(info.file_size for info, _ in members)
        if total > limits.max_unpacked_bytes:
            raise UserDataError(f"{label} unpacks to {megabytes(total)}; the limit is "
                                f"{megabytes(limits.max_unpacked_bytes)}.")
        cap = min(limits.max_unpacked_bytes, max(limits.max_image_pixels * 8, 2**20))  # one PNG's file
        images = [(info.filename, io.BytesIO(_read_member(zf, info, cap, label))) for info, _ in members]
    labels = None if classes is None else [k for _, k in members]
    return _png_dataset(name, f"{len(images)} PNG images from {label}", images, labels, classes,
                        limits.max_image_pixels)


def dataset_from_npz_bytes(data: bytes, name: str, limits, label: str = "the .npz file") -> Dataset:
    """An .npz file's bytes as a data set (the .npz rules of the module docstring). `limits`: UploadLimits."""
    with open_zip(io.BytesIO(data), label, "a .npz file") as zf:
        found = npz_arrays(zf, label, limits.max_unpacked_bytes)
    return dataset_from_arrays(found, name, label, label)


def check_dataset_size(ds: Dataset, limits, label: str) -> None:
    """UserDataError when a data set holds more examples, or more values, than `limits` allow."""
    n = len(ds.x_train) + len(ds.x_test)
    if n > limits.max_examples:
        raise UserDataError(f"{label} holds {n:,} examples; this server takes at most {limits.max_examples:,} "
                            "examples per data set.")
    nbytes = 4 * n * int(np.prod(ds.event_shape))
    if nbytes > limits.max_dataset_bytes:
        raise UserDataError(f"{label} holds {n:,} examples of shape {list(ds.event_shape)}: "
                            f"{megabytes(nbytes)} as float32; this server takes at most "
                            f"{megabytes(limits.max_dataset_bytes)} per data set.")


def dataset_from_upload(data: bytes, filename: str, limits, name: str | None = None) -> Dataset:
    """An uploaded file (bytes) as a validated data set: an .npz (arrays) or a zip of PNG images, told apart by
    what the zip holds. Every refusal is a UserDataError whose message names the file, what was wrong and what is
    allowed; the file's size is checked first ("the file is 80 MB; this server takes at most 50 MB"). A file named
    .npz, or a zip holding .npy arrays, is read as an .npz; any other zip as PNG images."""
    label = repr(filename)
    if not isinstance(data, (bytes, bytearray)):
        raise UserDataError(f"{label} is not a file's bytes.")
    if len(data) > limits.max_file_bytes:
        raise UserDataError(f"The file {label} is {megabytes(len(data))}; this server takes at most "
                            f"{megabytes(limits.max_file_bytes)} per upload.")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UserDataError(f"{label} is neither an .npz file nor a zip of PNG images (it is not a zip archive). "
                            "Save arrays with numpy.savez, or zip a folder of PNG images.")
    with open_zip(io.BytesIO(data), label, "a zip archive") as zf:
        names = [i.filename for i in zf.infolist() if not _ignored(i.filename)]
    is_npz = filename.lower().endswith(".npz") or any(n.endswith(".npy") for n in names)
    name = name or Path(filename).stem
    ds = (dataset_from_npz_bytes(data, name, limits, label) if is_npz
          else dataset_from_png_zip(data, name, limits, label))
    check_dataset_size(ds, limits, label)
    return ds
