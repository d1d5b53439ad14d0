"""The one config object: `RunConfig`, a frozen dataclass the sidebar, the CLI, the run directory and a shared link
all use. It validates itself on creation (ValueError naming the field, the value and what is allowed) and
round-trips through JSON (`to_dict` / `from_dict`, `to_json` / `from_json`).

Each field is written once, with its metadata (`Setting`): the valid range, the narrower range the dashboard offers,
step and format, help text, the command-line flag (default `--field-name`), the group it belongs to (Data, Model,
Objective, Optimisation, Advanced) and, for a choice, the allowed names with their words, read from the registries
in `vae_tfp.families` (and `vae_tfp.datasets` for binarizations). Validation, the CLI's `train` flags
(`vae_tfp.cli`) and the sidebar's widgets (`dashboard/sidebar.py`) are generated from it.

The stored JSON carries a `version`; `from_dict` migrates older versions in (see MIGRATIONS) and refuses newer ones.

This module imports no TensorFlow, so the dashboard can build and validate a config before TF has loaded.
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from vae_tfp.datasets.representations import BINARIZATIONS
from vae_tfp.families import LIKELIHOODS, NETWORKS, POSTERIORS, PRIORS, SIGMA_MODES

CONFIG_VERSION = 1
# MIGRATIONS[v] turns the dict of a version-v config into version v + 1 (none yet: version 1 is the first).
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}

KL_METHODS = {"analytic": "analytic where TFP has a closed form, else Monte Carlo", "mc": "Monte Carlo, always"}
LR_SCHEDULES = {"constant": "constant", "cosine": "cosine decay to 0 over the run"}
PRECISIONS = ("float32", "bfloat16")  # Trainer(precision=...): bfloat16 runs the hidden dense matmuls in bf16

# The groups a field belongs to, in the order the CLI's help and the sidebar show them, with their titles.
GROUPS = {"Data": "Data", "Model": "Model: p(x|z), p(z), q(z|x)", "Objective": "Objective",
          "Optimisation": "Optimisation", "Advanced": "Networks and more"}
MAX_HIDDEN_LAYERS, MAX_WIDTH = 8, 16384


@dataclass(frozen=True)
class Setting:
    """How one RunConfig field is checked, offered and explained."""

    help: str  # one or two sentences, shown by the CLI's --help and the widget's help
    group: str  # one of GROUPS
    label: str = ""  # the widget's label
    range: tuple | None = None  # [lo, hi] a number must lie in
    ui_range: tuple | None = None  # [lo, hi] the dashboard offers (default: range); a link outside it is warned about
    step: float | None = None  # the number input's step
    format: str | None = None  # the number input's format ("%.3f")
    flag: str | None = None  # the command-line flag, default "--field-name"
    choices: Mapping[str, str] | None = None  # allowed names -> the words shown to people
    show_words: bool = False  # the widget shows each choice's words instead of its name
    applies: Callable[[Mapping], bool] | None = None  # only matters when this holds for the config's values
    row: str | None = None  # fields of one group with the same row sit side by side in the sidebar

    @property
    def ui(self) -> tuple | None:
        return self.ui_range or self.range

    def applies_to(self, values: Mapping) -> bool:
        """Whether the field matters for a config with these values (e.g. sigma only for a likelihood with one)."""
        return self.applies is None or bool(self.applies(values))


def _setting(default, **meta):
    return field(default=default, metadata={"setting": Setting(**meta)})


def _words(registry: Mapping) -> dict[str, str]:
    return {name: entry.words for name, entry in registry.items()}


def _likelihood_has(flag: str) -> Callable[[Mapping], bool]:
    def applies(values: Mapping) -> bool:
        family = LIKELIHOODS.get(values.get("likelihood"))
        return family is not None and bool(getattr(family, flag))
    return applies


def _binary_likelihood(values: Mapping) -> bool:
    family = LIKELIHOODS.get(values.get("likelihood"))
    return family is not None and family.representation == "binary"


def _mixture_prior(values: Mapping) -> bool:
    family = PRIORS.get(values.get("prior"))
    return family is not None and family.mixture


@dataclass(frozen=True)
class RunConfig:
    version: ClassVar[int] = CONFIG_VERSION  # of the stored JSON; not a setting

    # data
    dataset: str = _setting(
        "digits", group="Data", label="Dataset",
        help="The data to model: a registered name (see `python -m vae_tfp datasets`) or, on the command line, "
             "a .npz file or a folder of PNGs.")
    # model: p(x|z), p(z), q(z|x)
    likelihood: str = _setting(
        "bernoulli", group="Model", label="Likelihood p(x|z)",
        choices={n: f"{f.words} (data as {f.representation})" for n, f in LIKELIHOODS.items()},
        help="p(x|z): the distribution the decoder's outputs parameterise.")
    binarization: str = _setting(
        "dynamic", group="Model", label="Binarization", choices=BINARIZATIONS, show_words=True,
        applies=_binary_likelihood, help="How grey data becomes binary for a likelihood of binary pixels.")
    sigma: float = _setting(
        0.1, group="Model", label="sigma", range=(1e-4, 1e4), ui_range=(0.001, 10.0), step=0.01, format="%.3f",
        applies=_likelihood_has("has_sigma"), row="sigma",
        help="The Gaussian's standard deviation (its start value when learned).")
    sigma_mode: str = _setting(
        "fixed", group="Model", label="sigma is", choices=SIGMA_MODES, show_words=True,
        applies=_likelihood_has("has_sigma"), row="sigma",
        help="sigma fixed, or learned: one shared value or one per data dimension.")
    latent_dim: int = _setting(
        2, group="Model", label="Latent dimension", range=(1, 512), ui_range=(1, 64), step=1,
        help="The size of z. 2 allows the latent-plane pictures and log p(x) by quadrature.")
    prior: str = _setting(
        "standard_normal", group="Model", label="Prior p(z)", choices=_words(PRIORS), show_words=True,
        help="p(z), the distribution of the latent code.")
    posterior: str = _setting(
        "diagonal", group="Model", label="Posterior q(z|x)", choices=_words(POSTERIORS), show_words=True,
        help="q(z|x), the encoder's approximation of p(z|x).")
    prior_components: int = _setting(
        10, group="Model", label="Components K", range=(1, 1000), ui_range=(1, 500), step=1,
        applies=_mixture_prior, help="Components K of a mixture prior: Gaussians, or the VampPrior's pseudo-inputs "
                                     "(the paper uses 500; each step encodes all K).")
    # objective
    beta: float = _setting(
        1.0, group="Objective", label="β (KL weight)", range=(0.0, 1e4), ui_range=(0.0, 100.0), step=0.1,
        format="%.2f", row="1", help="Loss = -E_q[log p(x|z)] + β KL(q(z|x) || p(z)); β = 1 is the ELBO.")
    warmup_epochs: float = _setting(
        0.0, group="Objective", label="KL warm-up (epochs)", range=(0.0, 1e5), ui_range=(0.0, 1000.0), step=1.0,
        format="%.1f", flag="--warmup", row="1", help="β rises linearly from 0 over this many epochs.")
    free_bits: float = _setting(
        0.0, group="Objective", label="Free bits (nats/dim)", range=(0.0, 100.0), ui_range=(0.0, 10.0), step=0.05,
        format="%.2f", row="2", help="A floor on each latent dimension's KL, in nats.")
    iwae_k: int = _setting(
        1, group="Objective", label="IWAE k", range=(1, 5000), ui_range=(1, 100), step=1, row="2",
        help="k > 1 trains the importance-weighted bound with k samples.")
    # optimisation
    epochs: int = _setting(
        20, group="Optimisation", label="Epochs", range=(0, 100_000), ui_range=(1, 10_000), step=1, row="1",
        help="Passes over the training set.")
    batch_size: int = _setting(
        128, group="Optimisation", label="Batch size", range=(1, 65_536), ui_range=(1, 4096), step=1, row="1",
        help="Training examples per step.")
    lr: float = _setting(
        1e-3, group="Optimisation", label="Learning rate", range=(1e-7, 10.0), ui_range=(1e-6, 1.0), step=1e-4,
        format="%.1e", row="2", help="Adam's learning rate.")
    seed: int = _setting(
        0, group="Optimisation", label="Seed", range=(0, 2**31 - 1), step=1, row="2",
        help="Seeds the weights, the order of the data and the sampling.")
    # networks and more
    network: str = _setting(
        "mlp", group="Advanced", label="Network", choices=_words(NETWORKS),
        help="The encoder and decoder architecture.")
    hidden: tuple = _setting(
        (256, 128), group="Advanced", label="Hidden widths (encoder; the decoder mirrors them)",
        help=f"Encoder layer widths, e.g. 512,256 (at most {MAX_HIDDEN_LAYERS} layers of 1 to {MAX_WIDTH}); "
             "the decoder mirrors them.")
    kl: str = _setting(
        "analytic", group="Advanced", label="KL estimate", choices=KL_METHODS,
        help="How KL(q(z|x) || p(z)) is computed.")
    lr_schedule: str = _setting(
        "constant", group="Advanced", label="Learning-rate schedule", choices=LR_SCHEDULES,
        help="The learning rate over the run.")
    eval_every: int = _setting(
        1, group="Advanced", label="Test ELBO every (epochs)", range=(1, 100_000), ui_range=(1, 1000), step=1,
        help="Epochs between test-set ELBO evaluations.")
    checkpoint_every: int = _setting(
        500, group="Advanced", label="Checkpoint every (steps)", range=(1, 10**9), ui_range=(1, 1_000_000), step=1,
        help="Training steps between checkpoints (and one at the end), for resuming.")

    def __post_init__(self):
        object.__setattr__(self, "hidden", _as_widths(self.hidden))
        for f in fields(self):
            _check(f.name, getattr(self, f.name), f.default, f.metadata["setting"])
        if self.iwae_k > 1 and self.free_bits > 0:
            raise ValueError("free_bits applies to the ELBO's KL term; it cannot be combined with iwae_k > 1")

    def replace(self, **changes) -> "RunConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object, got {type(d).__name__}")
        d = migrate(d)
        known = set(SETTINGS)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {', '.join(sorted(known | {'version'}))}")
        typed = {}
        for f in fields(cls):
            if f.name in d:
                typed[f.name] = _coerce(f.name, d[f.name], f.default)
        return cls(**typed)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"config is not valid JSON: {err}") from None
        return cls.from_dict(d)


SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(RunConfig)}
DEFAULTS: dict = {f.name: f.default for f in fields(RunConfig)}


def flag(name: str) -> str:
    """The command-line flag of a field: its Setting's flag, else --field-name."""
    return SETTINGS[name].flag or "--" + name.replace("_", "-")


