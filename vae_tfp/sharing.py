"""Sharing a setup or a trained run: a link's query parameters <-> `RunConfig`, and run bundles (zip files).

    config_to_query(config)          -> {"likelihood": "gaussian", "latent_dim": "4"}   only non-default fields
    config_from_query(params)        -> (RunConfig, warnings)   a bad key or value never raises: it is named in a
                                        warning (key, value, what is allowed) and that field keeps its default
    export_bundle(run)               -> zip bytes: config.json, data.json, metrics.json, history.jsonl,
                                        weights.weights.h5, and when the run has them test_data.npz and the
                                        replay snapshots snapshots/step-*.weights.h5
    import_bundle(data, root)        -> Run, or BundleError saying what is wrong with the file
    copy_run(run, dest)              a run's viewable files (what a bundle holds) copied into a new folder (a
                                     publication), its test split carried

A bundle is data only. Importing one never unpickles or executes anything: the zip must hold exactly the five
expected members plus the optional ones (no folders, no paths, no links), each within a size cap (so a zip bomb
stops early), the JSON is parsed strictly and the config validated, and the weights (and every snapshot's) must be
an HDF5 file whose arrays fit the model that the config describes. Everything is checked before a run folder is
created, so a rejected file leaves nothing on disk.

A run trained on data that is not built in (an upload, `upload:faces`, or a file given to the command line) carries
the test split its views need: `test_data.npz` (x_test, y_test, levels, label names; the first
`uploads.MAX_CARRIED_TEST` examples), checked like any uploaded .npz and against data.json. On import its config
names the data `bundle:<name>` (never the exporter's path or upload), and the views read the run's own test split.

Replay snapshots (`snapshots/step-<8 digits>.weights.h5`, weights saved while the run trained): at most
`MAX_SNAPSHOTS`, evenly thinned on export to fit `BUNDLE_SNAPSHOT_BYTES`, each checked on import to hold exactly the
arrays of the weights.

The config side imports no TensorFlow; `import_bundle` loads it to check the weights.
"""

import io
import json
import math
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import fields
from pathlib import Path

from vae_tfp.config import RunConfig
from vae_tfp.datasets import uploads
from vae_tfp.families.likelihoods import get as likelihood_family
from vae_tfp.presets import suggested

# --- links ------------------------------------------------------------------------------------------------------
LINK_FIELDS = tuple(f.name for f in fields(RunConfig))  # every setting (the JSON's version is not one)
_DEFAULT = RunConfig()
MAX_SHOWN = 80  # characters of a bad value quoted in a warning


def _to_text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form: 0.001, 1e-05
    return str(value)


def config_to_query(config: RunConfig) -> dict[str, str]:
    """The fields of `config` that differ from what its data set suggests (`vae_tfp.presets.suggested`: the config's
    defaults with the data set's own), and the data set when it is not the default one, as query-string text
    (hidden as "256,128"). `config_from_query` starts from the same suggestion, so the link gives back the config."""
    base = suggested(config.dataset)
    differ = [name for name in LINK_FIELDS if getattr(config, name) != getattr(base, name)]
    if config.dataset != _DEFAULT.dataset:
        differ.insert(0, "dataset")
    return {name: _to_text(getattr(config, name)) for name in differ}


def _shown(value) -> str:
    text = str(value)
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")


