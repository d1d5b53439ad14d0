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


@dataclass
class Diagnostics:
    """The history's diagnostics records as arrays, one row per record: step, epoch, kl_per_dim [records, latent]
    (nats), active_units, mutual_information (nats, on the first `n` test examples)."""

    step: np.ndarray
    epoch: np.ndarray
    kl_per_dim: np.ndarray
    active_units: np.ndarray
    mutual_information: np.ndarray
    n: int

    def __len__(self) -> int:
        return len(self.step)

    def last(self) -> dict | None:
        """The latest record's values (for a summary), or None without one."""
        if not len(self):
            return None
        return {"step": int(self.step[-1]), "epoch": int(self.epoch[-1]),
                "kl_per_dim": [float(v) for v in self.kl_per_dim[-1]], "active_units": int(self.active_units[-1]),
                "mutual_information": float(self.mutual_information[-1])}


def diagnostics(records) -> Diagnostics:
    """The diagnostics records of a run's history (written by `vae_tfp.training.diagnostics`)."""
    rows = [r for r in records if r.get("kind") == "diagnostics"]
    width = max((len(r["kl_per_dim"]) for r in rows), default=0)
    return Diagnostics(step=np.array([r["step"] for r in rows], int), epoch=np.array([r["epoch"] for r in rows], int),
                       kl_per_dim=np.array([r["kl_per_dim"] for r in rows], float).reshape(len(rows), width),
                       active_units=np.array([r["active_units"] for r in rows], int),
                       mutual_information=np.array([r["mutual_information"] for r in rows], float),
                       n=int(rows[-1].get("n", 0)) if rows else 0)
