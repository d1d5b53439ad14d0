"""Uploaded data: an .npz or a zip of PNG images as bytes (vae_tfp.datasets.user.dataset_from_upload), every refusal
with its message, the store of a session's uploads (vae_tfp.datasets.uploads) and the test split a run carries.

Every file here is made in memory, so the tests are bounded whatever the machine: the caps are set small
(`UploadLimits`) instead of making big files."""

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from vae_tfp.data import split_fixed
from vae_tfp.datasets import uploads, user
from vae_tfp.datasets.user import UserDataError, dataset_from_upload
from vae_tfp.settings import UploadLimits

LIMITS = UploadLimits(max_file_bytes=2**20, max_examples=500, max_dataset_bytes=2**20, max_image_pixels=64 * 64,
                      max_unpacked_bytes=4 * 2**20)


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    img = Image.fromarray(array.astype(np.uint8), mode="L")
    (img.convert(mode) if mode != "L" else img).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict, attrs: dict | None = None, flags: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if attrs and name in attrs:
                info.external_attr = attrs[name] << 16
            zf.writestr(info, data)
    data = buffer.getvalue()
    for name, flag in (flags or {}).items():  # set a general-purpose flag bit in both headers after writing
        data = _set_flag(data, name, flag)
    return data


def _set_flag(data: bytes, name: str, flag: int) -> bytes:
    out = bytearray(data)
    raw = name.encode()
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (i := out.find(signature, start)) >= 0:
            if raw in out[i:i + 80]:
                value = int.from_bytes(out[i + offset:i + offset + 2], "little") | flag
                out[i + offset:i + offset + 2] = value.to_bytes(2, "little")
            start = i + 4
    return bytes(out)


def images(n, shape=(8, 8), seed=0, high=256):
    return np.random.default_rng(seed).integers(0, high, size=(n, *shape)).astype(np.uint8)


# --- what gets in ---------------------------------------------------------------------------------------------------
def test_an_npz_upload_is_the_same_data_set_as_the_file():
    x = images(30)
    ds = dataset_from_upload(npz(x=x, y=np.arange(30) % 3), "mine.npz", LIMITS)
    train, test = split_fixed(30)
    assert ds.kind == "image" and ds.levels == 256 and ds.name == "mine"
    np.testing.assert_array_equal(ds.x_train, x[train])
    np.testing.assert_array_equal(ds.y_test, (np.arange(30) % 3)[test])


@pytest.mark.parametrize("prefix", ["", "faces/"])
def test_a_zip_of_pngs_in_class_folders_is_labelled_by_folder(prefix):
    x = images(24, (6, 5))
    members = {f"{prefix}{'cats' if i < 12 else 'dogs'}/{i:03d}.png": png(x[i], "RGB" if i % 2 else "L")
               for i in range(24)}
    members["__MACOSX/._junk.png"] = b"resource fork"  # what macOS' archiver adds is skipped
    ds = dataset_from_upload(zipped(members), "pets.zip", LIMITS)
    assert ds.label_names == ("cats", "dogs") and ds.event_shape == (6, 5) and ds.levels == 256
    train, test = split_fixed(24)
    labels = (np.arange(24) >= 12).astype(np.int64)
    np.testing.assert_array_equal(ds.y_train, labels[train])
    np.testing.assert_array_equal(ds.y_test, labels[test])
    np.testing.assert_array_equal(ds.x_train, x[train])  # grey images (also those saved as RGB) stay exact
    np.testing.assert_array_equal(ds.x_test, x[test])


def test_a_zip_of_pngs_at_the_top_has_no_labels():
    x = images(15)
    ds = dataset_from_upload(zipped({f"{i:02d}.png": png(x[i]) for i in range(15)}), "flat.zip", LIMITS)
    train, _ = split_fixed(15)
    assert ds.y_train is None and ds.label_names is None
    np.testing.assert_array_equal(ds.x_train, x[train])


