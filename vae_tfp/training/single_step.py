"""The compiled training step on one replica: the fast path.

    step(indices int32 [batch], seed int64 [2], beta float32 []) -> float32 [metrics]   (names in `keys`)

One `tf.function` does all of a step: gathers the batch's rows from the training set held as one tensor and
binarizes them (dynamic binarization, from the batch's stateless seed; no input pipeline), draws z from the
trainer's seed stream, computes the loss and its gradients, checks that both are finite and applies Adam only then
(`tf.cond`: a non-finite step leaves weights and optimizer state untouched), and returns every metric in one
stacked vector (one host sync per step).
"""

from vae_tfp._tf import tf
from vae_tfp.training.kernels import all_finite, apply_gradients, fused_adam, stack_metrics
from vae_tfp.training.seeds import z_seed


def build_single_step(strategy, model, optimizer, loss_fn, feed):
    """(step, keys). `loss_fn(x, beta, seed) -> (loss, metrics)`; `feed` gathers and binarizes batches."""
    fused = fused_adam(optimizer)
    apply = fused or (lambda grads, variables: apply_gradients(optimizer, grads, variables))
    keys = []

    def replica_step(idx, seed, beta):
        x = feed.batch(idx, seed)  # [batch, *event]
        with tf.GradientTape() as tape:
            loss, metrics = loss_fn(x, beta, z_seed(seed))
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        ok = all_finite(loss, grads)
        tf.cond(ok, lambda: apply(grads, variables), lambda: tf.constant(False))
        return dict(metrics, loss=loss, finite=tf.cast(ok, tf.float32))

    @tf.function
    def step(idx, seed, beta):
        out = strategy.run(replica_step, args=(idx, seed, beta))  # the default strategy: a plain call
        out = {k: strategy.reduce("MEAN", v, axis=None) for k, v in out.items()}
        return stack_metrics(out, keys)

    return step, keys
