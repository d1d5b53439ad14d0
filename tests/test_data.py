"""Tests for vae_tfp.data: built-in loaders, IDX parsing, user data validation, representations.

No test needs the network: the keras fallback is monkeypatched wherever it could be reached.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_tfp import data
from vae_tfp.data import split_fixed
from vae_tfp.datasets import builtin, user

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------- helpers

def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    array = np.asarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def write_idx_set(folder: Path, gz: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (12, 4, 3)), "y_train": rng.integers(0, 10, 12),
        "x_test": rng.integers(0, 256, (5, 4, 3)), "y_test": rng.integers(0, 10, 5),
    }
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                      ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        write_idx(folder / f"{stem}{suffix}", arrays[key], gz=gz)
    return arrays


def assert_matches_idx(ds: data.Dataset, arrays: dict[str, np.ndarray]) -> None:
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, key), arrays[key])
    assert ds.x_train.dtype == np.float32 and ds.levels == 256


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No env var, no system folders, and a keras fallback that fails like an offline download."""
    monkeypatch.delenv("VAE_TFP_DATA", raising=False)
    for name in builtin.SYSTEM_DIRS:
        monkeypatch.setitem(builtin.SYSTEM_DIRS, name, (tmp_path / "no-such-system-dir",))
    monkeypatch.setattr(builtin, "_keras_datasets_dir", lambda: tmp_path / "no-keras-cache")

    def fail(name):
        raise RuntimeError("URL fetch failure (offline)")

    monkeypatch.setattr(builtin, "_load_from_keras", fail)


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def images(n: int, shape=(5, 4), seed: int = 0, high: int = 256) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, (n, *shape)).astype(np.uint8)


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


# ---------------------------------------------------------------- digits and the registry

def test_digits_shapes_levels_and_fixed_split(digits):
    from sklearn.datasets import load_digits

    assert digits.kind == "image" and digits.levels == 17 and digits.event_shape == (8, 8)
    assert digits.x_train.shape == (1500, 8, 8) and digits.x_test.shape == (297, 8, 8)
    assert digits.x_train.dtype == np.float32
    values = np.unique(np.concatenate([digits.x_train.ravel(), digits.x_test.ravel()]))
    assert values.min() == 0 and values.max() == 16 and np.all(values == np.round(values))
    sk = load_digits()
    np.testing.assert_array_equal(digits.x_train, sk.images[:1500])
    np.testing.assert_array_equal(digits.y_test, sk.target[1500:])
    again = data.load("digits", seed=7)  # the split does not depend on the seed
    np.testing.assert_array_equal(again.x_test, digits.x_test)


def test_unknown_name_lists_registered_names_and_paths():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar10'.*digits.*fashion_mnist.*\.npz.*PNG"):
        data.load("cifar10")


def test_names_are_normalized():
    ds = data.load("Two-Moons")
    assert ds.name == "two_moons" and ds.x_train.shape == (5000, 2)


def test_list_datasets_reports_offline_availability(offline, tmp_path):
    listing = {row["name"]: row for row in data.list_datasets()}
    assert set(listing) == set(data.DATASETS) and data.DEFAULT_DATASET == "digits"
    assert listing["digits"]["available"] and listing["pinwheel"]["kind"] == "points"
    assert not listing["fashion_mnist"]["available"] and not listing["mnist"]["available"]
    write_idx_set(tmp_path / "idx")
    with_dir = {row["name"]: row["available"] for row in data.list_datasets(data_dir=str(tmp_path / "idx"))}
    assert with_dir["fashion_mnist"] and with_dir["mnist"]


def test_list_datasets_sees_debian_fashion_mnist(monkeypatch):
    if not DEBIAN_FASHION.is_dir():
        pytest.skip(f"{DEBIAN_FASHION} not installed (apt-get install dataset-fashion-mnist)")
    monkeypatch.delenv("VAE_TFP_DATA", raising=False)
    listing = {row["name"]: row["available"] for row in data.list_datasets()}
    assert listing["fashion_mnist"] is True


