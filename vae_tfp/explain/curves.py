"""The Training view's curves: a run's history records as arrays per split. No TensorFlow.

Each record holds `elbo`, `reconstruction` (= E_q[log p(x|z)]) and `kl` (= KL(q(z|x) || p(z))) in nats per example,
elbo = reconstruction - kl; records written under older names are migrated when `vae_tfp.runs` reads them."""

from dataclasses import dataclass

import numpy as np

TERMS = ("elbo", "reconstruction", "kl")


@dataclass
class Curves:
    """One line per term, split by split: {"train": {...}, "test": {...}}, each with step, epoch (completed),
    epochs (= step / steps per epoch, fractional), elbo, reconstruction and kl, in nats per example."""

    train: dict
    test: dict


def history_curves(records) -> Curves:
    """Training history records (`Run.history()`) as arrays per split."""
    out = {}
    for split in ("train", "test"):
        rows = [r for r in records if r.get("kind") == split and r.get("elbo") is not None]
        out[split] = {"step": np.array([r["step"] for r in rows], int),
                      "epoch": np.array([r.get("epoch", 0) for r in rows], int),
                      **{term: np.array([r[term] for r in rows], float) for term in TERMS}}
    per_epoch = _steps_per_epoch(records)
    for c in out.values():
        c["epochs"] = c["step"] / per_epoch if per_epoch else c["epoch"].astype(float)
    return Curves(out["train"], out["test"])


def _steps_per_epoch(records) -> float | None:
    """Test evaluations happen at epoch ends (step = epoch x steps per epoch); None without one."""
    ends = [r["step"] / r["epoch"] for r in records if r.get("kind") == "test" and r.get("epoch")]
    return float(np.median(ends)) if ends else None
