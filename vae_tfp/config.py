"""The one config object: `RunConfig`, a frozen dataclass the sidebar, the CLI, the run directory and a shared link
all use. It validates itself on creation (ValueError naming the field, the value and what is allowed) and
round-trips through JSON (`to_dict` / `from_dict`, `to_json` / `from_json`).

This module imports no TensorFlow, so the dashboard can build and validate a config before TF has loaded.
"""

import json
import math
from dataclasses import asdict, dataclass, fields, replace

CONFIG_VERSION = 1

# Names of the registries (kept here so that validating a config needs no TensorFlow; a test checks they match).
LIKELIHOOD_NAMES = ("bernoulli", "continuous_bernoulli", "gaussian", "categorical", "discretized_logistic")
PRIOR_NAMES = ("standard_normal", "mixture")
POSTERIOR_NAMES = ("diagonal", "full")
NETWORK_NAMES = ("mlp", "conv", "linear")
SIGMA_MODES = ("fixed", "shared", "per_dim")
KL_METHODS = ("analytic", "mc")
BINARIZATIONS = ("dynamic", "static", "threshold")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "bfloat16")  # Trainer(precision=...): bfloat16 runs the hidden dense matmuls in bf16

# What each likelihood models and the data representation it needs. The likelihood registry
# (`vae_tfp.likelihoods.LIKELIHOODS`) reads its entries' text from here, so the dashboard can explain a choice before
# TensorFlow has loaded.
LIKELIHOOD_HELP = {
    "bernoulli": ("binary pixels; grey data is binarized first", "binary"),
    "continuous_bernoulli": ("intensities in [0, 1] (the normalised fix for a Bernoulli on grey pixels)", "unit"),
    "gaussian": ("real values (pixels scaled to [0, 1]); sigma fixed or learned", "real"),
    "categorical": ("K intensity levels per pixel, a softmax over levels", "levels"),
    "discretized_logistic": ("K intensity levels per pixel as a quantized logistic", "levels"),
}


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "digits"
    binarization: str = "dynamic"  # how grey data becomes binary for the bernoulli likelihood
    # model: p(z), q(z|x), p(x|z)
    likelihood: str = "bernoulli"
    latent_dim: int = 2
    prior: str = "standard_normal"
    prior_components: int = 10
    posterior: str = "diagonal"
    network: str = "mlp"
    hidden: tuple = (256, 128)  # encoder widths; the decoder mirrors them
    sigma: float = 0.1  # gaussian likelihood: fixed sigma, or the initial value when learned
    sigma_mode: str = "fixed"
    # objective
    beta: float = 1.0
    warmup_epochs: float = 0.0  # KL weight rises linearly from 0 to beta over this many epochs
    free_bits: float = 0.0  # nats per latent dimension (KL floor)
    iwae_k: int = 1  # > 1 trains the importance-weighted bound with k samples
    kl: str = "analytic"  # analytic where TFP has a closed form, else Monte Carlo; "mc" forces Monte Carlo
    # optimisation
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 0
    eval_every: int = 1  # epochs between test-set ELBO evaluations
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    version: int = CONFIG_VERSION

    def __post_init__(self):
        object.__setattr__(self, "hidden", _as_widths(self.hidden))
        _one_of("likelihood", self.likelihood, LIKELIHOOD_NAMES)
        _one_of("prior", self.prior, PRIOR_NAMES)
        _one_of("posterior", self.posterior, POSTERIOR_NAMES)
        _one_of("network", self.network, NETWORK_NAMES)
        _one_of("sigma_mode", self.sigma_mode, SIGMA_MODES)
        _one_of("kl", self.kl, KL_METHODS)
        _one_of("binarization", self.binarization, BINARIZATIONS)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ValueError(f"dataset must be a dataset name or a path, got {self.dataset!r}")
        _int_in("latent_dim", self.latent_dim, 1, 512)
        _int_in("prior_components", self.prior_components, 1, 1000)
        _int_in("iwae_k", self.iwae_k, 1, 5000)
        _int_in("epochs", self.epochs, 0, 100_000)
        _int_in("batch_size", self.batch_size, 1, 65_536)
        _int_in("seed", self.seed, 0, 2**31 - 1)
        _int_in("eval_every", self.eval_every, 1, 100_000)
        _int_in("checkpoint_every", self.checkpoint_every, 1, 10**9)
        _number_in("sigma", self.sigma, 1e-4, 1e4)
        _number_in("beta", self.beta, 0.0, 1e4)
        _number_in("warmup_epochs", self.warmup_epochs, 0.0, 1e5)
        _number_in("free_bits", self.free_bits, 0.0, 100.0)
        _number_in("lr", self.lr, 1e-7, 10.0)
        if self.version != CONFIG_VERSION:
            raise ValueError(f"config version {self.version!r} is not supported; this vae-tfp reads {CONFIG_VERSION}")
        if self.iwae_k > 1 and self.free_bits > 0:
            raise ValueError("free_bits applies to the ELBO's KL term; it cannot be combined with iwae_k > 1")

    def replace(self, **changes) -> "RunConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {', '.join(sorted(known))}")
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
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be of type {type(default).__name__}, got {value!r}") from None


def _as_widths(value) -> tuple:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        widths = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"hidden must be a list of layer widths such as [256, 128], got {value!r}") from None
    if any(w < 1 or w > 16384 for w in widths) or len(widths) > 8:
        raise ValueError(f"hidden must hold at most 8 widths between 1 and 16384, got {list(widths)}")
    return widths


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def _int_in(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _number_in(name, value, lo, hi):
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
