"""Run directories: where a training lives on disk.

    runs/<name>/config.json          the validated RunConfig (versioned)
    runs/<name>/data.json            what the model was trained on: event shape, levels, representation, note
    runs/<name>/history.jsonl        one JSON record per line: train intervals and test evaluations
    runs/<name>/weights.weights.h5   the latest weights (Keras format; never a pickle)
    runs/<name>/metrics.json         final metrics (training status, test ELBO, evaluation results)
    runs/<name>/checkpoint/          weights + optimizer state + step of the last checkpoint, for resume
    runs/<name>/snapshots/           weights at chosen steps, for live and replayed views (`vae_tfp.snapshots`)

`vae_tfp.training.RunRecorder` writes these while a run trains (the directory appears with its first step).
Every file is written to a temporary name and renamed into place (atomic on POSIX), so a `kill -9` at any moment
leaves a run that loads; files are created like ordinary files (their mode follows the umask). Run names are
sanitised and always resolve inside the runs root; a new run claims its directory with an atomic mkdir, so two
trainings never share one.

The ELBO's terms are named `elbo`, `reconstruction` (= E_q[log p(x|z)]) and `kl` (= KL(q(z|x) || p(z))). Runs
written before those names hold `distortion` (= -reconstruction) and `rate` (= kl): history records and metrics
are migrated to the current names whenever they are read (`migrate_terms`). `history_since(offset)` reads only the
records appended since the last call (the dashboard's live curve polls it).
"""

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_tfp.config import RunConfig

DEFAULT_ROOT = "runs"
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def runs_root(root=None) -> Path:
    """The runs folder: `root`, else $VAE_TFP_RUNS, else ./runs."""
    return Path(root or os.environ.get("VAE_TFP_RUNS") or DEFAULT_ROOT)


def safe_name(name: str) -> str:
    """A run name that is one plain path component: letters, digits, '.', '_' and '-' (others become '-')."""
    if not isinstance(name, str) or "/" in name or "\\" in name or name.strip() in ("", ".", ".."):
        raise ValueError(f"run name {name!r} is not allowed: use letters, digits, '.', '_' and '-' (no '/' or '..')")
    clean = _NAME_OK.sub("-", name.strip()).lstrip(".-")[:100]
    if not clean or ".." in clean:
        raise ValueError(f"run name {name!r} is not allowed: use letters, digits, '.', '_' and '-' (no '..')")
    return clean


def _inside(root: Path, name: str) -> Path:
    path = (root / safe_name(name)).resolve()
    if path.parent != root.resolve():
        raise ValueError(f"run name {name!r} would leave the runs folder {root}")
    return path


