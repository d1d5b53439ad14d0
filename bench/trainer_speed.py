"""Steady-state training throughput of the project's `Trainer` (the real loop: compiled step with in-step batch
gather and binarization, NaN guard, one TrainEvent per step).

    images/s = images in the window / seconds between the window's first and last step events

The window starts after `warmup` steps (tracing, thread-pool start-up and the epoch's first batches are excluded) and
lasts `steps` steps: one `train(max_steps=warmup + steps)` call (the test-set ELBO that `train()` computes on its way
out is outside the window). Calling `window()` again continues training the same model, so repeats of several
trainers can be interleaved within one process (the ratios of interleaved medians are what to quote on a shared
machine).
"""

import time

from vae_tfp.config import RunConfig
from vae_tfp.training import Trainer

REFERENCE = dict(dataset="fashion_mnist", likelihood="bernoulli", latent_dim=16, hidden=(512, 256),
                 binarization="dynamic", epochs=1000)


class TrainerProbe:
    """One Trainer on the reference MLP VAE (784-512-256-z16, mirror decoder, Bernoulli) at one batch size."""

    def __init__(self, batch_size: int, *, dataset=None, precision: str = "float32", **overrides):
        config = RunConfig(**(REFERENCE | {"batch_size": batch_size} | overrides))
        self.trainer = Trainer(config, dataset=dataset, precision=precision)
        self.batch_size = batch_size
        self.precision = precision
        self._times: list[float] = []
        self.trainer.callbacks.append(self._on_event)

    def _on_event(self, event) -> None:
        if event.kind == "step":
            self._times.append(time.perf_counter())

    def window(self, steps: int, warmup: int = 10) -> dict:
        """Train warmup + steps more steps; images/s over the last `steps` of them."""
        self._times = []
        result = self.trainer.train(max_steps=warmup + steps)
        times = self._times[warmup:]
        seconds = times[-1] - times[0]
        images = (len(times) - 1) * self.batch_size
        return {"images_per_second": images / seconds, "seconds": seconds, "steps": len(times) - 1,
                "train_elbo": result.train_metrics.get("elbo"), "test_elbo": result.test_metrics.get("elbo")}