def config_from_query(params, *, datasets=None, ignore=()) -> tuple[RunConfig, list[str]]:
    """Read a config from query parameters ({key: text}, or {key: [texts]} where the last one counts).

    Keys in `ignore` belong to someone else (e.g. the selected view) and are skipped. With `datasets` given, the
    dataset must be one of those names (a link must not point the server at a local path). Never raises: each
    unknown key or invalid value becomes a warning and that field keeps its default.
    """
    warnings, accepted = [], {}
    for key, value in dict(params).items():
        if key in ignore:
            continue
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        if key not in LINK_FIELDS:
            warnings.append(f"Unknown link parameter {key!r} (value {_shown(value)}) was ignored; "
                            f"allowed: {', '.join(LINK_FIELDS)}.")
            continue
        if key == "dataset" and datasets is not None and value not in datasets:
            warnings.append(f"Link parameter dataset={_shown(value)} was ignored: allowed: {', '.join(datasets)}; "
                            f"using the default {_DEFAULT.dataset!r}.")
            continue
        try:  # each field alone first, so the warning names the field that is wrong
            RunConfig.from_dict({key: value})
        except ValueError as err:
            warnings.append(f"Link parameter {key}={_shown(value)} was ignored: {err}; "
                            f"using the default {_to_text(getattr(_DEFAULT, key))!r}.")
            continue
        accepted[key] = value
    config = suggested(accepted.get("dataset", _DEFAULT.dataset))  # what the link's data set suggests, then the link
    for key in LINK_FIELDS:  # then together, in field order: a combination that is not allowed drops the later key
        if key in accepted:
            try:
                config = RunConfig.from_dict({**_changed(config), key: accepted[key]})
            except ValueError as err:
                warnings.append(f"Link parameter {key}={_shown(accepted[key])} was ignored: {err}.")
    return config, warnings


def _changed(config: RunConfig) -> dict:
    return {k: v for k, v in config.to_dict().items()
            if k in LINK_FIELDS and getattr(config, k) != getattr(_DEFAULT, k)}


# --- bundles ----------------------------------------------------------------------------------------------------
MEMBERS = ("config.json", "data.json", "metrics.json", "history.jsonl", "weights.weights.h5")
TEST_DATA = uploads.TEST_DATA  # optional: the test split of a run on data that is not built in
MAX_BUNDLE_BYTES = 50 * 1024 * 1024  # the zip itself
MAX_MEMBER_BYTES = {  # unpacked sizes: a member that inflates past its cap is refused while reading
    "config.json": 64 * 1024, "data.json": 256 * 1024, "metrics.json": 4 * 1024 * 1024,
    "history.jsonl": 32 * 1024 * 1024, "weights.weights.h5": 200 * 1024 * 1024,
    TEST_DATA: uploads.MAX_TEST_DATA_BYTES,
}
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # all members together
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
DATA_KEYS = {"dataset": str, "kind": str, "event_shape": list, "levels": (int, type(None)), "representation": str,
             "note": str, "n_train": int, "n_test": int, "label_names": (list, type(None))}
REQUIRED_DATA_KEYS = ("dataset", "kind", "event_shape", "levels", "representation")


class BundleError(ValueError):
    """The uploaded file is not a run bundle this version can open; the message says why."""


def builtin(dataset: str) -> bool:
    from vae_tfp.data import DATASETS

    return dataset in DATASETS


def carried_test_split(run, *, uploads_root=None, allow_paths: bool = True) -> bytes | None:
    """The test split a run on data that is not built in carries (.npz bytes), None for a built-in data set: the
    run's own test_data.npz, else read from the upload it names (in `uploads_root`) or, with `allow_paths` (the
    command line's runs), from the file it names. BundleError when the data is gone."""
    config = run.config()
    if builtin(config.dataset):
        return None
    own = run.path / TEST_DATA
    if own.is_file():
        return own.read_bytes()
    from vae_tfp.data import load

    if not (uploads.is_upload(config.dataset) or allow_paths) or uploads.is_bundled(config.dataset):
        raise BundleError(f"run {run.name!r} was trained on {config.dataset!r}, whose data is not here")
    try:
        dataset = load(config.dataset, seed=config.seed, uploads=uploads_root)
    except (ValueError, OSError) as err:
        raise BundleError(f"run {run.name!r} was trained on {config.dataset!r}, which cannot be read any more "
                          f"({err}); without its test split the run cannot be shared") from None
    return uploads.test_split_bytes(dataset)