def test_dataset_rejects_bad_kind():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="kind 'pixels' is not allowed"):
        data.Dataset("d", "", "pixels", x, None, x, None, None)


# ---------------------------------------------------------------- (Fashion-)MNIST via IDX

def test_fashion_mnist_from_debian_folder(monkeypatch):
    if not DEBIAN_FASHION.is_dir():
        pytest.skip(f"{DEBIAN_FASHION} not installed (apt-get install dataset-fashion-mnist)")
    monkeypatch.delenv("VAE_TFP_DATA", raising=False)
    ds = data.load("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.levels == 256 and ds.x_train.dtype == np.float32
    assert ds.x_train.min() == 0 and ds.x_train.max() == 255
    assert set(np.unique(ds.y_train)) == set(range(10)) and set(np.unique(ds.y_test)) == set(range(10))
    assert ds.label_names[0] == "T-shirt/top" and len(ds.label_names) == 10
    assert str(DEBIAN_FASHION) in ds.description


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_data_dir(offline, tmp_path, gz):
    arrays = write_idx_set(tmp_path / "idx", gz=gz)
    assert_matches_idx(data.load("fashion_mnist", data_dir=str(tmp_path / "idx")), arrays)


def test_data_dir_wins_over_env_var(offline, tmp_path, monkeypatch):
    first = write_idx_set(tmp_path / "a", seed=1)
    write_idx_set(tmp_path / "b" / "fashion_mnist", seed=2)
    monkeypatch.setenv("VAE_TFP_DATA", str(tmp_path / "b"))
    assert_matches_idx(data.load("fashion_mnist", data_dir=str(tmp_path / "a")), first)


@pytest.mark.parametrize("name, sub", [("fashion_mnist", "fashion-mnist"), ("fashion_mnist", "."), ("mnist", "mnist")])
def test_env_var_folder_or_subfolder(offline, tmp_path, monkeypatch, name, sub):
    arrays = write_idx_set(tmp_path / "root" / sub, gz=True)
    monkeypatch.setenv("VAE_TFP_DATA", str(tmp_path / "root"))
    ds = data.load(name)
    assert_matches_idx(ds, arrays)
    assert ds.name == name


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_missing_idx_files_give_clear_error(offline, tmp_path, name):
    (tmp_path / "partial").mkdir()
    write_idx(tmp_path / "partial" / "train-images-idx3-ubyte", images(3))  # incomplete set is skipped
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load(name, data_dir=str(tmp_path / "partial"))
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "--data-dir" in message and "VAE_TFP_DATA" in message and "offline" in message
    assert str(tmp_path / "partial") in message
    if name == "fashion_mnist":
        assert "apt-get install dataset-fashion-mnist" in message


def test_keras_fallback_is_used_when_no_files(offline, monkeypatch):
    fake = ((images(11, (28, 28)), np.arange(11) % 10), (images(3, (28, 28)), np.arange(3)))
    monkeypatch.setattr(builtin, "_load_from_keras", lambda name: fake)
    ds = data.load("mnist")
    np.testing.assert_array_equal(ds.x_train, fake[0][0])
    assert ds.x_train.dtype == np.float32 and "keras" in ds.description


def test_idx_parser_reads_dims(tmp_path):
    arr = images(3, (2, 5))
    write_idx(tmp_path / "f", arr, gz=True)
    out = data.read_idx(tmp_path / "f")
    assert out.dtype == np.uint8 and out.shape == (3, 2, 5)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("raw, match", [
    (b"\x00", "too short"),
    (b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc", "bad magic"),
    (b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc", "dtype code 0x0d"),
    (b"\x00\x00\x08\x07", "7 dimensions"),
    (b"\x00\x00\x08\x02" + (3).to_bytes(4, "big"), "truncated inside its header"),
    (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", "holds 3 data bytes.*need 5"),
])
def test_idx_parser_rejects_garbled_files(raw, match):
    with pytest.raises(ValueError, match=match):
        data.parse_idx(raw, "test.idx")


def test_truncated_gzip_idx_file(offline, tmp_path):
    arrays_dir = tmp_path / "idx"
    write_idx_set(arrays_dir, gz=True)
    target = arrays_dir / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-12])
    with pytest.raises(ValueError, match="truncated gzip"):
        data.load("fashion_mnist", data_dir=str(arrays_dir))


def test_idx_images_and_labels_must_agree(offline, tmp_path):
    write_idx_set(tmp_path / "idx")
    write_idx(tmp_path / "idx" / "t10k-labels-idx1-ubyte", np.arange(4))
    with pytest.raises(ValueError, match="test files disagree"):
        data.load("fashion_mnist", data_dir=str(tmp_path / "idx"))


# ---------------------------------------------------------------- synthetic sets

@pytest.mark.parametrize("name, classes", [("two_moons", 2), ("rings", 2), ("pinwheel", 5)])
def test_toy_point_sets(name, classes):
    ds = data.load(name, seed=3)
    assert ds.kind == "points" and ds.levels is None and ds.event_shape == (2,)
    assert ds.x_train.shape == (5000, 2) and ds.x_test.shape == (1000, 2) and ds.x_train.dtype == np.float32
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()
    assert set(np.unique(ds.y_train)) == set(range(classes))
    np.testing.assert_array_equal(data.load(name, seed=3).x_train, ds.x_train)
    assert not np.array_equal(data.load(name, seed=4).x_train, ds.x_train)


def test_pinwheel_arms_leave_the_origin():
    ds = data.load("pinwheel")
    radius = np.linalg.norm(ds.x_train, axis=1)
    assert 0.8 < np.median(radius) < 1.6  # radial feature ~ N(1, 0.3)


def test_linear_gaussian_matches_its_truth():
    ds = data.load("linear_gaussian", seed=5)
    w, b, sigma = ds.truth["W"], ds.truth["b"], ds.truth["sigma"]
    assert w.shape == (2, 10) and b.shape == (10,) and sigma == 0.5
    assert ds.x_train.shape == (5000, 10) and ds.x_test.shape == (1000, 10) and ds.y_train is None
    n = len(ds.x_train)
    cov = w.T @ w + sigma**2 * np.eye(10)
    sample_cov = np.cov(ds.x_train.astype(np.float64), rowvar=False)
    cov_se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(sample_cov - cov) < 5 * cov_se)
    mean_se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(ds.x_train.mean(0) - b) < 5 * mean_se)
    np.testing.assert_array_equal(data.load("linear_gaussian", seed=6).truth["W"], w)  # model fixed


