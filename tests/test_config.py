"""RunConfig: every field carries its metadata (range, UI range, help, flag, group, choices from the registries);
validation comes from it; stored configs are versioned and older versions migrate in."""

import json

import pytest

from vae_tfp import config as C
from vae_tfp import families
from vae_tfp.config import RunConfig
from vae_tfp.datasets.representations import BINARIZATIONS

# config.json exactly as main wrote it (version 1), with every field.
V1_JSON = """{
  "batch_size": 64, "beta": 0.5, "binarization": "static", "checkpoint_every": 250, "dataset": "fashion_mnist",
  "epochs": 7, "eval_every": 2, "free_bits": 0.25, "hidden": [512, 256], "iwae_k": 1, "kl": "mc",
  "latent_dim": 16, "likelihood": "bernoulli", "lr": 0.0003, "lr_schedule": "cosine", "network": "conv",
  "posterior": "full", "prior": "mixture", "prior_components": 5, "seed": 3, "sigma": 0.1, "sigma_mode": "fixed",
  "version": 1, "warmup_epochs": 5.0
}"""


def test_every_field_has_its_metadata():
    for name, setting in C.SETTINGS.items():
        assert setting.group in C.GROUPS and setting.help.strip() and setting.label.strip(), name
        kind = C.kind(name)
        if kind in ("int", "float"):
            lo, hi = setting.range
            ui_lo, ui_hi = setting.ui
            assert lo <= ui_lo < ui_hi <= hi and lo <= C.DEFAULTS[name] <= hi, name
            assert setting.step is not None, name
        if kind == "choice":
            assert C.DEFAULTS[name] in setting.choices, name
    assert set(C.SETTINGS) == set(RunConfig().to_dict()) - {"version"}


def test_choices_come_from_the_registries():
    assert tuple(C.SETTINGS["likelihood"].choices) == tuple(families.LIKELIHOODS)
    assert tuple(C.SETTINGS["prior"].choices) == tuple(families.PRIORS)
    assert tuple(C.SETTINGS["posterior"].choices) == tuple(families.POSTERIORS)
    assert tuple(C.SETTINGS["network"].choices) == tuple(families.NETWORKS)
    assert tuple(C.SETTINGS["sigma_mode"].choices) == tuple(families.SIGMA_MODES)
    assert C.SETTINGS["binarization"].choices is BINARIZATIONS


@pytest.mark.parametrize("name", [n for n in C.SETTINGS if C.kind(n) in ("int", "float")])
def test_validation_uses_the_field_range(name):
    lo, hi = C.SETTINGS[name].range
    number = int if C.kind(name) == "int" else float
    RunConfig(**{name: number(lo)})
    RunConfig(**{name: number(hi)})
    outside = hi + 1 if number is int else hi * 1.5 + 1
    with pytest.raises(ValueError, match=rf"{name} must be an? (integer|number) in \[{lo}, {hi}\]"):
        RunConfig(**{name: number(outside)})


def test_when_a_field_applies_is_read_from_the_registries():
    s = C.SETTINGS
    assert s["sigma"].applies_to({"likelihood": "gaussian"}) and not s["sigma"].applies_to({"likelihood": "bernoulli"})
    assert s["binarization"].applies_to({"likelihood": "bernoulli"})
    assert not s["binarization"].applies_to({"likelihood": "continuous_bernoulli"})
    assert s["prior_components"].applies_to({"prior": "mixture"})
    assert not s["prior_components"].applies_to({"prior": "standard_normal"})
    assert s["latent_dim"].applies_to({})


def test_a_version_1_config_from_main_still_loads():
    config = RunConfig.from_json(V1_JSON)
    assert config == RunConfig(dataset="fashion_mnist", batch_size=64, beta=0.5, binarization="static",
                               checkpoint_every=250, epochs=7, eval_every=2, free_bits=0.25, hidden=(512, 256),
                               kl="mc", latent_dim=16, lr=3e-4, lr_schedule="cosine", network="conv",
                               posterior="full", prior="mixture", prior_components=5, seed=3, warmup_epochs=5.0)
    assert json.loads(config.to_json()) == json.loads(V1_JSON)  # and is written back in the same shape


def test_newer_or_garbage_versions_are_refused():
    for version in (2, 0, "1", None):
        with pytest.raises(ValueError, match="config version .* is not supported"):
            RunConfig.from_dict({"version": version})


def test_older_versions_migrate_in(monkeypatch):
    """The migration chain: a version-1 dict goes through MIGRATIONS[1] when the current version is 2."""
    monkeypatch.setattr(C, "CONFIG_VERSION", 2)
    monkeypatch.setitem(C.MIGRATIONS, 1, lambda d: {("latent_dim" if k == "z" else k): v for k, v in d.items()})
    assert RunConfig.from_dict({"version": 1, "z": 7}).latent_dim == 7
    assert RunConfig.from_dict({"version": 2, "latent_dim": 5}).latent_dim == 5
    assert RunConfig().to_dict()["version"] == 2


def test_unknown_keys_name_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown config keys \['colour'\]; allowed: .*version"):
        RunConfig.from_dict({"colour": "red"})


def test_flags_default_to_the_field_name_and_keep_the_old_ones():
    assert C.flag("latent_dim") == "--latent-dim" and C.flag("warmup_epochs") == "--warmup"
