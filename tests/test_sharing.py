"""vae_tfp.sharing: links <-> RunConfig (warnings, never a traceback) and run bundles (every way a file can be bad)."""

import io
import json
import stat
import zipfile

import numpy as np
import pytest
from test_uploads import zipped as _zip

from vae_tfp import sharing
from vae_tfp.config import RunConfig
from vae_tfp.model import build_vae
from vae_tfp.runs import create_run, list_runs

TINY = RunConfig(hidden=(8,), epochs=1)
INFO = {"dataset": "digits", "kind": "image", "event_shape": [8, 8], "levels": None, "representation": "binary",
        "note": "binarized", "n_train": 1500, "n_test": 297, "label_names": [str(i) for i in range(10)]}


# --- links ----------------------------------------------------------------------------------------------------------
def test_link_round_trip_holds_only_what_differs():
    """A link holds what differs from what its data set suggests (`presets.suggested`), and the data set."""
    from vae_tfp.presets import suggested

    assert sharing.config_to_query(suggested("digits")) == {}
    assert sharing.config_to_query(RunConfig()) == {"epochs": "20", "eval_every": "1"}  # digits suggests 300, 10
    config = suggested("two_moons").replace(latent_dim=4, hidden=(64, 32), lr=3e-4, beta=0.5)
    query = sharing.config_to_query(config)
    assert query == {"dataset": "two_moons", "latent_dim": "4", "hidden": "64,32", "beta": "0.5", "lr": "0.0003"}
    back, warnings = sharing.config_from_query(query)
    assert back == config and warnings == []


@pytest.mark.parametrize("params, key, words", [
    ({"likelihood": "poisson"}, "likelihood", ["poisson", "allowed: bernoulli"]),
    ({"latent_dim": "two"}, "latent_dim", ["'two'", "int"]),
    ({"latent_dim": "0"}, "latent_dim", ["[1, 512]", "'0'"]),
    ({"lr": "nan"}, "lr", ["'nan'", "lr must be a number"]),
    ({"hidden": "1,-4"}, "hidden", ["'1,-4'", "between 1 and 16384"]),
    ({"colour": "red"}, "colour", ["Unknown link parameter 'colour'", "'red'", "allowed: dataset"]),
    ({"version": "9"}, "version", ["Unknown link parameter 'version'"]),
])
def test_bad_link_values_become_warnings_and_defaults(params, key, words):
    from vae_tfp.presets import suggested

    config, warnings = sharing.config_from_query(params)
    assert config == suggested("digits")
    assert len(warnings) == 1 and key in warnings[0]
    for w in words:
        assert w in warnings[0]


def test_a_link_keeps_its_good_keys_and_drops_a_conflicting_one():
    config, warnings = sharing.config_from_query({"iwae_k": "5", "free_bits": "0.5", "epochs": ["3", "4"],
                                                  "view": "Training"}, ignore=("view",))
    assert config.free_bits == 0.5 and config.iwae_k == 1 and config.epochs == 4  # free_bits comes first
    assert len(warnings) == 1 and "iwae_k='5'" in warnings[0] and "iwae_k > 1" in warnings[0]


def test_a_link_cannot_point_at_a_local_path():
    config, warnings = sharing.config_from_query({"dataset": "/etc/secret.npz"}, datasets=["digits", "two_moons"])
    assert config.dataset == "digits"
    assert "dataset='/etc/secret.npz'" in warnings[0] and "allowed: digits, two_moons" in warnings[0]


def test_garbage_links_never_raise():
    rng = np.random.default_rng(0)
    alphabet = list("abc019.,-_ %/\\'\"\x00é") + ["nan", "inf", "1e999", "[]", "{}", ""]
    for _ in range(300):
        key = str(rng.choice(sharing.LINK_FIELDS + ("x", "")))
        value = "".join(rng.choice(alphabet, size=rng.integers(0, 6)))
        config, warnings = sharing.config_from_query({key: value})
        assert isinstance(config, RunConfig) and isinstance(warnings, list)


# --- bundles ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def run(tmp_path):
    run = create_run(TINY, tmp_path / "src", "source")
    run.write_data_info(INFO)
    build_vae(TINY, (8, 8), None).save_weights(str(run.weights_path))
    run.append_history({"kind": "test", "step": 12, "epoch": 1, "elbo": -40.0, "distortion": 38.0, "rate": 2.0})
    run.update_metrics(status="completed", test_elbo=-40.0)
    return run


