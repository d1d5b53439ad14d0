"""Snapshots: a run's weights at chosen steps, for live and replayed views (the `snapshots/` folder of a run).

    runs/<name>/snapshots/live-00000120.weights.h5   the latest weights while the run trains (live views)
    runs/<name>/snapshots/step-00000120.weights.h5   a few dozen kept over the run (replay)

Weights only (Keras HDF5, like weights.weights.h5; no optimizer state), each written to a temporary name and renamed
into place, so a reader never sees half a file. The step is in the file name, so the folder's listing is its index.
`vae_tfp.training.snapshots.SnapshotRecorder` writes them (`RunRecorder` composes it, so every recorded run has
them); `replay_snapshots`, `live_snapshot` and `load_snapshot` read them; bundles carry the replay set.

The rule that keeps them cheap (`SnapshotPolicy`), for a model whose weights take B bytes:
- no snapshots when B > 64 MiB (`max_bytes`): the run's checkpoint holds its latest weights anyway;
- live: after the first step, then whenever at least `live_seconds` (2 s) have passed since the last write and at
  least 20 times the last write's duration (so writing takes at most ~5 % of the time), and when a train() call
  ends; the newest two live files are kept (a reader that picked the newest finds it while the next one is written);
- replay: at most N = min(40, 32 MiB // B) files (none when N < 2): the steps of `replay_steps(total_steps, N - 1)`
  (half evenly spaced on a log scale, where training changes fastest, half evenly spaced; the last step included),
  plus the step where the latest train() call ended (stopped early, or diverged); an earlier call's extra step is
  dropped when a later call ends, so the count stays <= N.
A run therefore holds at most 32 MiB + 2 B of snapshots however long it trains. Resuming a run drops the snapshots
of steps after its checkpoint (lost work), as the history does.

No TensorFlow here: writing calls `model.save_weights`, reading `model.load_weights`.
"""

import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FOLDER = "snapshots"
LIVE_PREFIX, REPLAY_PREFIX, SUFFIX = "live-", "step-", ".weights.h5"
STEP_DIGITS = 8
_NAME = re.compile(r"^(live|step)-(\d{8})\.weights\.h5$")
LIVE_KEPT = 2


@dataclass(frozen=True)
class SnapshotPolicy:
    """When and how many snapshots a recorder writes (see the module docstring for the rule)."""

    live_seconds: float = 2.0  # at least this long between two live snapshots
    write_share: float = 0.05  # and at least (1 / write_share) x the last write's duration
    replay_count: int = 40  # at most this many replay snapshots per run
    replay_bytes: int = 32 * 2**20  # and at most this many bytes of them
    max_bytes: int = 64 * 2**20  # no snapshots for a model whose weights are larger

    def replay_slots(self, weight_bytes: int) -> int:
        """N: how many replay snapshots a model of `weight_bytes` gets (0: none)."""
        if weight_bytes > self.max_bytes:
            return 0
        n = min(self.replay_count, self.replay_bytes // max(1, int(weight_bytes)))
        return n if n >= 2 else 0

    def writes(self, weight_bytes: int) -> bool:
        return weight_bytes <= self.max_bytes


def replay_steps(total_steps: int, count: int) -> list[int]:
    """At most `count` steps in [1, total_steps], sorted, the last step included: count // 2 evenly spaced on a log
    scale from step 1 (training changes fastest early), the rest evenly spaced; fewer where they coincide (a short
    run: every step)."""
    total_steps, count = int(total_steps), int(count)
    if total_steps < 1 or count < 1:
        return []
    if count >= total_steps:
        return list(range(1, total_steps + 1))
    n_log = count // 2
    n_even = count - n_log
    log_part = np.geomspace(1, total_steps, n_log + 1)[:-1]  # from step 1 up to (not including) the last
    even = np.linspace(total_steps / n_even, total_steps, n_even)
    return sorted({int(round(s)) for s in np.concatenate([log_part, even])})


def weight_bytes(model) -> int:
    """Bytes of a model's weights as saved (every variable, trainable or not)."""
    return int(sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in model.weights))


# --- the folder -------------------------------------------------------------------------------------------------
def folder(run_path) -> Path:
    return Path(run_path) / FOLDER


