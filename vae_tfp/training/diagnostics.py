"""`DiagnosticsRecorder`: per-epoch diagnostics of posterior collapse, written into the run's history by `RunRecorder`.

    {"kind": "diagnostics", "step", "epoch", "kl_per_dim": [...], "active_units", "mutual_information", "n", "time"}

computed by `vae_tfp.evaluation.diagnostics` on a fixed subset of the test set (the first `subset` test examples,
the same every time, so values are comparable across epochs and runs of the same data): KL(q(z_j|x) || p(z_j)) per
latent dimension, the active units (Cov_x(E_q[z_u]) > 0.01) and the mutual information I_q(x; z) (He et al. 2019).

Cost: one compiled call per record (`evaluation.diagnostics`: one pass of the encoder over the subset and N x N
log densities as matrix products; N = 500, latent 2: about 2 ms on a 2-core machine, plus about a second to trace it
once per model). A run records them at most `RECORDS_PER_RUN` times, at evenly spaced epochs (every
ceil(epochs / RECORDS_PER_RUN) epochs, and the last one), so a short epoch (digits: 12 steps, ~30 ms) does not spend
more on diagnostics than on training (digits' default 300 epochs: a record every 3 epochs, ~1 s of ~10 s); a
train() call that ends between two of them (stopped, max_steps) records one more.
"""

import math
import time

SUBSET = 500
RECORDS_PER_RUN = 100


class DiagnosticsRecorder:
    def __init__(self, subset: int = SUBSET, records_per_run: int = RECORDS_PER_RUN):
        if int(subset) < 2 or int(records_per_run) < 1:
            raise ValueError("subset must be at least 2 and records_per_run at least 1")
        self.subset = int(subset)
        self.records_per_run = int(records_per_run)
        self.last_step = None

    def every(self, epochs: int) -> int:
        """Epochs between two records (see the module docstring)."""
        return max(1, math.ceil(int(epochs) / self.records_per_run))

    def due(self, trainer, epoch: int) -> bool:
        return epoch % self.every(trainer.config.epochs) == 0 or epoch == trainer.config.epochs

    def record(self, trainer, step: int, epoch: int) -> dict:
        """The diagnostics record of the trainer's model now."""
        from vae_tfp.evaluation import diagnostics

        x = trainer.data.x_test[:self.subset]
        self.last_step = step
        return {"kind": "diagnostics", "step": int(step), "epoch": int(epoch), "time": time.time(),
                **diagnostics(trainer.model, x, seed=trainer.config.seed)}
