"""What a trainer tells its callbacks (`TrainEvent`) and what `Trainer.train()` returns (`TrainResult`).

Events, in order: "start" (train() begins), "step" (after every applied step), "epoch" (an epoch completed), "eval"
(a test-set evaluation: at the configured epoch ends, and once when a call ends without one since its last step),
"end" (train() returns; `status` and `message` say how). A callback is any callable taking one event; it runs in
the training thread, so it should be quick. `event.trainer` is the trainer itself (the run recorder takes the model
and the optimizer from it).

Metrics use the ELBO's one vocabulary (nats per example): `elbo`, `reconstruction` (= E_q[log p(x|z)]), `kl`
(= KL(q(z|x) || p(z))), plus `loss`, `beta` and `iwae` (when iwae_k > 1) for training steps.
"""

from dataclasses import dataclass, field

STATUSES = ("completed", "stopped", "diverged")


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch", "eval", "end"
    step: int  # steps applied so far (in the whole run)
    epoch: int  # epochs completed
    total_steps: int
    images_per_second: float = 0.0
    eta_seconds: float = float("nan")
    metrics: dict = field(default_factory=dict)  # the last step's: elbo, reconstruction, kl, loss, beta (and iwae)
    test_metrics: dict | None = None  # on "eval" and "end": test-set elbo, reconstruction, kl
    status: str = "running"  # on "end": one of STATUSES
    message: str = ""  # on "end" of a diverged run: the step and likely causes
    trainer: object = field(default=None, repr=False, compare=False)


@dataclass
class TrainResult:
    """How one `train()` call ended.

    status: "completed" (every configured epoch trained), "stopped" (by `stop()`, or after `max_steps`; another
    `train()` continues) or "diverged" (a step's loss or gradients were NaN/Inf: it was not applied, the model holds
    the last good weights and `message` names the step and likely causes)."""

    status: str
    steps: int  # steps applied in the whole run so far
    epochs: int  # epochs completed
    images_per_second: float
    train_metrics: dict
    test_metrics: dict
    message: str = ""
