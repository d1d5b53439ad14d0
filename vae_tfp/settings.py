"""The server's settings: its mode (`local` or `shared`) and the limits an operator sets, in one frozen object.

    settings, warnings = read_settings(os.environ, secrets)   # env beats secrets beats the mode's defaults
    settings.shared                       True in shared mode
    settings.job_limits()                 JobLimits(max_running=2, max_queued=8, max_per_session=1): the job backend's
    settings.upload_limits()              UploadLimits(...): what an uploaded data set may be
    settings.config_problem(config)       "epochs=500 is over this server's limit of 200 epochs." or ""
    settings.offered(name, (lo, hi))      a widget's range with this server's cap applied
    settings.describe()                   the lines of the page's "this server" note

Each setting is read from an environment variable (`VAE_TFP_MODE=shared`, `VAE_TFP_MAX_EPOCHS=100`, ...) or, on a
host where setting the environment is awkward (Streamlit Community Cloud), from `.streamlit/secrets.toml`
(`VAE_TFP_MODE = "shared"`, top level or in a `[vae_tfp]` table); the environment wins. A limit of "none" means no
limit. A bad value never stops the server: it is named in a warning (which the page shows) and the mode's default
applies. `python -m vae_tfp.settings` prints the table of settings with both modes' defaults.

Local mode (the default: one person, their own machine) keeps the dashboard as it always was: every run in `runs/`,
no caps beyond the config's own ranges and the model-size budget (`vae_tfp.budget`). Shared mode (one server, many
people) has a private space per browser session (`vae_tfp.spaces`) and the safe defaults below.

TF-free and streamlit-free: the dashboard passes `st.secrets` in as a plain mapping.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from vae_tfp.jobs.limits import JobLimits, default_running

MODES = ("local", "shared")
MB = 2**20
UNLIMITED = ("none", "unlimited", "off")


@dataclass(frozen=True)
class Option:
    """One setting: its variable, what it means, and its default in local and in shared mode (None: no limit)."""

    env: str
    help: str
    local: object
    shared: object
    minimum: int = 1  # for numbers


@dataclass(frozen=True)
class UploadLimits:
    """What an uploaded data set may be: the file, the examples it holds, and their size in memory as float32."""

    max_file_bytes: int = 50 * MB
    max_examples: int = 20_000
    max_dataset_bytes: int = 64 * MB  # all examples, float32 (4 bytes per value)
    max_image_pixels: int = 1024 * 1024  # one image of a zip, checked before it is decoded
    max_unpacked_bytes: int = 512 * MB  # everything inside a zip (.npz or PNGs), checked before it is read


OPTIONS: dict[str, Option] = {
    "mode": Option("VAE_TFP_MODE", "local: everyone sees every run in the runs folder (one person, own machine); "
                   "shared: a private space per browser session, runs seen by others only when published", "local",
                   "shared"),
    "home": Option("VAE_TFP_HOME", "shared mode: the folder that holds every space (runs, uploads) and the published "
                   "runs; put it on a volume", "server-data", "server-data"),
    "uploads": Option("VAE_TFP_UPLOADS", "local mode: the folder that holds uploaded data sets", "uploads",
                      "uploads"),
    "max_jobs": Option("VAE_TFP_MAX_JOBS", "trainings running at once on this server (one worker process each)",
                       default_running(), default_running()),
    "max_queue": Option("VAE_TFP_MAX_QUEUE", "trainings waiting for a free slot", 16, 8, minimum=0),
    "max_jobs_per_session": Option("VAE_TFP_MAX_JOBS_PER_SESSION", "trainings one session may have running or "
                                   "queued", None, 1),
    "max_epochs": Option("VAE_TFP_MAX_EPOCHS", "epochs of one training", None, 200),
    "max_latent_dim": Option("VAE_TFP_MAX_LATENT", "latent dimension", None, 32),
    "max_upload_mb": Option("VAE_TFP_MAX_UPLOAD_MB", "size of one uploaded file in MB (keep Streamlit's "
                            "server.maxUploadSize above it)", 200, 50),
    "max_examples": Option("VAE_TFP_MAX_EXAMPLES", "examples in an uploaded data set", 1_000_000, 20_000),
    "max_dataset_mb": Option("VAE_TFP_MAX_DATASET_MB", "an uploaded data set's size in memory (float32) in MB", 2048,
                             64),
    "max_uploads_per_session": Option("VAE_TFP_MAX_UPLOADS", "uploaded data sets kept per session", None, 5),
    "max_runs_mb": Option("VAE_TFP_MAX_RUNS_MB", "disk for all runs in MB; when over, the oldest unpublished runs "
                          "are removed before a new training starts", None, 2048),
}
REQUIRED = ("max_jobs", "max_queue", "max_upload_mb", "max_examples", "max_dataset_mb")  # never "none"


@dataclass(frozen=True)
class Settings:
    mode: str = "local"
    home: Path = Path("server-data")
    uploads: Path = Path("uploads")
    max_jobs: int = default_running()
    max_queue: int = 16
    max_jobs_per_session: int | None = None
    max_epochs: int | None = None
    max_latent_dim: int | None = None
    max_upload_mb: int = 200
    max_examples: int = 1_000_000
    max_dataset_mb: int = 2048
    max_uploads_per_session: int | None = None
    max_runs_mb: int | None = None

    @property
    def shared(self) -> bool:
        return self.mode == "shared"

    def job_limits(self) -> JobLimits:
        return JobLimits(max_running=self.max_jobs, max_queued=self.max_queue,
                         max_per_session=self.max_jobs_per_session)

    def upload_limits(self) -> UploadLimits:
        return UploadLimits(max_file_bytes=self.max_upload_mb * MB, max_examples=self.max_examples,
                            max_dataset_bytes=self.max_dataset_mb * MB,
                            max_unpacked_bytes=max(self.max_dataset_mb * MB * 2, self.max_upload_mb * MB))

    # --- caps on the config -------------------------------------------------------------------------------------
    def caps(self) -> dict[str, int]:
        """{RunConfig field: this server's cap} for the fields it caps."""
        return {name: cap for name, cap in (("epochs", self.max_epochs), ("latent_dim", self.max_latent_dim))
                if cap is not None}

    def offered(self, name: str, ui: tuple) -> tuple:
        """A widget's range (lo, hi) with this server's cap on that field applied."""
        cap = self.caps().get(name)
        lo, hi = ui
        return (lo, min(hi, cap)) if cap is not None else (lo, hi)

    def config_problem(self, config) -> str:
        """"" when the config is within this server's caps, else a sentence naming each value and its limit. In
        shared mode the data set must be built in or an upload (`upload:<name>`): a config never points a shared
        server at a file."""
        over = [f"{name}={getattr(config, name)} is over this server's limit of {cap} ({_UNITS[name]})"
                for name, cap in self.caps().items() if getattr(config, name) > cap]
        if self.shared:
            from vae_tfp.datasets import DATASETS
            from vae_tfp.datasets.uploads import is_upload

            if config.dataset not in DATASETS and not is_upload(config.dataset):
                over.append(f"dataset={config.dataset!r} is neither built in nor uploaded to this session; a shared "
                            "server reads no other data")
        return ("; ".join(over) + ".") if over else ""

    def check_config(self, config) -> None:
        """ValueError naming the value and the limit when a config is over this server's caps (for the job
        backend, which must not trust the page)."""
        problem = self.config_problem(config)
        if problem:
            raise ValueError(problem)

    # --- words for the page -------------------------------------------------------------------------------------
    def describe(self) -> list[str]:
        """The limits that apply, one short line each, for the page's "this server" note."""
        def limit(value, words, unit=""):
            return f"{words}: {'no limit' if value is None else f'{value:,}{unit}'}"

        lines = [limit(self.max_jobs, "trainings at once"), limit(self.max_queue, "waiting in the queue"),
                 limit(self.max_jobs_per_session, "trainings per session (running or queued)"),
                 limit(self.max_epochs, "epochs per training"), limit(self.max_latent_dim, "latent dimension"),
                 limit(self.max_upload_mb, "upload size", " MB"),
                 limit(self.max_examples, "examples in an uploaded data set"),
                 limit(self.max_dataset_mb, "an uploaded data set in memory", " MB"),
                 limit(self.max_uploads_per_session, "uploaded data sets per session"),
                 limit(self.max_runs_mb, "disk for runs", " MB")
                 + (" (the oldest unpublished runs are removed when it is full)" if self.max_runs_mb else "")]
        return lines


_UNITS = {"epochs": "epochs", "latent_dim": "latent dimensions"}


def _parse(name: str, option: Option, text) -> object:
    if name == "mode":
        value = str(text).strip().lower()
        if value not in MODES:
            raise ValueError(f"{option.env}={text!r} is not a mode; allowed: {', '.join(MODES)}")
        return value
    if name in ("home", "uploads"):
        value = str(text).strip()
        if not value:
            raise ValueError(f"{option.env} is empty; give a folder")
        return Path(value).expanduser()
    if isinstance(text, str) and text.strip().lower() in UNLIMITED:
        if name in REQUIRED:
            raise ValueError(f"{option.env}={text!r}: this limit must be a number (at least {option.minimum})")
        return None
    try:
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
            raise ValueError
        value = int(str(text).strip().replace("_", ""))
    except (TypeError, ValueError):
        raise ValueError(f"{option.env}={text!r} is not a whole number; allowed: a whole number of at least "
                         f"{option.minimum}" + ("" if name in REQUIRED else ", or 'none' for no limit")) from None
    if value < option.minimum:
        raise ValueError(f"{option.env}={text!r} is below {option.minimum}")
    return value


def _secret(secrets: Mapping | None, env: str):
    """The value of `env` in a secrets mapping: top level, or in a [vae_tfp] table; None when absent."""
    if not secrets:
        return None
    try:
        if env in secrets:
            return secrets[env]
        table = secrets.get("vae_tfp") if hasattr(secrets, "get") else None
        if isinstance(table, Mapping):
            short = env.removeprefix("VAE_TFP_")
            for key in (env, short, short.lower()):
                if key in table:
                    return table[key]
    except Exception:  # noqa: BLE001 - a secrets object that cannot be read counts as no secrets
        return None
    return None


def read_settings(environ: Mapping | None = None, secrets: Mapping | None = None) -> tuple[Settings, list[str]]:
    """(Settings, warnings) from the environment (default os.environ) and a secrets mapping; each value that cannot
    be used is named in a warning and that setting keeps the mode's default."""
    environ = os.environ if environ is None else environ
    warnings, raw = [], {}
    for name, option in OPTIONS.items():
        value = environ.get(option.env)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = _secret(secrets, option.env)
        if value is not None:
            raw[name] = value
    mode = "local"
    if "mode" in raw:
        try:
            mode = _parse("mode", OPTIONS["mode"], raw["mode"])
        except ValueError as err:
            warnings.append(f"{err}; using local mode.")
    values = {"mode": mode}
    for name, option in OPTIONS.items():
        if name == "mode":
            continue
        default = option.shared if mode == "shared" else option.local
        if name in raw:
            try:
                values[name] = _parse(name, option, raw[name])
                continue
            except ValueError as err:
                warnings.append(f"{err}; using {default!r}.")
        values[name] = Path(default) if name in ("home", "uploads") else default
    return Settings(**values), warnings


def table() -> str:
    """The settings as a Markdown table (the README's)."""
    rows = ["| variable | meaning | local default | shared default |", "|---|---|---|---|"]
    for option in OPTIONS.values():
        def shown(v, env=option.env):
            if env == "VAE_TFP_MAX_JOBS":
                return "one per two cores"  # default_running(): depends on the machine
            return "no limit" if v is None else f"`{v}`"
        rows.append(f"| `{option.env}` | {option.help} | {shown(option.local)} | {shown(option.shared)} |")
    return "\n".join(rows)


assert {f.name for f in fields(Settings)} == set(OPTIONS), "every setting has one Option"

if __name__ == "__main__":
    print(table())
