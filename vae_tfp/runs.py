"""Run directories: where a training lives on disk.

    runs/<name>/config.json          the validated RunConfig (versioned)
    runs/<name>/data.json            what the model was trained on: event shape, levels, representation, note
    runs/<name>/history.jsonl        one JSON record per line: train intervals and test evaluations
    runs/<name>/weights.weights.h5   the latest weights (Keras format; never a pickle)
    runs/<name>/metrics.json         final metrics (training status, test ELBO, evaluation results)
    runs/<name>/checkpoint/          weights + optimizer state + step of the last checkpoint, for resume

Every file is written to a temporary name and renamed into place (atomic on POSIX), so a `kill -9` at any moment
leaves a run that loads. Run names are sanitised and always resolve inside the runs root; a new run claims its
directory with an atomic mkdir, so two trainings never share one.
"""

import json
import os
import re
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
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
        path = self.path / "history.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash
        return records

    def truncate_history(self, step: int) -> None:
        """Keep only records up to `step` (used by resume: later records belong to lost work)."""
        kept = [r for r in self.history() if r.get("step", 0) <= step]
        atomic_write_text(self.path / "history.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    # metrics
    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

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


def create_run(config: RunConfig, root=None, name: str | None = None) -> Run:
    """Claim a fresh run directory (atomic mkdir; a taken name gets a -2, -3, ... suffix) and write config.json."""
    root = runs_root(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = name or f"{Path(config.dataset).stem}-{config.likelihood}-z{config.latent_dim}-{stamp}"
    base = safe_name(base)
    for i in range(1, 10_000):
        path = _inside(root, base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
        except FileExistsError:
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
    rows = []
    for path in root.iterdir():
        if not (path / "config.json").is_file() or path.name.startswith("."):
            continue
        run = Run(path)
        try:
            config = run.config()
        except ValueError:
            continue
        metrics = run.metrics()
        rows.append({
            "name": run.name, "path": str(path), "dataset": config.dataset, "likelihood": config.likelihood,
            "latent_dim": config.latent_dim, "status": metrics.get("status", "unfinished"),
            "test_elbo": metrics.get("test_elbo"), "log_px": metrics.get("log_px"),
            "modified": (run.weights_path if run.has_weights() else path / "config.json").stat().st_mtime,
        })
    return sorted(rows, key=lambda r: r["modified"], reverse=True)


def delete_run(name: str, root=None) -> None:
    run = get_run(name, root)
    shutil.rmtree(run.path)


def load_model(run: Run):
    """The run's VAE with its saved weights (built from config.json + data.json; nothing unpickled)."""
    from vae_tfp.model import build_vae

    if not run.has_weights():
        raise ValueError(f"run {run.path} has no weights yet (weights.weights.h5 is missing)")
    info = run.data_info()
    model = build_vae(run.config(), tuple(info["event_shape"]), info.get("levels"))
    model.load_weights(str(run.weights_path))
    return model
