"""The compiled training step on one replica: the fast path, several steps per call.

    block(indices int32 [k, batch], seeds int64 [k, 2], betas float32 [k]) -> float32 [k', metrics]  (names: `keys`)

One compiled call runs k steps in a `tf.while_loop`, one after the other (each reads the weights the one before it
wrote). A step gathers its batch's rows from the training set held as one tensor and binarizes them (dynamic
binarization, from the batch's stateless seed; no input pipeline), draws z from the trainer's seed stream, computes
the loss and its gradients, checks that both are finite and applies Adam only then (`tf.cond`: a non-finite step
leaves weights and optimizer state untouched), and writes its metrics as one row. The loop ends after k steps or
after the first non-finite step, whose row (metric "finite" = 0) is the last: k' <= k rows, one host sync per call.

Which steps run together is the training loop's choice (`Trainer.train`): a step computes the same numbers in
whichever block it runs, so a run trained k steps at a time ends with the weights of one trained step by step.
One graph per batch size (the last batch of an epoch may be smaller), traced on its first use with k left open.
"""

import numpy as np

from vae_tfp._tf import tf
from vae_tfp.training.kernels import all_finite, apply_gradients, fused_adam, stack_metrics
from vae_tfp.training.seeds import z_seed


class SingleStep:
    """Blocks of training steps on one replica (see the module docstring); `block(indices, seeds, betas)` runs one.
    `keys`: the metric names of a row (known once a graph is traced); `fresh(batch)`: whether the next block of
    that batch size is the first one (it traces and compiles, so its time is no measure of speed)."""

    def __init__(self, strategy, model, optimizer, loss_fn, feed):
        self.strategy, self.model, self.loss_fn, self.feed = strategy, model, loss_fn, feed
        fused = fused_adam(optimizer)
        self._apply = fused or (lambda grads, variables: apply_gradients(optimizer, grads, variables))
        self.keys = []
        self._graphs = {}  # batch size -> concrete function
        self._calls = {}  # batch size -> blocks run

    def _replica_step(self, idx, seed, beta):
        """One step: its metrics row, float32 [m]."""
        x = self.feed.batch(idx, seed)  # [batch, *event]
        with tf.GradientTape() as tape:
            loss, metrics = self.loss_fn(x, beta, z_seed(seed))
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        ok = all_finite(loss, grads)
        tf.cond(ok, lambda: self._apply(grads, variables), lambda: tf.constant(False))
        return stack_metrics(dict(metrics, loss=loss, finite=tf.cast(ok, tf.float32)), self.keys)

    def _block(self, idx, seeds, betas):
        k = tf.shape(idx)[0]
        rows = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

        def body(i, ok, rows):
            row = self.strategy.run(self._replica_step, args=(idx[i], seeds[i], betas[i]))  # the default strategy:
            row = self.strategy.reduce("MEAN", row, axis=None)  # a plain call
            return i + 1, row[self.keys.index("finite")] > 0, rows.write(i, row)

        _, _, rows = tf.while_loop(lambda i, ok, rows: tf.logical_and(i < k, ok), body,
                                   (tf.constant(0), tf.constant(True), rows), parallel_iterations=1)
        return rows.stack()  # [k', m]

    def _graph(self, batch: int):
        if batch not in self._graphs:
            signature = (tf.TensorSpec([None, batch], tf.int32), tf.TensorSpec([None, 2], tf.int64),
                         tf.TensorSpec([None], tf.float32))
            self._graphs[batch] = tf.function(self._block).get_concrete_function(*signature)
        return self._graphs[batch]

    def fresh(self, batch: int) -> bool:
        return self._calls.get(batch, 0) == 0

    def block(self, idx, seeds, betas) -> np.ndarray:
        """Run len(idx) steps, fewer when one is not finite: indices [k, batch], seeds [k, 2], betas [k] -> float32
        [k', m] metric rows (numpy; one host sync)."""
        idx = np.asarray(idx, np.int32)
        batch = idx.shape[1]
        out = self._graph(batch)(tf.constant(idx), tf.constant(np.asarray(seeds, np.int64)),
                                 tf.constant(np.asarray(betas, np.float32)))
        self._calls[batch] = self._calls.get(batch, 0) + 1
        return out.numpy()

    def __call__(self, idx, seed, beta):
        """One step (a block of one) -> float32 [m], the metrics row (as a tensor, like a compiled step's result)."""
        return tf.constant(self.block(np.asarray(idx)[None], np.asarray(seed)[None], np.asarray([beta], np.float32))[0])


def build_single_step(strategy, model, optimizer, loss_fn, feed):
    """(step, keys): `step` a `SingleStep` (call it for one step, `step.block(...)` for several), `keys` its metric
    names (filled when it is first traced). `loss_fn(x, beta, seed) -> (loss, metrics)`; `feed` gathers and binarizes
    batches."""
    step = SingleStep(strategy, model, optimizer, loss_fn, feed)
    return step, step.keys