# ---------------------------------------------------------------- representations

def test_binary_dynamic(digits):
    p = data.prepare(digits, "binary")
    assert p.dynamic_binarization and p.representation == "binary" and p.levels is None
    np.testing.assert_allclose(p.x_train, digits.x_train / 16, rtol=1e-6)
    assert set(np.unique(p.x_test)) == {0.0, 1.0} and p.x_test.dtype == np.float32
    unit_test = digits.x_test / 16
    np.testing.assert_array_equal(p.x_test, data.binarize(unit_test.astype(np.float32), 123))
    assert "seed 123" in p.note and "every epoch" in p.note
    assert data.prepare(digits, "binary", seed=2).note.count("seed 125") == 1


def test_binarize_mean_matches_intensity_mean(digits):
    unit = (digits.x_train / 16).astype(np.float32)
    rng = np.random.default_rng(0)
    first, second = data.binarize(unit, rng), data.binarize(unit, rng)
    assert set(np.unique(first)) == {0.0, 1.0} and first.dtype == np.float32
    assert not np.array_equal(first, second)  # a Generator advances: new sample each epoch
    assert abs(first.mean() - unit.mean()) < 0.01
    with pytest.raises(ValueError, match="1.5 at index"):
        data.binarize(np.array([0.2, 1.5]), 0)


def test_binary_static_is_deterministic_by_seed(digits):
    a = data.prepare(digits, "binary", binarization="static", seed=1)
    b = data.prepare(digits, "binary", binarization="static", seed=1)
    c = data.prepare(digits, "binary", binarization="static", seed=2)
    assert not a.dynamic_binarization and set(np.unique(a.x_train)) == {0.0, 1.0}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    np.testing.assert_array_equal(a.x_train, data.binarize((digits.x_train / 16).astype(np.float32), 457))


