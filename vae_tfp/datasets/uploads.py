"""Uploaded data sets kept in a folder (a session's data root), and the test split a run carries for its views.

    <root>/<name>.npz    x_train, x_test, y_train, y_test (when labelled), levels (images), label_names (when named):
                         the validated arrays, written by numpy.savez_compressed and read back through the same
                         validator as any .npz (`vae_tfp.datasets.user`)
    <root>/<name>.json   {"name", "file", "kind", "event_shape", "levels", "n_train", "n_test", "description", ...}

    <run>/test_data.npz  x_test, y_test, levels, label_names: the (capped) test split of a run trained on data that
                         is not built in, written when the run is bundled or published, so whoever opens it gets the
                         data from the run itself, never from someone's space or a server path

A config names an uploaded data set `upload:<name>` and a run's carried test split `bundle:<name>`. The name is one
plain path component (letters, digits, '.', '_', '-'), so it resolves inside the root and names no server path: a link
or a bundle that says `upload:faces` means "faces in the space of whoever opens it". Names are never reused: a second
upload of faces.zip becomes `faces-2`, so a run's `upload:` name keeps meaning the data it was trained on.

Imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import secrets
import time
from pathlib import Path

import numpy as np

from ._core import Dataset
from .user import (
    MAX_UNCOMPRESSED_BYTES,
    UserDataError,
    build_user_dataset,
    dataset_from_arrays,
    label_names_from,
    npz_arrays,
    open_zip,
    read_npz_arrays,
)

UPLOAD_PREFIX = "upload:"  # a data set uploaded into the session's space
BUNDLED_PREFIX = "bundle:"  # the test split a run carries (test_data.npz)
TEST_DATA = "test_data.npz"
MAX_CARRIED_TEST = 1000  # test examples a bundle carries
MAX_TEST_DATA_BYTES = 32 * 2**20
DEFAULT_ROOT = "uploads"


def is_upload(name) -> bool:
    return isinstance(name, str) and name.startswith(UPLOAD_PREFIX)


def is_bundled(name) -> bool:
    return isinstance(name, str) and name.startswith(BUNDLED_PREFIX)


def default_root(root=None) -> Path:
    """The uploads folder: `root`, else $VAE_TFP_UPLOADS, else ./uploads (local mode and the command line)."""
    return Path(root or os.environ.get("VAE_TFP_UPLOADS") or DEFAULT_ROOT)


def _plain(name: str) -> str:
    from vae_tfp.runs import safe_name

    return safe_name(name)


def path_of(root, name: str) -> Path:
    """The .npz of `upload:<name>` (or a bare name) inside `root`; ValueError for a name that is not one plain
    file name."""
    bare = name[len(UPLOAD_PREFIX):] if is_upload(name) else name
    if _plain(bare) != bare:
        raise ValueError(f"uploaded data set name {name!r} is not allowed: use letters, digits, '.', '_' and '-'")
    root = Path(root).resolve()
    path = (root / f"{bare}.npz").resolve()
    if path.parent != root:
        raise ValueError(f"uploaded data set name {name!r} would leave its folder")
    return path


def list_uploads(root) -> list[dict]:
    """One description per uploaded data set in `root`, oldest first: {"name": "upload:faces", "label": "faces",
    "description", "kind", "event_shape", "levels", "n_train", "n_test", "file", "added"}."""
    root = Path(root)
    if not root.is_dir():
        return []
    rows = []
    for meta in root.glob("*.json"):
        if meta.name.startswith(".") or not meta.with_suffix(".npz").is_file():
            continue
        try:
            row = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(row, dict) and row.get("name") == UPLOAD_PREFIX + meta.stem:
            rows.append(row)
    return sorted(rows, key=lambda r: r.get("added", 0))


def _canonical(x: np.ndarray, levels: int | None) -> np.ndarray:
    """Grey levels as the smallest integer type that holds them; points as float32."""
    if levels is None:
        return x.astype(np.float32)
    return x.astype(np.uint8 if levels <= 256 else np.uint16)


def _arrays(ds: Dataset, *, test_only: bool = False, max_test: int | None = None) -> dict[str, np.ndarray]:
    n = len(ds.x_test) if max_test is None else min(max_test, len(ds.x_test))
    arrays = {"x_test": _canonical(ds.x_test[:n], ds.levels)}
    if ds.y_test is not None:
        arrays["y_test"] = ds.y_test[:n].astype(np.int64)
    if not test_only:
        arrays["x_train"] = _canonical(ds.x_train, ds.levels)
        if ds.y_train is not None:
            arrays["y_train"] = ds.y_train.astype(np.int64)
    if ds.levels is not None:
        arrays["levels"] = np.asarray(ds.levels, dtype=np.int64)
    if ds.label_names:
        arrays["label_names"] = np.asarray(ds.label_names, dtype=str)
    return arrays


def _write_npz(path: Path, arrays: dict) -> None:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(root, dataset: Dataset, base: str, *, file: str = "", max_count: int | None = None) -> str:
    """Keep a validated data set in `root` under a fresh name (base, base-2, ...); returns "upload:<name>".
    UserDataError when `root` already holds `max_count` data sets."""
    from vae_tfp.runs import atomic_write_json

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    held = list_uploads(root)
    if max_count is not None and len(held) >= max_count:
        raise UserDataError(f"this session already holds {len(held)} uploaded data sets; this server keeps at most "
                            f"{max_count}. Remove one first.")
    try:
        base = _plain(base)[:60]
    except ValueError:
        base = "data"
    for i in range(1, 10_000):
        name = base if i == 1 else f"{base}-{i}"
        meta = root / f"{name}.json"
        try:  # claim the name: O_EXCL, so two uploads never share one
            os.close(os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        try:
            _write_npz(root / f"{name}.npz", _arrays(dataset))
            shape = "x".join(map(str, dataset.event_shape))
            what = (f"{dataset.levels} grey levels" if dataset.kind == "image" else "real-valued points")
            atomic_write_json(meta, {
                "name": UPLOAD_PREFIX + name, "label": name, "file": file, "kind": dataset.kind,
                "event_shape": list(dataset.event_shape), "levels": dataset.levels,
                "n_train": len(dataset.x_train), "n_test": len(dataset.x_test), "added": time.time(),
                "labels": list(dataset.label_names) if dataset.label_names else None,
                "description": f"Your upload {file or name}: {len(dataset.x_train) + len(dataset.x_test):,} "
                               f"{'images' if dataset.kind == 'image' else 'points'} of shape {shape} ({what}), "
                               f"{len(dataset.x_train):,} train / {len(dataset.x_test):,} test."})
        except BaseException:
            meta.unlink(missing_ok=True)
            (root / f"{name}.npz").unlink(missing_ok=True)
            raise
        return UPLOAD_PREFIX + name
    raise RuntimeError(f"no free name for {base!r} in {root}")


def load(root, name: str) -> Dataset:
    """The uploaded data set `upload:<name>` from `root` (validated again as it is read)."""
    path = path_of(root, name)
    if not path.is_file():
        raise UserDataError(f"there is no uploaded data set {name!r} here (uploads are private to the session that "
                            "made them)")
    full = UPLOAD_PREFIX + path.stem
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        description = str(meta.get("description", ""))
    except (OSError, json.JSONDecodeError):
        description = f"Your upload {path.stem}."
    ds = dataset_from_arrays(read_npz_arrays(path), full, path.stem, path.stem)
    return dataclasses.replace(ds, name=full, description=description)


def delete(root, name: str) -> None:
    """Remove an uploaded data set. Its description stays behind as a marker that keeps the name taken, so a later
    upload never gets a name under which runs were trained on other data."""
    from vae_tfp.runs import atomic_write_json

    path = path_of(root, name)
    if path.with_suffix(".json").exists():
        atomic_write_json(path.with_suffix(".json"), {"name": UPLOAD_PREFIX + path.stem, "removed": time.time()})
    path.unlink(missing_ok=True)


# --- the test split a run carries -----------------------------------------------------------------------------------
def test_split_bytes(dataset: Dataset, max_examples: int = MAX_CARRIED_TEST) -> bytes:
    """The first `max_examples` test examples (and labels, levels, label names) as .npz bytes."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **_arrays(dataset, test_only=True, max_test=max_examples))
    return buffer.getvalue()


