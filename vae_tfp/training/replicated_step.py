"""The compiled training step on several replicas (a `tf.distribute` strategy such as MirroredStrategy), and its
input pipeline.

    step(x [global batch, *event] distributed, seed int64 [2], beta float32 []) -> float32 [metrics]

Each replica computes the loss of its share of the batch, with z drawn from fold_in(seed, 1 + replica); gradients
are scaled by 1 / replicas and summed by the optimizer (so they are averaged). The NaN guard all-reduces a flag: when
any replica's loss or gradients are not finite, every replica applies zero gradients instead (`merge_call` cannot
run inside `tf.cond`), which leaves the weights to Adam's momentum for that one step, and training stops there.

The input: the epoch's order (the same as one replica's) batched in tf.data, each batch binarized from its own
stateless seed, distributed over the replicas, prefetched.
"""

from vae_tfp._tf import tf
from vae_tfp.training.kernels import all_finite, stack_metrics
from vae_tfp.training.seeds import z_seed


def build_replicated_step(strategy, model, optimizer, loss_fn):
    """(step, keys). `loss_fn(x, beta, seed) -> (loss, metrics)`."""
    replicas = strategy.num_replicas_in_sync
    keys = []

    def replica_step(x, seed, beta):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        with tf.GradientTape() as tape:
            loss, metrics = loss_fn(x, beta, z_seed(seed, replica))
            scaled = loss / replicas  # gradients are summed over replicas
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        finite = tf.cast(all_finite(loss, grads), tf.float32)
        bad = tf.distribute.get_replica_context().all_reduce("SUM", 1.0 - finite)
        ok = tf.cast(bad == 0, tf.float32)  # 1 when every replica's step is finite
        optimizer.apply_gradients(zip([tf.where(ok > 0, g, tf.zeros_like(g)) for g in grads], variables))
        return dict(metrics, loss=loss, finite=ok)

    @tf.function
    def step(x, seed, beta):
        per_replica = strategy.run(replica_step, args=(x, seed, beta))
        out = {k: strategy.reduce("MEAN", v, axis=None) for k, v in per_replica.items()}
        return stack_metrics(out, keys)

    return step, keys


def replicated_inputs(strategy, feed, epoch: int, skip: int = 0):
    """(x distributed, seed int64 [2]) for each of the epoch's steps after the first `skip`."""
    first = tf.constant(feed.batch_seed(epoch, 0))  # batch i's seed is first + [0, i]
    ds = tf.data.Dataset.from_tensor_slices(feed.order(epoch)).batch(feed.batch_size).enumerate()
    ds = ds.map(lambda i, idx: feed.batch(idx, first + tf.stack([tf.constant(0, tf.int64), i])))
    ds = ds.skip(skip).prefetch(tf.data.AUTOTUNE)
    for i, x in enumerate(strategy.experimental_distribute_dataset(ds), start=skip):
        yield x, feed.batch_seed(epoch, i)