def test_binary_threshold(digits):
    p = data.prepare(digits, "binary", binarization="threshold")
    np.testing.assert_array_equal(p.x_train, (digits.x_train / 16 >= 0.5).astype(np.float32))
    assert not p.dynamic_binarization and "0.5" in p.note


def test_unit_levels_real(digits):
    unit = data.prepare(digits, "unit")
    assert unit.x_train.min() == 0 and unit.x_train.max() == 1 and unit.levels is None
    levels = data.prepare(digits, "levels")
    assert levels.levels == 17 and levels.x_train.dtype == np.float32
    np.testing.assert_array_equal(levels.x_test, digits.x_test)
    assert np.all(levels.x_train == np.round(levels.x_train))
    real = data.prepare(digits, "real")
    np.testing.assert_allclose(real.x_train, digits.x_train / 16, rtol=1e-6)
    assert real.representation == "real" and not real.dynamic_binarization


def test_real_dequantized(digits):
    p = data.prepare(digits, "real", dequantize=True, seed=1)
    assert p.x_train.min() >= 0 and p.x_train.max() < 1
    np.testing.assert_array_equal(np.floor(p.x_train * 17), digits.x_train)
    np.testing.assert_array_equal(p.x_test, data.prepare(digits, "real", dequantize=True, seed=1).x_test)
    with pytest.raises(ValueError, match="dequantize=True applies only to the 'real'"):
        data.prepare(digits, "unit", dequantize=True)


def test_points_only_fit_real():
    ds = data.load("two_moons")
    p = data.prepare(ds, "real")
    np.testing.assert_array_equal(p.x_train, ds.x_train)
    with pytest.raises(ValueError, match="real-valued toy points.*'real' representation"):
        data.prepare(ds, "binary")


@pytest.mark.parametrize("kwargs, match", [
    ({"representation": "ternary"}, r"Unknown representation 'ternary'; allowed are \('binary'"),
    ({"representation": "binary", "binarization": "random"}, r"Unknown binarization 'random'.*'dynamic'"),
])
def test_prepare_rejects_unknown_choices(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.prepare(digits, **kwargs)


@pytest.mark.parametrize("x, rep, levels, match", [
    (np.array([[0.0, 0.5]]), "binary", None, r"Value 0.5 at index \(0, 1\).*\{0, 1\}"),
    (np.array([1.0, 1.2]), "unit", None, r"Value 1.2 at index \(1,\).*\[0, 1\]"),
    (np.array([0.0, -1.0]), "levels", 17, r"Value -1.0 at index \(1,\).*0\.\.16"),
    (np.array([3.5]), "levels", 17, r"Value 3.5 at index \(0,\)"),
    (np.array([17.0]), "levels", 17, r"Value 17.0 .*0\.\.16"),
    (np.array([0.0, np.nan]), "real", None, r"Non-finite value nan at index \(1,\)"),
    (np.array([np.inf]), "binary", None, r"Non-finite value inf"),
    (np.array([1.0]), "levels", None, r"needs an integer levels >= 2"),
    (np.array([1.0]), "counts", None, r"Unknown representation 'counts'"),
])
def test_check_support_errors(x, rep, levels, match):
    with pytest.raises(ValueError, match=match):
        data.check_support(x, rep, levels=levels)


def test_check_support_accepts_valid_data(digits):
    assert data.check_support(np.array([0.0, 1.0, 1.0]), "binary") is None
    assert data.check_support(np.linspace(0, 1, 7), "unit") is None
    assert data.check_support(digits.x_train, "levels", levels=17) is None
    assert data.check_support(np.array([-3e4, 2.5]), "real") is None


# ---------------------------------------------------------------- user data: .npz

def test_npz_round_trip_with_labels(tmp_path):
    x_train, x_test = images(20), images(4, seed=1)
    path = save_npz(tmp_path / "mine.npz", x_train=x_train, x_test=x_test,
                    y_train=np.arange(20) % 3, y_test=np.arange(4) % 3)
    ds = data.load(str(path))
    assert ds.kind == "image" and ds.levels == 256 and ds.name == "mine.npz"
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.y_test, np.arange(4) % 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


def test_npz_single_x_is_split_90_10(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 3))
    ds = data.load(str(save_npz(tmp_path / "p.npz", x=x, y=np.arange(30))))
    assert ds.kind == "points" and ds.levels is None
    assert len(ds.x_train) == 27 and len(ds.x_test) == 3
    train_idx, test_idx = split_fixed(30)
    np.testing.assert_array_equal(ds.y_test, test_idx)
    np.testing.assert_allclose(ds.x_train, x[train_idx].astype(np.float32))
    np.testing.assert_array_equal(data.load(str(tmp_path / "p.npz")).y_test, ds.y_test)


