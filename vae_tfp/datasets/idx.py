"""Strict reader for IDX files (the MNIST / Fashion-MNIST format) and the folder search for them.

An IDX file is: two zero bytes, a dtype code (only 0x08 = unsigned byte is accepted),
the number of dimensions, one big-endian uint32 per dimension, then exactly
prod(dims) data bytes. Files may be gzipped (detected from the gzip magic bytes).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 512 * 1024 * 1024  # decompressed size limit, far above MNIST's 47 MB

SPLIT_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    stream = zlib.decompressobj(wbits=31)
    try:
        data = stream.decompress(raw, MAX_IDX_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"IDX file {path} is a damaged gzip file: {exc}.") from exc
    if len(data) > MAX_IDX_BYTES:
        raise ValueError(f"IDX file {path} decompresses to more than {MAX_IDX_BYTES} bytes; refusing it.")
    if not stream.eof:
        raise ValueError(f"IDX file {path} is a truncated gzip file (the compressed stream ends early).")
    return data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking magic, dtype code, dims and byte count."""
    if len(data) < 4:
        raise ValueError(f"IDX file {source} is too short ({len(data)} bytes) to hold a header.")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"IDX file {source} has bad magic bytes {data[:2].hex()}; expected 0000 (is it an IDX file?)."
        )
    if data[2] != IDX_UBYTE:
        raise ValueError(f"IDX file {source} has dtype code 0x{data[2]:02x}; only 0x08 (unsigned byte) is allowed.")
    ndim = data[3]
    if not 1 <= ndim <= 4:
        raise ValueError(f"IDX file {source} declares {ndim} dimensions; allowed are 1 to 4.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX file {source} is truncated inside its header ({len(data)} bytes).")
    dims = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header
    if actual != expected:
        raise ValueError(
            f"IDX file {source} holds {actual} data bytes but its dims {dims} need {expected}; "
            "the file is truncated or damaged."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into a uint8 array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx_set(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (plain or .gz), or None if any is missing."""
    found = {key: _find_file(folder, stem) for key, stem in SPLIT_FILES.items()}
    if any(p is None for p in found.values()):
        return None
    return found  # type: ignore[return-value]


def candidate_folders(data_dir: str | None, subfolders: tuple[str, ...], system_dirs: tuple[Path, ...]) -> list[Path]:
    """Folders searched in order: data_dir, $VAE_TFP_DATA (each itself and its subfolders), system dirs."""
    roots = [Path(p).expanduser() for p in (data_dir, os.environ.get("VAE_TFP_DATA")) if p]
    folders = []
    for root in roots:
        folders.append(root)
        folders.extend(root / sub for sub in subfolders)
    folders.extend(system_dirs)
    return folders


def load_idx_set(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Read the four IDX files and check images/labels agree."""
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                f"IDX {split} files disagree: images {x.shape} ({files[f'x_{split}']}) and labels "
                f"{y.shape} ({files[f'y_{split}']}); need [n, H, W] images and n labels."
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"IDX train images {arrays['x_train'].shape} and test images {arrays['x_test'].shape} differ in size."
        )
    return arrays