def _viewable(run, *, uploads_root=None, allow_paths: bool = True) -> dict[str, bytes]:
    """What a bundle (or a publication) holds of a run: {member name: bytes}."""
    if not run.has_weights():
        raise BundleError(f"run {run.name!r} has no weights yet; train it (or wait for its first checkpoint)")
    members = {"config.json": run.config().to_json().encode(),
               "data.json": (run.path / "data.json").read_bytes(),
               "metrics.json": json.dumps(run.metrics(), indent=2, sort_keys=True).encode(),
               "history.jsonl": "".join(json.dumps(r) + "\n" for r in run.history()).encode(),
               "weights.weights.h5": run.weights_path.read_bytes()}
    test = carried_test_split(run, uploads_root=uploads_root, allow_paths=allow_paths)
    if test is not None:
        members[TEST_DATA] = test
    members.update(snapshot_members(run))  # evenly thinned to BUNDLE_SNAPSHOT_BYTES
    return members


def export_bundle(run, *, uploads_root=None, allow_paths: bool = True) -> bytes:
    """The run as a zip (bytes): config, data description, metrics, history and weights, the test split of data
    that is not built in, snapshots. Nothing executable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, blob in _viewable(run, uploads_root=uploads_root, allow_paths=allow_paths).items():
            zf.writestr(name, blob)
    return buffer.getvalue()


def copy_run(run, dest, *, uploads_root=None, allow_paths: bool = False):
    """Copy what a bundle holds of `run` into the new folder `dest` (it must not exist); returns the new `Run`. A
    copy of data that is not built in names it `bundle:<name>` and carries its test split."""
    from vae_tfp.runs import Run

    members = _viewable(run, uploads_root=uploads_root, allow_paths=allow_paths)
    if TEST_DATA in members:
        members = _renamed(members)
    dest = Path(dest)
    dest.mkdir()
    try:
        for name, blob in members.items():
            path = dest / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(blob)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return Run(dest)


def _renamed(members: dict) -> dict:
    """config.json and data.json with the data set named `bundle:<name>`."""
    config = RunConfig.from_json(members["config.json"].decode())
    carried = uploads.carried_name(config.dataset)
    info = json.loads(members["data.json"])
    info["dataset"] = carried
    return {**members, "config.json": config.replace(dataset=carried).to_json().encode(),
            "data.json": json.dumps(info, indent=2, sort_keys=True).encode()}


def import_bundle(data: bytes, root=None, *, name: str | None = None, datasets=None,
                  max_bytes: int = MAX_BUNDLE_BYTES):
    """Check a bundle and store it as a new run under `root`; returns the `Run`. Raises `BundleError` (a
    ValueError) saying what is wrong; nothing is written unless every check passes.

    `datasets`: the data set names a bundle may name without carrying its test split (default: the built-in
    registry), so an uploaded config never points the server at a local file or someone's upload.
    """
    from vae_tfp.data import DATASETS

    members = _read_members(data, max_bytes)
    config = _config_from(members["config.json"])
    allowed = tuple(datasets) if datasets is not None else tuple(DATASETS)
    info = _data_info_from(members["data.json"], config)
    test_split = None
    if config.dataset not in allowed:
        if TEST_DATA not in members:
            raise BundleError(f"config.json names the data set {config.dataset!r}; a bundle must use a built-in data "
                              f"set ({', '.join(allowed)}) or carry its test split ({TEST_DATA})")
        test_split = _test_split_from(members[TEST_DATA], info)
        config = config.replace(dataset=uploads.carried_name(config.dataset))
        info = {**info, "dataset": config.dataset}
    elif TEST_DATA in members:
        raise BundleError(f"the bundle carries {TEST_DATA}, but its data set {config.dataset!r} is built in")
    metrics = _strict_json(members["metrics.json"], "metrics.json")
    if not isinstance(metrics, dict):
        raise BundleError("metrics.json must hold a JSON object")
    history = _history_from(members["history.jsonl"])
    weights = members["weights.weights.h5"]
    if not weights.startswith(HDF5_MAGIC):
        raise BundleError("weights.weights.h5 is not an HDF5 file (it does not start with the HDF5 signature)")

    scratch = Path(tempfile.mkdtemp(prefix="vae-tfp-bundle-"))
    try:
        path = scratch / "weights.weights.h5"
        path.write_bytes(weights)
        _check_weights(path, config, info)
        snapshots = _check_snapshots(members, path, scratch)
        extra = {TEST_DATA: members[TEST_DATA]} if test_split is not None else {}
        return _store(config, info, metrics, history, path, root, name, extra, snapshots)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_members(data: bytes, max_bytes: int) -> dict[str, bytes]:
    if not isinstance(data, (bytes, bytearray)):
        raise BundleError(f"a bundle must be bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise BundleError(f"the file is {len(data) / 2**20:.1f} MB; bundles may be at most {max_bytes / 2**20:.0f} MB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BundleError("the file is not a zip file; a run bundle is the zip that 'Download run bundle' gives") \
            from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        optional = [n for n in names if is_snapshot_member(n)]
        unexpected = sorted(set(names) - set(MEMBERS) - {TEST_DATA} - set(optional))
        missing = [m for m in MEMBERS if m not in names]
        if unexpected or missing or len(names) != len(set(names)):
            parts = []
            if unexpected:
                parts.append(f"unexpected member(s) {', '.join(map(repr, unexpected))[:300]}")
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if len(names) != len(set(names)):
                parts.append("duplicate member names")
            raise BundleError(f"not a run bundle: {'; '.join(parts)}. A bundle holds exactly {', '.join(MEMBERS)} "
                              f"(and optionally {TEST_DATA} and replay snapshots "
                              f"snapshots/step-<8 digits>.weights.h5)")
        if len(optional) > MAX_SNAPSHOTS:
            raise BundleError(f"the bundle holds {len(optional)} snapshots; at most {MAX_SNAPSHOTS} are allowed")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise BundleError(f"the bundle unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB")
        out = {}
        for info in infos:
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip does not say (plain file)
            if info.is_dir() or kind not in (0, stat.S_IFREG):
                raise BundleError(f"member {info.filename!r} is not a plain file (a folder or a link)")
            if info.flag_bits & 0x1:
                raise BundleError(f"member {info.filename!r} is encrypted")
            cap = MAX_MEMBER_BYTES.get(info.filename, MAX_MEMBER_BYTES["weights.weights.h5"])  # snapshots: weights
            if info.file_size > cap:
                raise BundleError(f"member {info.filename!r} unpacks to {info.file_size} bytes; the cap is {cap}")
            try:
                with zf.open(info) as f:
                    blob = f.read(cap + 1)  # the header's size may lie: stop reading at the cap
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as err:
                raise BundleError(f"member {info.filename!r} cannot be read: {err}") from None
            if len(blob) > cap:
                raise BundleError(f"member {info.filename!r} unpacks to more than {cap} bytes (a zip bomb?)")
            out[info.filename] = blob
    return out


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed in JSON")


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate key(s) {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def _strict_json(blob: bytes, what: str):
    try:
        return json.loads(blob.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BundleError(f"{what} is not UTF-8 text") from None
    except ValueError as err:  # JSONDecodeError is a ValueError
        raise BundleError(f"{what} is not valid JSON: {err}") from None


def _config_from(blob: bytes) -> RunConfig:
    d = _strict_json(blob, "config.json")
    try:
        return RunConfig.from_dict(d)
    except ValueError as err:
        raise BundleError(f"config.json is not a valid config: {err}") from None


def _data_info_from(blob: bytes, config: RunConfig) -> dict:
    info = _strict_json(blob, "data.json")
    if not isinstance(info, dict):
        raise BundleError("data.json must hold a JSON object")
    unknown = sorted(set(info) - set(DATA_KEYS))
    missing = [k for k in REQUIRED_DATA_KEYS if k not in info]
    if unknown or missing:
        raise BundleError(f"data.json: unknown keys {unknown}, missing keys {missing}; allowed: {sorted(DATA_KEYS)}")
    for key, kind in DATA_KEYS.items():
        if key in info and (not isinstance(info[key], kind) or isinstance(info[key], bool)):
            raise BundleError(f"data.json: {key} has the wrong type ({type(info[key]).__name__})")
    shape = info["event_shape"]
    if not 1 <= len(shape) <= 3 or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 4096
                                           for d in shape) or math.prod(shape) > 2**22:
        raise BundleError(f"data.json: event_shape {shape!r} must be 1 to 3 sizes between 1 and 4096")
    representation = likelihood_family(config.likelihood).representation
    if info["representation"] != representation:
        raise BundleError(f"data.json says the data is {info['representation']!r}, but the {config.likelihood} "
                          f"likelihood needs {representation!r}")
    levels = info["levels"]
    if representation == "levels" and not (isinstance(levels, int) and 2 <= levels <= 65536):
        raise BundleError(f"data.json: the {config.likelihood} likelihood needs levels between 2 and 65536, "
                          f"got {levels!r}")
    if info["kind"] not in ("image", "points"):
        raise BundleError(f"data.json: kind must be 'image' or 'points', got {info['kind']!r}")
    labels = info.get("label_names")
    if labels is not None and (len(labels) > 1000 or not all(isinstance(v, str) and len(v) <= 100 for v in labels)):
        raise BundleError("data.json: label_names must be at most 1000 short strings")
    return info


def _history_from(blob: bytes) -> list[dict]:
    try:
        lines = blob.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BundleError("history.jsonl is not UTF-8 text") from None
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = _strict_json(line.encode(), f"history.jsonl line {i}")
        if not isinstance(record, dict):
            raise BundleError(f"history.jsonl line {i} must be a JSON object")
        records.append(record)
    return records


def _check_weights(path: Path, config: RunConfig, info: dict) -> dict:
    """The HDF5 file's arrays must be exactly the model's variables (same names and shapes), then load. Returns the
    model's {array: shape} (to check snapshots against)."""
    from vae_tfp.model import build_vae
    from vae_tfp.runs import describe_mismatch, weight_shapes

    try:
        model = build_vae(config, tuple(info["event_shape"]), info["levels"])
    except ValueError as err:
        raise BundleError(f"config.json and data.json do not describe a model this version can build: {err}") \
            from None
    with tempfile.TemporaryDirectory(prefix="vae-tfp-weights-") as folder:
        reference = Path(folder) / "expected.weights.h5"
        model.save_weights(str(reference))
        expected = weight_shapes(reference)
    differences = _differences(path, "weights.weights.h5", expected)
    if differences:
        raise BundleError(describe_mismatch("weights.weights.h5", differences)
                          + ". The weights belong to a different architecture")
    try:
        model.load_weights(str(path))
    except Exception as err:  # noqa: BLE001 - any failure to load means "does not fit"
        raise BundleError(f"weights.weights.h5 does not load into the model in config.json: "
                          f"{str(err).splitlines()[0][:300]}") from None
    return expected