def _members(bundle: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_bundle_round_trip_loads_the_same_weights(run, tmp_path):
    bundle = sharing.export_bundle(run)
    assert sorted(_members(bundle)) == sorted(sharing.MEMBERS)
    imported = sharing.import_bundle(bundle, tmp_path / "dst", name="shared")
    assert imported.name == "shared" and imported.config() == TINY
    assert imported.data_info() == INFO and imported.history() == run.history()
    assert imported.metrics()["test_elbo"] == -40.0 and imported.metrics()["imported"] is True
    a, b = build_vae(TINY, (8, 8)), build_vae(TINY, (8, 8))
    a.load_weights(str(run.weights_path))
    b.load_weights(str(imported.weights_path))
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    again = sharing.import_bundle(bundle, tmp_path / "dst", name="shared")  # a taken name gets a suffix
    assert again.name == "shared-2"


def _bad(run, **changes):
    members = _members(sharing.export_bundle(run))
    for name, value in changes.items():
        name = name.replace("__", ".")
        if value is None:
            members.pop(name)
        else:
            members[name] = value
    return _zip(members)


def _weights_of(config, shape=(8, 8)):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "w.weights.h5"
    build_vae(config, shape).save_weights(str(path))
    return path.read_bytes()


@pytest.mark.parametrize("make, message", [
    (lambda run: b"this is not a zip", "not a zip file"),
    (lambda run: b"PK\x03\x04" + b"\x00" * 40, "not a zip file"),
    (lambda run: _zip({**_members(sharing.export_bundle(run)), "run.sh": b"rm -rf /"}),
     "unexpected member(s) 'run.sh'"),
    (lambda run: _bad(run, config__json=None), "missing config.json"),
    (lambda run: _zip({("../" + n if n == "config.json" else n): d for n, d in _members(sharing.export_bundle(run))
                       .items()}), "unexpected member(s) '../config.json'"),
    (lambda run: _zip(_members(sharing.export_bundle(run)), {"weights.weights.h5": stat.S_IFLNK | 0o777}),
     "not a plain file"),
    (lambda run: _bad(run, config__json=b"{" + b" " * 200_000 + b"}"), "unpacks to"),  # a small zip bomb
    (lambda run: _bad(run, config__json=b"{not json"), "config.json is not valid JSON"),
    (lambda run: _bad(run, config__json=b'{"beta": NaN}'), "NaN is not allowed"),
    (lambda run: _bad(run, config__json=b'{"beta": 1, "beta": 2}'), "duplicate key"),
    (lambda run: _bad(run, config__json=b'{"likelihood": "poisson"}'), "not a valid config: unknown likelihood"),
    (lambda run: _bad(run, config__json=b'{"dataset": "/home/me/data.npz"}'), "must use a built-in data set"),
    (lambda run: _bad(run, data__json=json.dumps({**INFO, "representation": "real"}).encode()), "needs 'binary'"),
    (lambda run: _bad(run, data__json=json.dumps({**INFO, "event_shape": [8, -8]}).encode()), "event_shape"),
    (lambda run: _bad(run, history__jsonl=b'{"kind": "train"}\n[1, 2]\n'), "history.jsonl line 2"),
    (lambda run: _bad(run, weights__weights__h5=b"\x80\x04pickle"), "not an HDF5 file"),
    (lambda run: _bad(run, weights__weights__h5=b"\x89HDF\r\n\x1a\n" + b"\x00" * 100), "not a readable HDF5"),
    (lambda run: _bad(run, weights__weights__h5=_weights_of(RunConfig(hidden=(16,)))),
     "6 array(s) differ: decoder/layers/dense/vars/0: the model needs (2, 8), the file holds (2, 16)"),
    (lambda run: _bad(run, weights__weights__h5=_weights_of(RunConfig(hidden=(16,)))),
     "encoder/layers/dense/vars/0: the model needs (64, 8), the file holds (64, 16)"),
    (lambda run: _bad(run, weights__weights__h5=_weights_of(RunConfig(hidden=(8,), prior="mixture"))),
     "3 array(s) differ: layers/mixture_of_gaussians/vars/0: the model needs nothing, the file holds (10, 2)"),
])
def test_bad_bundles_are_refused_with_a_message_and_leave_nothing(run, tmp_path, make, message):
    root = tmp_path / "dst"
    with pytest.raises(sharing.BundleError) as err:
        sharing.import_bundle(make(run), root)
    assert message in str(err.value)
    assert not root.exists() or list_runs(root) == [] and not any(root.iterdir())


def test_oversized_bundles_are_refused_before_reading(tmp_path):
    with pytest.raises(sharing.BundleError, match="bundles may be at most 1 MB"):
        sharing.import_bundle(b"\x00" * (2**20 + 1), tmp_path, max_bytes=2**20)


def test_a_run_without_weights_cannot_be_exported(tmp_path):
    run = create_run(TINY, tmp_path, "empty")
    with pytest.raises(sharing.BundleError, match="no weights yet"):
        sharing.export_bundle(run)


# --- runs on data that is not built in; snapshots ------------------------------------------------------------------
@pytest.fixture
def own_data_run(tmp_path):
    """A run trained (as the command line does) on an .npz file: its bundle must carry the test split."""
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8))
    np.savez(tmp_path / "faces.npz", x_train=x[:30], x_test=x[30:], y_train=np.arange(30) % 2,
             y_test=np.arange(10) % 2)
    config = TINY.replace(dataset=str(tmp_path / "faces.npz"))
    run = create_run(config, tmp_path / "src", "on-faces")
    run.write_data_info({**INFO, "dataset": "faces.npz", "label_names": None, "n_train": 30, "n_test": 10})
    build_vae(config, (8, 8), None).save_weights(str(run.weights_path))
    run.update_metrics(status="completed")
    return run, x[30:]