@pytest.mark.parametrize("make, levels, note", [
    (lambda: np.random.default_rng(0).random((12, 3, 3)), 256, "converted to grey levels 0..255"),
    (lambda: np.random.default_rng(0).integers(0, 2, (12, 3, 3)), 2, "integer grey levels 0..1"),
    (lambda: np.random.default_rng(0).integers(0, 17, (12, 3, 3)), 256, "integer grey levels 0..255"),
    (lambda: np.random.default_rng(0).random((12, 3, 3, 2)) > 0.5, 2, "0..1"),
])
def test_npz_levels_rule(tmp_path, make, levels, note):
    x = make()
    ds = data.load(str(save_npz(tmp_path / "d.npz", x_train=x[:10], x_test=x[10:])))
    assert ds.levels == levels and note in ds.description
    assert ds.x_train.max() <= levels - 1 and np.all(ds.x_train == np.round(ds.x_train))
    if x.dtype.kind == "f":
        np.testing.assert_array_equal(ds.x_train, np.round(x[:10] * 255))


def test_npz_declared_levels(tmp_path):
    x = images(12, high=17)
    ds = data.load(str(save_npz(tmp_path / "d.npz", x_train=x[:10], x_test=x[10:], levels=17)))
    assert ds.levels == 17 and "declared" in ds.description
    with pytest.raises(ValueError, match=r"declared levels=4 allows only integers in 0\.\.3"):
        data.load(str(save_npz(tmp_path / "e.npz", x_train=x[:10] + 4, x_test=x[10:], levels=4)))


@pytest.mark.parametrize("arrays, match", [
    ({"a": np.zeros((12, 2))}, r"missing key 'x_train' \(found keys \['a'\]\)"),
    ({"x_train": np.zeros((12, 2))}, r"missing key 'x_test'"),
    ({"x_train": np.zeros((12, 2)), "x_test": np.zeros((2, 2)), "y_train": np.zeros(12)}, r"missing key 'y_test'"),
    ({"x_train": np.array([[0.0, np.nan]] * 12), "x_test": np.zeros((2, 2))},
     r"x_train contains 12 NaN/Inf value\(s\), first nan at index \(0, 1\)"),
    ({"x_train": np.zeros(12), "x_test": np.zeros(2)}, r"x_train has 1 dimension\(s\).*allowed are 2-D"),
    ({"x_train": np.zeros((12, 2)), "x_test": np.zeros((2, 3))}, r"train and test shapes must match"),
    ({"x_train": np.zeros((5, 2)), "x_test": np.zeros((2, 2))}, r"Too few examples: 5 train"),
    ({"x_train": np.array([["a", "b"]] * 12), "x_test": np.zeros((2, 2))}, r"dtype <U1 which is not numeric"),
    ({"x_train": np.full((12, 3, 3), 300.0), "x_test": np.zeros((2, 3, 3))}, r"range over \[0, 300\]; allowed"),
    ({"x_train": np.full((12, 3, 3), 0.5), "x_test": np.full((2, 3, 3), -0.5)}, r"range over \[-0.5, 0.5\]"),
    ({"x_train": np.zeros((12, 2)), "x_test": np.zeros((2, 2)), "y_train": np.zeros(11), "y_test": np.zeros(2)},
     r"y_train has 11 labels but there are 12"),
    ({"x": np.zeros((8, 2))}, r"Too few examples: 8"),
    ({"x_train": np.zeros((12, 2)), "x_test": np.zeros((2, 2)), "levels": 5}, r"'levels' was given.*points"),
])
def test_bad_npz_files(tmp_path, arrays, match):
    path = save_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        data.load(str(path))