def kind(name: str) -> str:
    """How a field is entered: "choice", "int", "float", "widths" (hidden) or "text" (dataset)."""
    setting, default = SETTINGS[name], DEFAULTS[name]
    if setting.choices is not None:
        return "choice"
    if isinstance(default, tuple):
        return "widths"
    if isinstance(default, bool) or isinstance(default, str):
        return "text"
    return "int" if isinstance(default, int) else "float"


def migrate(d: dict) -> dict:
    """A stored config dict brought to CONFIG_VERSION (a dict without "version" is read as the current one); the
    result has no "version" key. ValueError for a version this vae-tfp cannot read."""
    d = dict(d)
    version = d.pop("version", CONFIG_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= CONFIG_VERSION:
        raise ValueError(f"config version {version!r} is not supported; this vae-tfp reads versions 1 to "
                         f"{CONFIG_VERSION}")
    while version < CONFIG_VERSION:
        d = MIGRATIONS[version](d)
        version += 1
    return d


def _check(name, value, default, setting: Setting):
    if setting.choices is not None:
        _one_of(name, value, setting.choices)
    elif setting.range is not None:
        lo, hi = setting.range
        if isinstance(default, int):
            _int_in(name, value, lo, hi)
        else:
            _number_in(name, value, lo, hi)
    elif isinstance(default, str) and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{name} must be a {name} name or a path, got {value!r}")


def _coerce(name, value, default):
    """Convert a JSON / query-string value to the field's type, or raise a ValueError naming the field."""
    if isinstance(default, tuple):
        return _as_widths(value)  # its own message says what widths are allowed
    try:
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be of type {type(default).__name__}, got {value!r}") from None


def _as_widths(value) -> tuple:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        widths = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"hidden must be a list of layer widths such as [256, 128], got {value!r}") from None
    if any(w < 1 or w > MAX_WIDTH for w in widths) or len(widths) > MAX_HIDDEN_LAYERS:
        raise ValueError(f"hidden must hold at most {MAX_HIDDEN_LAYERS} widths between 1 and {MAX_WIDTH}, "
                         f"got {list(widths)}")
    return widths


def _one_of(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def _int_in(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _number_in(name, value, lo, hi):
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