def test_a_run_on_own_data_opens_elsewhere_from_the_test_split_it_carries(own_data_run, tmp_path):
    from vae_tfp.datasets.uploads import read_test_split

    run, x_test = own_data_run
    bundle = sharing.export_bundle(run)
    assert sorted(_members(bundle)) == sorted((*sharing.MEMBERS, "test_data.npz"))
    (tmp_path / "faces.npz").unlink()  # the importer never reads the exporter's file
    imported = sharing.import_bundle(bundle, tmp_path / "dst")
    assert imported.config().dataset == "bundle:faces" and imported.data_info()["dataset"] == "bundle:faces"
    assert str(tmp_path) not in (imported.path / "config.json").read_text()  # no path of the exporter's machine
    carried = read_test_split(imported.path / "test_data.npz", "bundle:faces")
    np.testing.assert_array_equal(carried.x_test, x_test)
    np.testing.assert_array_equal(carried.y_test, np.arange(10) % 2)
    again = sharing.export_bundle(imported)  # and it travels on from there
    assert _members(again)["test_data.npz"] == _members(bundle)["test_data.npz"]
    with pytest.raises(sharing.BundleError, match="cannot be read any more"):  # the data is gone: say so
        sharing.export_bundle(run)


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("test_data.npz"), "or carry its test split (test_data.npz)"),
    (lambda m: m.__setitem__("test_data.npz", _npz_bytes(x_test=np.zeros((4, 9, 9)))),
     "test_data.npz holds examples of shape [9, 9], but data.json says [8, 8]"),
    (lambda m: m.__setitem__("test_data.npz", _npz_bytes(x_train=np.zeros((20, 8, 8)), x_test=np.zeros((4, 8, 8)))),
     "must hold x_test"),
    (lambda m: m.__setitem__("test_data.npz", _npz_bytes(x_test=np.zeros((1001, 8, 8)))), "at most 1000"),
    (lambda m: m.__setitem__("test_data.npz", b"\x80\x04pickled"), "test_data.npz: "),
    (lambda m: m.__setitem__("config.json", RunConfig(hidden=(8,), epochs=1).to_json().encode()),
     "carries test_data.npz, but its data set 'digits' is built in"),
])
def test_a_bad_carried_test_split_is_refused(own_data_run, tmp_path, change, message):
    members = _members(sharing.export_bundle(own_data_run[0]))
    change(members)
    with pytest.raises(sharing.BundleError) as err:
        sharing.import_bundle(_zip(members), tmp_path / "dst")
    assert message in str(err.value), str(err.value)
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").iterdir())