def _differences(path: Path, member: str, expected: dict) -> list:
    from vae_tfp.runs import weight_shapes

    try:
        found = weight_shapes(path)
    except OSError as err:
        raise BundleError(f"{member} is not a readable HDF5 file: {err}") from None
    return [(key, expected.get(key), found.get(key)) for key in sorted(set(expected) | set(found))
            if expected.get(key) != found.get(key)]


def _test_split_from(blob: bytes, info: dict):
    """The carried test split, validated as an uploaded .npz and against data.json."""
    try:
        dataset = uploads.read_test_split(blob, info["dataset"])
    except ValueError as err:
        raise BundleError(f"{TEST_DATA}: {err}") from None
    if list(dataset.event_shape) != list(info["event_shape"]):
        raise BundleError(f"{TEST_DATA} holds examples of shape {list(dataset.event_shape)}, but data.json says "
                          f"{info['event_shape']}")
    if dataset.kind != info["kind"]:
        raise BundleError(f"{TEST_DATA} holds {dataset.kind} data, but data.json says {info['kind']}")
    if info["representation"] == "levels" and dataset.levels != info["levels"]:
        raise BundleError(f"{TEST_DATA} has {dataset.levels} grey levels, but data.json says {info['levels']}")
    return dataset


def _store(config, info, metrics, history, weights_path: Path, root, name, extra: dict, snapshots=None):
    from vae_tfp.runs import atomic_write_json, atomic_write_text, create_run, safe_name

    base = f"imported-{Path(config.dataset.split(':')[-1]).stem}-{config.likelihood}-z{config.latent_dim}"
    try:
        base = safe_name(name) if name else base
    except ValueError:
        pass
    run = create_run(config, root, base)
    try:
        atomic_write_json(run.path / "data.json", info)
        atomic_write_json(run.path / "metrics.json", metrics | {"imported": True})
        atomic_write_text(run.path / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        for member, blob in extra.items():
            path = run.path / member
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(blob)
        shutil.copyfile(weights_path, run.weights_path)
        _store_snapshots(run, snapshots or {})
    except BaseException:
        shutil.rmtree(run.path, ignore_errors=True)
        raise
    return run


# --- replay snapshots in a bundle (optional members) -------------------------------------------------------------
SNAPSHOT_MEMBER = re.compile(r"^snapshots/step-(\d{8})\.weights\.h5$")
MAX_SNAPSHOTS = 64  # snapshot members a bundle may hold
BUNDLE_SNAPSHOT_BYTES = 16 * 2**20  # an export carries the replay snapshots that fit in this, evenly thinned


def is_snapshot_member(name: str) -> bool:
    return bool(SNAPSHOT_MEMBER.match(name))


def snapshot_members(run) -> dict[str, bytes]:
    """The run's replay snapshots as bundle members {"snapshots/step-00000120.weights.h5": bytes}: all of them, or,
    when they hold more than BUNDLE_SNAPSHOT_BYTES, as many as fit, evenly spaced over the list (first and last
    kept)."""
    from vae_tfp.snapshots import file_name, replay_snapshots

    snaps = replay_snapshots(run.path)
    if not snaps:
        return {}
    size = max(s.path.stat().st_size for s in snaps)
    fit = min(len(snaps), MAX_SNAPSHOTS, BUNDLE_SNAPSHOT_BYTES // max(1, size))
    if fit < 1:
        return {}
    n = len(snaps)
    keep = sorted({round(i * (n - 1) / (fit - 1)) for i in range(fit)}) if 1 < fit < n else \
        (range(n) if fit >= n else [n - 1])
    return {f"snapshots/{file_name('replay', snaps[i].step)}": snaps[i].path.read_bytes() for i in keep}


def _check_snapshots(members: dict, weights_path: Path, scratch: Path) -> dict[int, Path]:
    """{step: file in scratch} for the bundle's snapshot members, each an HDF5 file with exactly the arrays (names
    and shapes) of the weights, which were checked against the model before."""
    from vae_tfp.runs import weight_shapes

    expected = weight_shapes(weights_path)
    out = {}
    for name, blob in sorted(members.items()):
        match = SNAPSHOT_MEMBER.match(name)
        if match is None:
            continue
        if not blob.startswith(HDF5_MAGIC):
            raise BundleError(f"{name} is not an HDF5 file (it does not start with the HDF5 signature)")
        step = int(match.group(1))
        path = scratch / f"snapshot-{step}.weights.h5"
        path.write_bytes(blob)
        try:
            shapes = weight_shapes(path)
        except OSError as err:
            raise BundleError(f"{name} is not a readable HDF5 file: {err}") from None
        if shapes != expected:
            raise BundleError(f"{name} does not hold the arrays of weights.weights.h5 (a snapshot of another model)")
        out[step] = path
    return out


def _store_snapshots(run, snapshots: dict[int, Path]) -> None:
    from vae_tfp.snapshots import file_name, folder

    if snapshots:
        folder(run.path).mkdir()
    for step, path in snapshots.items():
        shutil.copyfile(path, folder(run.path) / file_name("replay", step))
