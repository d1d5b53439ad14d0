"""Whose runs and data a browser session sees, and what it may do with them: one `Space` per session.

    space = open_space(settings, key)    the session's space (shared mode: the space of `key`, see `new_key`)
    space.runs_root, space.data_root     where this session's runs and uploaded data sets live
    space.runs()                         the runs it may pick (its own; each row says if and where it is published)
    space.run(ref)                       a Run by reference: an own run's name, or "published:<id>"
    space.access(ref)                    Access(view, download, resume, delete, publish): what it may do with it
    space.publish(name) -> id            a read-only copy others open with ?pub=<id>; space.unpublish(name)
    space.delete(name)                   an own run (and its publication)
    space.datasets(), space.add_dataset(ds, base, file), space.load_dataset(name), space.remove_dataset(name)
    enforce_disk_limit(settings, keep)   removes the oldest unpublished runs while the runs' disk is over the limit

Local mode (one person, own machine; the default): one space, the runs folder everyone on the machine uses
(`vae_tfp.runs.runs_root()`, i.e. $VAE_TFP_RUNS or ./runs) and ./uploads; every run may be resumed and deleted, as the
dashboard always allowed; there is nobody to publish to.

Shared mode (`VAE_TFP_MODE=shared`), under `settings.home` (a volume in the Docker image):

    <home>/spaces/<space id>/runs/<run>/      a space's runs (layout in vae_tfp.runs); published.json marks one
    <home>/spaces/<space id>/data/            its uploaded data sets (vae_tfp.datasets.uploads)
    <home>/published/<publication id>/        a published run: a copy of what a bundle holds (its test split
                                              carried), files read-only; nobody's space is ever read to show it

Keys and ids. A session reaches its space through a key: 32 random URL-safe characters (`secrets.token_urlsafe(24)`,
192 bits from the OS's random source) kept in the page's address as `?space=<key>`. The address is the one thing a
browser keeps across a reload that a Streamlit app can write without a custom component (it cannot set a cookie); it
also survives a restart of the server, works on any device and can be bookmarked. Like an "anyone with the link"
document it is a capability: whoever holds the full address holds the space, so the page shares a setup through a
link without it. On disk a space is named by a hash of its key (the first 32 hex digits of sha256), so the folders
and the server's logs never show a key and no key can be found from a folder. A publication id is 22 random URL-safe
characters (128 bits), separate from any key: knowing one space or publication tells nothing about another.

Read-only is structural: a published run lives outside every space, its files are made read-only, and a session's
writes (training, resume, import, delete) only ever go to its own runs root. Paths always stay inside their folders:
run names go through `vae_tfp.runs.safe_name`, keys and ids must match their pattern before they touch a path.

Imports neither TensorFlow nor streamlit.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from vae_tfp.datasets import uploads
from vae_tfp.runs import Run, atomic_write_json, get_run, list_runs, run_summary, runs_root
from vae_tfp.settings import Settings

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
PUBLICATION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
PUBLISHED_PREFIX = "published:"
PUBLISHED_MARK = "published.json"  # in an own run: {"id": ..., "published": time}
PUBLICATION_INFO = "publication.json"  # in a publication: {"id", "name", "published"}
RESUMABLE = ("stopped", "unfinished")


class SpaceError(ValueError):
    """What a session asked for is not allowed or does not exist; the message says which and why."""


def new_key() -> str:
    """A fresh space key (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def valid_key(key) -> bool:
    return isinstance(key, str) and bool(KEY_PATTERN.match(key))


def space_id(key: str) -> str:
    """The folder name of a key's space: a hash, so that a folder never reveals its key."""
    return hashlib.sha256(b"vae-tfp space\0" + key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Access:
    """What a session may do with one run."""

    view: bool = True
    download: bool = True
    resume: bool = False
    delete: bool = False
    publish: bool = False
    owned: bool = False
    why: str = ""  # words for what is not allowed (shown beside a read-only run)


@dataclass
class Space:
    settings: Settings
    mode: str
    runs_root: Path
    data_root: Path
    id: str = "local"  # the owner of jobs and uploads (job limits count per id); never a key
    key: str | None = field(default=None, repr=False)

    @property
    def shared(self) -> bool:
        return self.mode == "shared"

    # --- runs ------------------------------------------------------------------------------------------------------
    def runs(self) -> list[dict]:
        """This session's own runs, newest first (vae_tfp.runs.list_runs rows, plus "published": id or None)."""
        rows = list_runs(self.runs_root)
        for row in rows:
            row["ref"] = row["name"]
            row["published"] = self.publication(row["name"]) if self.shared else None
        return rows

    def published_row(self, ref: str) -> dict:
        """The summary row of a published run (for the run picker); SpaceError when it does not exist."""
        run = self.run(ref)
        row = run_summary(run.path)
        if row is None:
            raise SpaceError(f"the published run {ref!r} cannot be read")
        info = _publication_info(run.path)
        return row | {"ref": ref, "name": info.get("name", row["name"]), "published": publication_of(ref)}

    def run(self, ref: str) -> Run:
        """An own run by name, or a published one by "published:<id>"; SpaceError when there is none."""
        if is_published(ref):
            path = published_path(self.settings, publication_of(ref))
            if not (path / "config.json").is_file():
                raise SpaceError(f"there is no published run {publication_of(ref)!r} (it may have been withdrawn)")
            return Run(path)
        try:
            return get_run(ref, self.runs_root)
        except ValueError as err:
            raise SpaceError(f"no run {ref!r} in {'your space' if self.shared else str(self.runs_root)} ({err})") \
                from None

    def access(self, ref: str) -> Access:
        """What this session may do with the run `ref`. Published runs: view and download only. Own runs: resume
        when it stopped early and has a checkpoint (whether a job is running on it is the page's and the job
        layer's to add), delete, and in shared mode publish once it has weights."""
        if is_published(ref):
            return Access(why="Shared with you, read-only: you can look at it and download it; only its owner can "
                              "resume, change or delete it.")
        run = self.run(ref)
        status = run.metrics().get("status", "unfinished")
        return Access(owned=True, resume=status in RESUMABLE and run.checkpoint_state() is not None, delete=True,
                      publish=self.shared and run.has_weights())

    def require(self, ref: str, action: str) -> Run:
        """The run, or SpaceError when this session may not `action` ("resume", "delete", "publish", "download")
        it."""
        access = self.access(ref)
        if not getattr(access, action):
            raise SpaceError(f"this session may not {action} {ref!r}" + (f": {access.why}" if access.why else ""))
        return self.run(ref)

    def publication(self, name: str) -> str | None:
        """The publication id of an own run, or None."""
        try:
            mark = json.loads((get_run(name, self.runs_root).path / PUBLISHED_MARK).read_text())
        except (OSError, ValueError):
            return None
        pid = mark.get("id") if isinstance(mark, dict) else None
        if not (isinstance(pid, str) and PUBLICATION_PATTERN.match(pid)
                and (published_path(self.settings, pid) / "config.json").is_file()):
            return None
        return pid

    def publish(self, name: str) -> str:
        """Publish an own run: a read-only copy (weights, history, metrics, the test split of uploaded data) that
        anyone with its link can open. Publishing again replaces the copy with the run as it is now (same id)."""
        if not self.shared:
            raise SpaceError("runs are published only on a shared server (VAE_TFP_MODE=shared)")
        run = self.require(name, "publish")
        from vae_tfp.sharing import copy_run

        pid = self.publication(name) or secrets.token_urlsafe(16)
        final = published_path(self.settings, pid)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{pid}.{secrets.token_hex(4)}.tmp"
        try:
            copy = copy_run(run, tmp, uploads_root=self.data_root, allow_paths=False)
            atomic_write_json(copy.path / PUBLICATION_INFO, {"id": pid, "name": run.name, "published": time.time()})
            _read_only(tmp)
            if final.exists():
                _remove(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                _remove(tmp)
        atomic_write_json(run.path / PUBLISHED_MARK, {"id": pid, "published": time.time()})
        return pid

    def unpublish(self, name: str) -> None:
        """Withdraw an own run's publication (its link stops working)."""
        run = self.require(name, "delete")
        pid = self.publication(name)
        if pid is not None:
            _remove(published_path(self.settings, pid))
        (run.path / PUBLISHED_MARK).unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        """Delete an own run and withdraw its publication."""
        run = self.require(name, "delete")
        self.unpublish(name)
        shutil.rmtree(run.path)

    # --- uploaded data sets ----------------------------------------------------------------------------------------
    def datasets(self) -> list[dict]:
        return uploads.list_uploads(self.data_root)

    def add_dataset(self, dataset, base: str, file: str = "") -> str:
        """Keep a validated upload as a data set of this session; returns its name ("upload:<name>")."""
        return uploads.save(self.data_root, dataset, base, file=file,
                            max_count=self.settings.max_uploads_per_session)

    def load_dataset(self, name: str):
        return uploads.load(self.data_root, name)

    def dataset_path(self, name: str) -> Path:
        return uploads.path_of(self.data_root, name)

    def remove_dataset(self, name: str) -> None:
        uploads.delete(self.data_root, name)

    def data_source(self, config, run: Run | None = None) -> tuple[str, str]:
        """Where the data of a config (of `run`) comes from: ("carried", path) for the test split a run carries,
        ("upload", path) for an upload of this session, ("builtin", name). A path names a file of this space or of
        the run; SpaceError for a data set this server does not read (a path, in shared mode)."""
        if run is not None and (run.path / uploads.TEST_DATA).is_file():
            return "carried", str(run.path / uploads.TEST_DATA)
        if uploads.is_upload(config.dataset):
            return "upload", str(self.dataset_path(config.dataset))
        from vae_tfp.data import DATASETS

        if config.dataset not in DATASETS and (self.shared or uploads.is_bundled(config.dataset)):
            raise SpaceError(f"the data set {config.dataset!r} is not one this server reads"
                             + (f" (run {run.name!r})" if run is not None else ""))
        return "builtin", config.dataset

    def run_dataset(self, run: Run):
        """The data a run's views need (raw, before the likelihood's conversion): the test split the run carries,
        an upload of this session, or a built-in data set. SpaceError when it cannot be had here."""
        config = run.config()
        kind, where = self.data_source(config, run)
        if kind == "carried":
            return uploads.read_test_split(Path(where), config.dataset)
        if kind == "upload":
            try:
                return self.load_dataset(config.dataset)
            except ValueError as err:
                raise SpaceError(f"run {run.name!r} was trained on {config.dataset!r}: {err}") from None
        from vae_tfp.data import load

        return load(where, seed=config.seed)

    def export_bundle(self, ref: str) -> bytes:
        from vae_tfp.sharing import export_bundle

        run = self.require(ref, "download")
        return export_bundle(run, uploads_root=self.data_root, allow_paths=not self.shared)


def is_published(ref) -> bool:
    return isinstance(ref, str) and ref.startswith(PUBLISHED_PREFIX)


def publication_of(ref: str) -> str:
    return ref[len(PUBLISHED_PREFIX):]


def published_ref(pid: str) -> str:
    return PUBLISHED_PREFIX + pid


def published_path(settings: Settings, pid: str) -> Path:
    """The folder of a publication; SpaceError for an id that is not one (before it touches a path)."""
    if not isinstance(pid, str) or not PUBLICATION_PATTERN.match(pid):
        raise SpaceError(f"{str(pid)[:40]!r} is not a publication id (22 letters, digits, '-' or '_')")
    return Path(settings.home) / "published" / pid


def _publication_info(path: Path) -> dict:
    try:
        info = json.loads((path / PUBLICATION_INFO).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def open_space(settings: Settings, key: str | None = None) -> Space:
    """The space of a session. Local mode: the one shared runs folder (the key is ignored). Shared mode: the space
    of `key` (SpaceError when it is not a valid key; the page then makes a new one with `new_key`)."""
    if not settings.shared:
        return Space(settings, "local", runs_root(), uploads.default_root(settings.uploads))
    if not valid_key(key):
        raise SpaceError("the space key in this address is not valid (32 to 64 letters, digits, '-' or '_')")
    sid = space_id(key)
    folder = Path(settings.home) / "spaces" / sid
    return Space(settings, "shared", folder / "runs", folder / "data", id=sid, key=key)


# --- files ----------------------------------------------------------------------------------------------------------
def _read_only(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    folder.chmod(0o555)


def _remove(folder: Path) -> None:
    """rmtree that first gives back write permission (publications are read-only)."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(folder)


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def _last_write(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(times)


# --- disk ---------------------------------------------------------------------------------------------------------
@dataclass
class DiskReport:
    used_bytes: int
    limit_bytes: int | None
    removed: list[str] = field(default_factory=list)  # run folders removed, oldest first

    @property
    def over(self) -> bool:
        return self.limit_bytes is not None and self.used_bytes > self.limit_bytes

    def message(self) -> str:
        """Words for a refusal when the disk is still over its limit."""
        return (f"This server's disk for runs is full ({self.used_bytes / 2**20:,.0f} MB of "
                f"{(self.limit_bytes or 0) / 2**20:,.0f} MB) and holds no unpublished run old enough to remove; "
                "try again later, or delete or unpublish a run of yours.")


def run_folders(settings: Settings) -> tuple[list[Path], list[Path]]:
    """(every space's run folders, every publication's folder): shared mode under settings.home, local mode the runs
    folder (no publications)."""
    if not settings.shared:
        root = runs_root()
        return ([p for p in root.iterdir() if (p / "config.json").is_file() and not p.name.startswith(".")]
                if root.is_dir() else []), []
    home = Path(settings.home)
    runs = sorted(p for p in home.glob("spaces/*/runs/*") if (p / "config.json").is_file()
                  and not p.name.startswith("."))
    published = sorted(p for p in home.glob("published/*") if not p.name.startswith("."))
    return runs, published


def enforce_disk_limit(settings: Settings, keep=(), *, grace_s: float = 900.0, now: float | None = None) \
        -> DiskReport:
    """Keep the runs' disk (all spaces' runs plus the publications) under `settings.max_runs_mb`: while over, remove
    the run written longest ago that is not published, not in `keep` (run folders a job is writing) and not
    written within the last `grace_s` seconds (a run being trained writes its history every few seconds). Call it
    before a new training starts; `DiskReport.over` then means "refuse, the disk is full of runs that must stay"."""
    limit = settings.max_runs_mb
    runs, published = run_folders(settings)
    sizes = {p: _size(p) for p in runs + published}
    report = DiskReport(sum(sizes.values()), None if limit is None else limit * 2**20)
    if not report.over:
        return report
    now = time.time() if now is None else now
    kept = {Path(p).resolve() for p in keep}
    written = {p: _last_write(p) for p in runs}
    candidates = sorted((p for p in runs if not (p / PUBLISHED_MARK).exists() and p.resolve() not in kept
                         and now - written[p] > grace_s), key=written.get)
    for path in candidates:
        if not report.over:
            break
        shutil.rmtree(path, ignore_errors=True)
        report.used_bytes -= sizes[path]
        report.removed.append(str(path))
    return report