# --- atomic writes ----------------------------------------------------------------------------------------------
def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to a fresh temporary file beside `path` and rename it into place. The file is created with mode
    0666 minus the umask, like any file `open(path, "w")` creates (mkstemp's 0600 would hide it from the group)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable))


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# --- one vocabulary for the ELBO's terms ---------------------------------------------------------------------------
_OLD_TERMS = {"distortion": ("reconstruction", -1.0), "rate": ("kl", 1.0)}  # old name -> (name, sign)


def migrate_terms(record: dict) -> dict:
    """A history record or a metrics dict with the ELBO's terms under their current names, nested dicts included:
    `distortion` -> `reconstruction` = -distortion, `rate` -> `kl`, also with a `test_` / `train_` prefix (as
    written by older runs and `evaluate`). A record in the current vocabulary comes back unchanged."""
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            value = migrate_terms(value)
        prefix, _, term = key.rpartition("_") if key.startswith(("test_", "train_")) else ("", "", key)
        if term in _OLD_TERMS:
            new, sign = _OLD_TERMS[term]
            new_key = f"{prefix}_{new}" if prefix else new
            if new_key not in record:
                out[new_key] = sign * value if isinstance(value, (int, float)) else value
            continue
        out[key] = value
    return out


def _save_weights_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.weights.h5")  # Keras insists on the .weights.h5 suffix
    model.save_weights(str(tmp))
    os.replace(tmp, path)


# --- a run ---------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    # config and data description
    def config(self) -> RunConfig:
        return RunConfig.from_json((self.path / "config.json").read_text())

    def data_info(self) -> dict:
        return json.loads((self.path / "data.json").read_text())

    def write_data_info(self, info: dict) -> None:
        atomic_write_json(self.path / "data.json", info)

    # history
    def append_history(self, record: dict) -> None:
        """Append one record (a torn last line after a crash is skipped on reading)."""
        with open(self.path / "history.jsonl", "a") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")
            f.flush()

    def history(self) -> list[dict]:
        """Every record, in the current vocabulary (see `migrate_terms`)."""
        return self.history_since(0)[0]

    def history_since(self, offset: int = 0) -> tuple[list[dict], int]:
        """(records, new_offset): the complete records after byte `offset` of history.jsonl, and the offset to pass
        next time. Only new bytes are read, so a caller that polls costs what was appended, not the whole file. A
        line still being written (no newline yet) is left for the next call; a line torn by a crash is skipped.
        If the file is now shorter than `offset` (it was rewritten, e.g. truncated by a resume), reading restarts
        at 0 and new_offset < offset tells the caller to drop the records it had."""
        path = self.path / "history.jsonl"
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return [], 0
        with f:
            size = os.fstat(f.fileno()).st_size
            offset = int(offset) if 0 <= int(offset) <= size else 0
            f.seek(offset)
            data = f.read(size - offset)
        end = data.rfind(b"\n") + 1  # only complete lines
        records = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a line torn by a crash
            if isinstance(record, dict):
                records.append(migrate_terms(record))
        return records, offset + end

    def history_stamp(self) -> tuple[int, int]:
        """(size in bytes, modification time in ns) of history.jsonl, (0, 0) while there is none: what `history()`
        returns depends only on it, so a reader can keep what it read under this stamp."""
        try:
            stat = (self.path / "history.jsonl").stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_size, stat.st_mtime_ns)

    def truncate_history(self, step: int) -> None:
        """Keep only records up to `step` (used by resume: later records belong to lost work)."""
        kept = [r for r in self.history() if r.get("step", 0) <= step]
        atomic_write_text(self.path / "history.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    # metrics
    def metrics(self) -> dict:
        """metrics.json in the current vocabulary (see `migrate_terms`); {} before the run has any."""
        path = self.path / "metrics.json"
        return migrate_terms(json.loads(path.read_text())) if path.exists() else {}

    def update_metrics(self, **values) -> dict:
        merged = self.metrics() | values
        atomic_write_json(self.path / "metrics.json", merged)
        return merged

    # weights and checkpoints
    @property
    def weights_path(self) -> Path:
        return self.path / "weights.weights.h5"

    def has_weights(self) -> bool:
        return self.weights_path.exists()

    def save_checkpoint(self, model, optimizer, step: int, epoch: int) -> None:
        """Weights, optimizer state and position, written so that a crash leaves the previous checkpoint intact:
        a new folder is filled, then swapped in by rename."""
        ckpt = self.path / "checkpoint"
        tmp = self.path / f".checkpoint-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(str(tmp / "model.weights.h5"))
        np.savez(tmp / "optimizer.npz", *[v.numpy() for v in optimizer.variables])
        atomic_write_json(tmp / "state.json", {"step": int(step), "epoch": int(epoch), "time": time.time()})
        old = self.path / f".checkpoint-old-{step}"
        if ckpt.exists():
            os.replace(ckpt, old)
        os.replace(tmp, ckpt)
        shutil.rmtree(old, ignore_errors=True)
        _save_weights_atomic(model, self.weights_path)

    def checkpoint_state(self) -> dict | None:
        """{"step", "epoch"} of the last complete checkpoint, or None."""
        for folder in self._checkpoint_folders():
            try:
                return json.loads((folder / "state.json").read_text()) | {"folder": str(folder)}
            except (OSError, json.JSONDecodeError):
                continue
        return None

    def _checkpoint_folders(self):
        yield self.path / "checkpoint"
        yield from sorted(self.path.glob(".checkpoint-old-*"), reverse=True)  # a swap interrupted by a crash

    def restore_checkpoint(self, model, optimizer) -> dict:
        state = self.checkpoint_state()
        if state is None:
            raise FileNotFoundError(f"run {self.path} has no checkpoint to resume from")
        folder = Path(state["folder"])
        model.load_weights(str(folder / "model.weights.h5"))
        with np.load(folder / "optimizer.npz", allow_pickle=False) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(optimizer.variables):
            raise ValueError(f"checkpoint optimizer state has {len(values)} variables, expected "
                             f"{len(optimizer.variables)}: the run's config and its checkpoint disagree")
        for var, value in zip(optimizer.variables, values):
            var.assign(value)
        return state


def create_run(config: RunConfig, root=None, name: str | None = None, *, exact: bool = False) -> Run:
    """Claim a fresh run directory (atomic mkdir; a taken name gets a -2, -3, ... suffix, or FileExistsError with
    `exact`) and write config.json."""
    root = runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = name or f"{Path(config.dataset).stem}-{config.likelihood}-z{config.latent_dim}-{stamp}"
    base = safe_name(base)
    if exact and base != name:
        raise ValueError(f"run name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
                         f"(it would become {base!r})")
    for i in range(1, 10_000):
        path = _inside(root, base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
            if exact:
                raise FileExistsError(f"{path} already exists; resume it, or choose a new run directory") from None
            continue
        run = Run(path)
        atomic_write_text(path / "config.json", config.to_json())
        return run
    raise RuntimeError(f"no free run name under {root} for {base!r}")


def open_run(path) -> Run:
    """A run from its directory; ValueError if it is not one."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run directory (no config.json)")
    return Run(path.resolve())


def get_run(name: str, root=None) -> Run:
    """A run by name inside the runs root."""
    return open_run(_inside(runs_root(root), name))


def list_runs(root=None) -> list[dict]:
    """One summary per run under the root, newest first: name, path, dataset, likelihood, status, test ELBO."""
    root = runs_root(root)
    if not root.is_dir():
        return []
    rows = [run_summary(path) for path in root.iterdir() if not path.name.startswith(".")]
    return sorted([r for r in rows if r is not None], key=lambda r: r["modified"], reverse=True)


def run_summary(path) -> dict | None:
    """One run's summary (name, path, dataset, likelihood, latent_dim, status, test_elbo, log_px, modified), or None
    when `path` holds no readable run."""
    path = Path(path)
    if not (path / "config.json").is_file():
        return None
    run = Run(path)
    try:
        config = run.config()
        metrics = run.metrics()
        modified = (run.weights_path if run.has_weights() else path / "config.json").stat().st_mtime
    except (ValueError, OSError):
        return None
    return {"name": run.name, "path": str(path), "dataset": config.dataset, "likelihood": config.likelihood,
            "latent_dim": config.latent_dim, "status": metrics.get("status", "unfinished"),
            "test_elbo": metrics.get("test_elbo"), "log_px": metrics.get("log_px"), "modified": modified}


def delete_run(name: str, root=None) -> None:
    run = get_run(name, root)
    shutil.rmtree(run.path)


def load_model(run: Run):
    """The run's VAE with its saved weights (built from config.json + data.json; nothing unpickled). ValueError
    naming the arrays that differ when the weights do not fit the model that config.json describes."""
    from vae_tfp.model import build_vae

    if not run.has_weights():
        raise ValueError(f"run {run.path} has no weights yet (weights.weights.h5 is missing)")
    info = run.data_info()
    model = build_vae(run.config(), tuple(info["event_shape"]), info.get("levels"))
    differences = weights_mismatch(run.weights_path, model)
    if differences:
        raise ValueError(f"run {run.path}: {describe_mismatch('weights.weights.h5', differences)}")
    model.load_weights(str(run.weights_path))
    return model


# --- does a weights file fit a model? ------------------------------------------------------------------------------
def weight_shapes(path) -> dict[str, tuple]:
    """{array path in the HDF5 file: shape}, e.g. {"encoder/layers/dense/vars/0": (64, 256), ...}. Keras names
    a variable by where it sits in the model (`vars/0` is a layer's first variable: a kernel, `vars/1` its bias)."""
    import h5py

    shapes = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: shapes.__setitem__(name, tuple(int(d) for d in obj.shape))
                     if isinstance(obj, h5py.Dataset) else None)
    return shapes


def weights_mismatch(path, model) -> list[tuple[str, tuple | None, tuple | None]]:
    """[(variable, shape the model needs, shape the file holds)] for every array that differs (None: absent);
    [] when the file fits. The model's side is what `model.save_weights` writes, so the names are Keras' own."""
    with tempfile.TemporaryDirectory(prefix="vae-tfp-weights-") as folder:
        reference = Path(folder) / "expected.weights.h5"
        model.save_weights(str(reference))
        expected = weight_shapes(reference)
    found = weight_shapes(path)
    return [(key, expected.get(key), found.get(key)) for key in sorted(set(expected) | set(found))
            if expected.get(key) != found.get(key)]


def describe_mismatch(what: str, differences, shown: int = 6) -> str:
    """'weights.weights.h5 does not fit the model in config.json: 2 arrays differ: encoder/layers/dense/vars/0: the
    model needs (64, 16), the file holds (64, 8); ...'."""
    def shape(s):
        return "nothing" if s is None else str(tuple(s))

    lines = [f"{key}: the model needs {shape(need)}, the file holds {shape(held)}"
             for key, need, held in differences[:shown]]
    more = f"; and {len(differences) - shown} more" if len(differences) > shown else ""
    return (f"{what} does not fit the model in config.json: {len(differences)} array(s) differ: "
            + "; ".join(lines) + more)