# --- every refusal, in words ----------------------------------------------------------------------------------------
def _bomb_npz() -> bytes:
    """An .npz whose x_train header declares 10^9 float64 values while its member holds a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    return zipped({"x_train.npy": header.getvalue() + b"\x00" * 64, "x_test.npy": _npy(np.zeros((2, 2)))})


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _pickled() -> bytes:
    obj = np.empty(12, dtype=object)
    obj[:] = [{"a": i} for i in range(12)]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=obj, x_test=obj)
    return buffer.getvalue()


REFUSALS = [
    ("over the size cap", lambda: b"\0" * (2**20 + 2**19), "big.npz",
     "The file 'big.npz' is 1.5 MB; this server takes at most 1 MB per upload"),
    ("not a zip", lambda: b"just some text", "notes.txt", "is neither an .npz file nor a zip of PNG images"),
    ("pickled objects", _pickled, "obj.npz", "pickled object array; pickled data is refused"),
    ("decompression bomb (.npy header)", _bomb_npz, "bomb.npz", "more than its member holds"),
    ("decompression bomb (declared sizes)", lambda: npz(x=np.zeros((20_000, 64))), "zeros.npz",
     "unpacks to 9.8 MB; the limit is 4 MB"),
    ("a file that is not an array", lambda: zipped({"x.npy": _npy(np.zeros((12, 2))), "run.sh": b"rm -rf /"}),
     "odd.npz", "'run.sh', which is not an array"),
    ("strings", lambda: npz(x_train=np.array([["a", "b"]] * 12), x_test=np.zeros((2, 2))), "s.npz",
     "dtype <U1 which is not numeric"),
    ("a shape that is no data", lambda: npz(x_train=np.zeros(12), x_test=np.zeros(2)), "flat.npz",
     "has 1 dimension(s)"),
    ("values out of range", lambda: npz(x_train=np.full((12, 3, 3), 0.5), x_test=np.full((2, 3, 3), -0.5)),
     "r.npz", "range over [-0.5, 0.5]"),
    ("NaN", lambda: npz(x_train=np.array([[0.0, np.nan]] * 12), x_test=np.zeros((2, 2))), "n.npz",
     "NaN/Inf value(s)"),
    ("too many examples", lambda: npz(x=np.zeros((600, 2))), "many.npz",
     "holds 600 examples; this server takes at most 500"),
    ("too large in memory", lambda: npz(x=np.zeros((400, 1000))), "wide.npz",
     "1.5 MB as float32; this server takes at most 1 MB"),
    ("too many images", lambda: zipped({f"{i:03d}.png": png(images(1)[0]) for i in range(501)}), "many.zip",
     "holds 501 images; this server takes at most 500"),
    ("a PNG bomb", lambda: zipped({f"{i}.png": png(np.zeros((300, 300))) for i in range(12)}), "huge.zip",
     "is 300x300 = 90,000 pixels; the limit is 4,096 pixels per image (refused before decoding it)"),
    ("nested too deep", lambda: zipped({f"a/b/c/{i}.png": png(images(1)[0]) for i in range(12)}), "deep.zip",
     "is nested too deep"),
    ("a path out of the zip", lambda: zipped({"../evil.png": png(images(1)[0])}), "up.zip", "not a safe name"),
    ("an absolute path", lambda: zipped({"/etc/evil.png": png(images(1)[0])}), "abs.zip", "not a safe name"),
    ("a link", lambda: zipped({f"{i}.png": png(images(1)[0]) for i in range(12)}, {"3.png": stat.S_IFLNK | 0o777}),
     "link.zip", "'3.png' is a link or a special file"),
    ("encrypted", lambda: zipped({f"{i}.png": png(images(1)[0]) for i in range(12)}, flags={"5.png": 0x1}),
     "secret.zip", "'5.png' is encrypted"),
    ("another file type", lambda: zipped({"a.png": png(images(1)[0]), "notes.txt": b"hi"}), "mixed.zip",
     "'notes.txt', which is not a .png file"),
    ("images of different sizes", lambda: zipped({"a.png": png(images(1)[0]), "b.png": png(images(1, (9, 8))[0])}),
     "sizes.zip", "PNG sizes differ: b.png is 8x9 but the first image is 8x8"),
    ("not really a PNG", lambda: zipped({f"{i}.png": (b"garbage" if i == 4 else png(images(1)[0]))
                                         for i in range(12)}), "broken.zip", "4.png could not be read as a PNG"),
    ("16-bit PNG", lambda: zipped({f"{i}.png": _png16() for i in range(12)}), "deep16.zip",
     "mode 'I;16'"),
    ("top and class folders mixed", lambda: zipped({"a.png": png(images(1)[0]), "cats/b.png": png(images(1)[0])}),
     "both.zip", "mixes PNG images at the top with images in class folders"),
    ("an empty zip", lambda: zipped({"__MACOSX/._x": b""}), "empty.zip", "holds no PNG images"),
    ("too few images", lambda: zipped({f"{i}.png": png(images(1)[0]) for i in range(5)}), "few.zip",
     "Too few examples: 5"),
]


def _png16() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("what, make, filename, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_every_refusal_says_what_was_wrong(what, make, filename, words):
    with pytest.raises(UserDataError) as err:
        dataset_from_upload(make(), filename, LIMITS)
    assert words in str(err.value), str(err.value)


def test_a_bomb_header_is_refused_from_disk_too(tmp_path):
    path = tmp_path / "bomb.npz"
    path.write_bytes(_bomb_npz())
    with pytest.raises(UserDataError, match="more than its member holds"):
        user.load_npz(path)


# --- the store of a session's uploads -------------------------------------------------------------------------------
def test_uploads_are_kept_under_fresh_names_and_read_back_the_same(tmp_path):
    ds = dataset_from_upload(npz(x=images(30), y=np.arange(30) % 2), "faces.npz", LIMITS)
    first = uploads.save(tmp_path, ds, "faces", file="faces.npz")
    second = uploads.save(tmp_path, ds, "faces", file="faces.npz")
    assert (first, second) == ("upload:faces", "upload:faces-2")  # a name is never reused
    back = uploads.load(tmp_path, first)
    assert back.name == "upload:faces" and back.levels == ds.levels and "Your upload faces.npz" in back.description
    np.testing.assert_array_equal(back.x_train, ds.x_train)
    np.testing.assert_array_equal(back.y_test, ds.y_test)
    assert [r["name"] for r in uploads.list_uploads(tmp_path)] == [first, second]
    from vae_tfp.data import load

    np.testing.assert_array_equal(load(second, uploads=tmp_path).x_test, ds.x_test)  # the loader reads upload:
    with pytest.raises(UserDataError, match="at most 2"):
        uploads.save(tmp_path, ds, "more", max_count=2)
    uploads.delete(tmp_path, first)
    assert [r["name"] for r in uploads.list_uploads(tmp_path)] == [second]
    with pytest.raises(UserDataError, match="no uploaded data set"):
        uploads.load(tmp_path, first)
    assert uploads.save(tmp_path, ds, "faces") == "upload:faces-3"  # a removed name is not given out again


@pytest.mark.parametrize("name", ["upload:../faces", "upload:/etc/passwd", "upload:a/b", "upload:.."])
def test_an_upload_name_never_leaves_its_folder(tmp_path, name):
    with pytest.raises(ValueError, match="not allowed|leave"):
        uploads.path_of(tmp_path, name)


def test_the_carried_test_split_is_capped_and_reads_back():
    ds = dataset_from_upload(npz(x_train=images(40), x_test=images(30, seed=1), y_train=np.arange(40) % 4,
                                 y_test=np.arange(30) % 4), "d.npz", LIMITS)
    blob = uploads.test_split_bytes(ds, max_examples=20)
    back = uploads.read_test_split(blob, "bundle:d")
    assert len(back.x_test) == 20 and back.levels == 256
    np.testing.assert_array_equal(back.x_test, ds.x_test[:20])
    np.testing.assert_array_equal(back.y_test, ds.y_test[:20])
    with pytest.raises(UserDataError, match="must hold x_test"):
        uploads.read_test_split(npz(x_train=images(12), x_test=images(2)), "bundle:d")
    with pytest.raises(UserDataError, match="pickled"):
        uploads.read_test_split(_pickled(), "bundle:d")