def read_test_split(source, name: str, *, max_bytes: int = MAX_TEST_DATA_BYTES) -> Dataset:
    """A carried test split (a path or .npz bytes) as a Dataset whose training set is its test set (the views read
    only test data). Checked like any uploaded .npz; UserDataError says what is wrong."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > max_bytes:
            raise UserDataError(f"{TEST_DATA} is {len(source):,} bytes; the limit is {max_bytes:,}")
        with open_zip(io.BytesIO(source), TEST_DATA, "a .npz file") as zf:
            arrays, keys = npz_arrays(zf, TEST_DATA, MAX_UNCOMPRESSED_BYTES)
    else:
        arrays, keys = read_npz_arrays(source)
    if "x_test" not in arrays or "x_train" in arrays or "x" in arrays:
        raise UserDataError(f"{TEST_DATA} must hold x_test (optional y_test, levels, label_names), found {keys}")
    if len(arrays["x_test"]) > MAX_CARRIED_TEST:
        raise UserDataError(f"{TEST_DATA} holds {len(arrays['x_test'])} examples; a run carries at most "
                            f"{MAX_CARRIED_TEST}")
    x, y = arrays["x_test"], arrays.get("y_test")
    ds = build_user_dataset(name, TEST_DATA, x, x, y, y, levels=arrays.get("levels"),
                            label_names=label_names_from(arrays.get("label_names")), min_train=0)
    return dataclasses.replace(ds, description=f"The test split this run carries ({len(x):,} examples of shape "
                                               f"{list(ds.event_shape)}).")


def carried_name(dataset_name: str) -> str:
    """`bundle:<name>`: how a run whose data it carries names it (from `upload:faces`, `/home/me/faces.npz`, ...)."""
    stem = re.split(r"[/\\:]", dataset_name.rstrip("/\\"))[-1]
    stem = stem[:-4] if stem.lower().endswith(".npz") else stem
    try:
        stem = _plain(stem)[:60]
    except ValueError:
        stem = "data"
    return BUNDLED_PREFIX + stem