def file_name(kind: str, step: int) -> str:
    """'live-00000120.weights.h5' or 'step-00000120.weights.h5'."""
    prefix = {"live": LIVE_PREFIX, "replay": REPLAY_PREFIX}[kind]
    step = int(step)
    if not 0 <= step < 10**STEP_DIGITS:
        raise ValueError(f"a snapshot's step must be in [0, {10**STEP_DIGITS}), got {step}")
    return f"{prefix}{step:0{STEP_DIGITS}d}{SUFFIX}"


def parse_name(name: str) -> tuple[str, int] | None:
    """('live' | 'replay', step) for a snapshot file name, else None."""
    m = _NAME.match(name)
    if m is None:
        return None
    return ("live" if m.group(1) == "live" else "replay"), int(m.group(2))


@dataclass(frozen=True)
class Snapshot:
    step: int
    path: Path
    kind: str  # "live" or "replay"


def _listing(run_path, kind: str) -> list[Snapshot]:
    try:
        names = os.listdir(folder(run_path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        parsed = parse_name(name)
        if parsed is not None and parsed[0] == kind:
            out.append(Snapshot(parsed[1], folder(run_path) / name, kind))
    return sorted(out, key=lambda s: s.step)


def replay_snapshots(run_path) -> list[Snapshot]:
    """The run's replay snapshots, by step."""
    return _listing(run_path, "replay")


def live_snapshot(run_path) -> Snapshot | None:
    """The newest live snapshot, or None (a run written before snapshots existed, or not yet at its first step)."""
    live = _listing(run_path, "live")
    return live[-1] if live else None


# --- writing ----------------------------------------------------------------------------------------------------
def write(run_path, model, step: int, kind: str) -> Path:
    """Save the model's weights as the `kind` snapshot of `step` (atomically: a temporary file renamed into place)."""
    target = folder(run_path)
    target.mkdir(exist_ok=True)
    path = target / file_name(kind, step)
    tmp = target / f".tmp-{secrets.token_hex(6)}{SUFFIX}"  # Keras insists on the .weights.h5 suffix
    try:
        model.save_weights(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def prune_live(run_path, keep: int = LIVE_KEPT) -> None:
    """Delete all but the newest `keep` live snapshots."""
    for snap in _listing(run_path, "live")[:-keep] if keep > 0 else _listing(run_path, "live"):
        snap.path.unlink(missing_ok=True)


def remove_replay(run_path, steps) -> None:
    for step in steps:
        (folder(run_path) / file_name("replay", step)).unlink(missing_ok=True)


def truncate(run_path, step: int) -> None:
    """Drop every snapshot (live and replay) of a step after `step`: a resumed run's lost work."""
    for kind in ("live", "replay"):
        for snap in _listing(run_path, kind):
            if snap.step > step:
                snap.path.unlink(missing_ok=True)


# --- reading ----------------------------------------------------------------------------------------------------
def build_model(run):
    """A model for the run (from config.json + data.json, nothing loaded): load snapshots into it."""
    from vae_tfp.model import build_vae

    info = run.data_info()
    return build_vae(run.config(), tuple(info["event_shape"]), info.get("levels"))


def load_snapshot(model, snapshot: Snapshot):
    """Load a snapshot's weights into `model` (built for its run, e.g. by `build_model`) and return the model.
    FileNotFoundError if the file is gone (a live snapshot replaced meanwhile: ask `live_snapshot` again)."""
    if not Path(snapshot.path).is_file():
        raise FileNotFoundError(f"snapshot {snapshot.path} is gone")
    model.load_weights(str(snapshot.path))
    return model


def load_live(run_path, model, tries: int = 3) -> Snapshot | None:
    """Load the newest live snapshot into `model`; returns it (None if the run has none). A file replaced between
    listing and loading is looked up again, up to `tries` times."""
    for attempt in range(tries):
        snap = live_snapshot(run_path)
        if snap is None:
            return None
        try:
            load_snapshot(model, snap)
            return snap
        except (FileNotFoundError, OSError):
            if attempt == tries - 1:
                raise
    return None


__all__ = ["SnapshotPolicy", "Snapshot", "replay_steps", "weight_bytes", "folder", "file_name", "parse_name",
           "replay_snapshots", "live_snapshot", "write", "prune_live", "remove_replay", "truncate", "build_model",
           "load_snapshot", "load_live"]