def test_pickled_object_arrays_are_refused(tmp_path):
    obj = np.empty(12, dtype=object)
    obj[:] = [{"a": i} for i in range(12)]
    path = save_npz(tmp_path / "obj.npz", x_train=obj, x_test=obj)
    with pytest.raises(ValueError, match=r"'x_train'.*pickled object array; pickled data is refused"):
        data.load(str(path))


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(ValueError, match="Data file not found"):
        data.load(str(tmp_path / "nope.npz"))
    fake = tmp_path / "fake.npz"
    fake.write_text("not a zip")
    with pytest.raises(ValueError, match=r"not a \.npz file \(not a zip archive\)"):
        data.load(str(fake))


def test_too_large_file(tmp_path, monkeypatch):
    path = save_npz(tmp_path / "big.npz", x_train=np.zeros((12, 2)), x_test=np.zeros((2, 2)))
    monkeypatch.setattr(user, "MAX_USER_FILE_BYTES", 100)
    with pytest.raises(ValueError, match=r"too large \(\d+ bytes\); the limit is 100 bytes"):
        data.load(str(path))


# ---------------------------------------------------------------- user data: PNG folders

def write_pngs(folder: Path, arrays: np.ndarray, mode: str = "L") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(arrays):
        img = Image.fromarray(arr, mode="L")
        (img.convert(mode) if mode != "L" else img).save(folder / f"img_{i:03d}.png")


def test_png_folder_round_trip(tmp_path):
    x = images(12, (6, 5))
    write_pngs(tmp_path / "pngs", x)
    ds = data.load(str(tmp_path / "pngs"))
    assert ds.kind == "image" and ds.levels == 256 and ds.event_shape == (6, 5) and ds.y_train is None
    train_idx, test_idx = split_fixed(12)
    np.testing.assert_array_equal(ds.x_train, x[train_idx])
    np.testing.assert_array_equal(ds.x_test, x[test_idx])


def test_png_class_subfolders_and_rgb(tmp_path):
    x = images(12, (4, 4))
    write_pngs(tmp_path / "root" / "cats", x[:6], mode="RGB")
    write_pngs(tmp_path / "root" / "dogs", x[6:])
    ds = data.load(str(tmp_path / "root"))
    assert ds.label_names == ("cats", "dogs")
    labels = np.concatenate([ds.y_train, ds.y_test])
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 6
    _, test_idx = split_fixed(12)
    np.testing.assert_array_equal(ds.x_test, x[test_idx])  # grey RGB converts back exactly


def test_png_folder_problems(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="PNG folder .* is empty"):
        data.load(str(tmp_path / "empty"))
    write_pngs(tmp_path / "mixed", images(11, (4, 4)))
    Image.fromarray(images(1, (5, 4))[0]).save(tmp_path / "mixed" / "z_last.png")
    with pytest.raises(ValueError, match=r"PNG sizes differ: z_last.png is 4x5 but the first image is 4x4"):
        data.load(str(tmp_path / "mixed"))
    write_pngs(tmp_path / "broken", images(11, (4, 4)))
    (tmp_path / "broken" / "zz.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="zz.png could not be read as a PNG image"):
        data.load(str(tmp_path / "broken"))
    write_pngs(tmp_path / "few", images(3, (4, 4)))
    with pytest.raises(ValueError, match="Too few examples: 3"):
        data.load(str(tmp_path / "few"))


def test_import_is_light():
    import subprocess
    import sys

    heavy = "('tensorflow', 'keras', 'sklearn', 'PIL')"
    code = f"import sys, vae_tfp.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
