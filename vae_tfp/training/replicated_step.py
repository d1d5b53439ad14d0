"""The compiled training step on several replicas (any `tf.distribute` strategy: MirroredStrategy over one or more
local devices, MultiWorkerMirroredStrategy over several workers), its input pipeline and the test evaluation.

    step(batch distributed, stop float32 [], beta float32 []) -> float32 [metrics]   (names in `keys`)

The global batch: `--batch-size` B is the batch of the whole step, over every replica of every worker (the same
batches, in the same order, as one process trains on). Batch i of an epoch is rows order[i B : (i + 1) B] (N <= B
of them: the last batch of an epoch may be smaller); it is split into S shards, one per replica: shard g holds its
rows g, g + S, g + 2S, ... (so shards differ by at most one row, and some are empty when N < S). Each worker's
pipeline (`distribute_datasets_from_function`) builds only the shards of its own replicas: it gathers those rows
and binarizes them with the shard's own noise (`seeds.shard_seed`); z is drawn from fold_in(batch seed, 1 + g).

The loss is the mean over the global batch, whatever the shard sizes: each replica computes its shard's part
(`objectives.shard_loss`: the parts and their gradients add up to the global batch's loss and gradient; an empty
shard adds 0), and one all-reduce (SUM) carries every gradient together with the step's scalars (the loss, the
sums of the ELBO's terms, the number of images, the stop flag): one collective per step, one more with free bits
(the batch's mean KL per dimension). Every replica then holds the same reduced values and decides alike: when the
reduced loss or gradients are not finite, no replica applies the step (weights and Adam state untouched, the trainer
reports divergence); when any worker asked to stop (`stop` > 0 on any replica), every worker stops after this step.
The update runs outside the replicas (`strategy.run` returns the reduced gradients), so `tf.cond` may gate it.

The test evaluation splits the test set into the chunks one process uses (EVAL_BATCH rows, chunk k's z seed
`eval_seed(seed, step, k)`), deals chunk k to replica k mod S, and adds the sums in one collective: the same numbers
as one process, up to the order of the sums.
"""

import math

import numpy as np

from vae_tfp._tf import tf
from vae_tfp.training.kernels import all_finite, stack_metrics
from vae_tfp.training.seeds import eval_seed, shard_seed, z_seed


def build_replicated_step(strategy, model, optimizer, shard_loss):
    """(step, keys). `shard_loss(x, beta, seed, n_global, global_sum, weights) -> (loss, sums)` (see
    `objectives.shard_loss`; `sums` holds "reconstruction", "kl" and maybe "iwae" summed over the shard)."""
    keys = []
    variables = model.trainable_variables
    sum_keys = []

    def replica_step(batch, stop, beta):
        ctx = tf.distribute.get_replica_context()
        x, weights = batch["x"], batch["weights"]  # [shard, *event], [shard]
        with tf.GradientTape() as tape:
            loss, sums = shard_loss(x, beta, z_seed(batch["seed"], batch["shard"]), batch["n"],
                                    lambda t: ctx.all_reduce("SUM", t), weights)
        grads = tape.gradient(loss, variables)
        sum_keys[:] = list(sums)
        count = tf.reduce_sum(weights)
        scalars = tf.stack([loss, count, tf.cast(stop, tf.float32), *sums.values()])  # [3 + len(sums)]
        reduced = ctx.all_reduce("SUM", [*grads, scalars])  # the step's one collective
        grads, scalars = reduced[:-1], reduced[-1]
        return grads, scalars, all_finite(scalars[0], grads)

    @tf.function(reduce_retracing=True)
    def step(batch, stop, beta):
        grads, scalars, ok = strategy.run(replica_step, args=(batch, stop, beta))
        ok = strategy.experimental_local_results(ok)[0]  # the same on every replica
        scalars = strategy.experimental_local_results(scalars)[0]

        def apply():
            with strategy.scope():  # cross-replica context: each replica's copy, no second reduction
                update(strategy, optimizer, grads, variables)
            return tf.constant(True)

        tf.cond(ok, apply, lambda: tf.constant(False))
        loss, count, stop_all = scalars[0], scalars[1], scalars[2]
        means = {k: scalars[3 + j] / count for j, k in enumerate(sum_keys)}
        out = {"elbo": means["reconstruction"] - means["kl"], "reconstruction": means["reconstruction"],
               "kl": means["kl"], "loss": loss}
        if "iwae" in means:
            out["iwae"] = means["iwae"]
        return stack_metrics(dict(out, finite=tf.cast(ok, tf.float32), stop=stop_all), keys)

    return step, keys


def update(strategy, optimizer, grads, variables) -> None:
    """Keras' optimizer update (its public `update_step` per variable, then `iterations` + 1) on each replica's copy
    of each variable with that replica's (already reduced) gradient, from cross-replica context: what
    `apply_gradients` does after its own all-reduce, without that second reduction and without `merge_call`, so it
    may run inside `tf.cond`. For the trainer's optimizer: plain Adam (no clipping, weight decay or EMA)."""
    lr = optimizer.learning_rate  # a schedule is evaluated at `iterations`, as Keras does
    for grad, var in zip(grads, variables):
        strategy.extended.update(var.value, lambda v, g: optimizer.update_step(g, v, lr), args=(grad,), group=False)
    optimizer.iterations.assign_add(1)


class ReplicatedInputs:
    """The distributed input pipeline of a training: one iterator from a position (epoch, step) to the end of the
    last epoch, kept while training runs on (building one costs about a second: the iterator of every local device);
    `epoch(e, skip)` continues it when it stands at (e, skip), else builds a new one there.

    The batch of a replica: {"x" [shard, *event], "weights" float32 [shard] (1 for the rows of the batch; a shard with
    none holds one row of weight 0), "n" int32 [] (images in the global batch), "shard" int32 [] (g), "seed" int64
    [2] (the batch seed)}."""

    def __init__(self, strategy, feed, epochs: int):
        self.strategy, self.feed, self.epochs = strategy, feed, int(epochs)
        self._batches, self._at = None, None  # the live iterator and the (epoch, step) of its next batch

    def epoch(self, epoch: int, skip: int = 0, stop_requested=lambda: False):
        """(batch distributed, stop float32) for each of the epoch's steps after the first `skip`; `stop_requested()`
        is asked just before each step."""
        if self._at != (epoch, skip):
            self._batches = iter(self.strategy.distribute_datasets_from_function(self._dataset_fn(epoch, skip)))
        for i in range(skip, self.feed.steps_per_epoch):
            self._at = None  # taken, not yet consumed: a generator abandoned here leaves no position
            batch = next(self._batches)
            self._at = (epoch, i + 1) if i + 1 < self.feed.steps_per_epoch else (epoch + 1, 0)
            yield batch, np.float32(bool(stop_requested()))

    def _dataset_fn(self, epoch0: int, skip: int):
        feed, shards = self.feed, self.strategy.num_replicas_in_sync
        n, size, spe = feed.n, feed.batch_size, feed.steps_per_epoch

        def dataset_fn(ctx):
            local = ctx.num_replicas_in_sync // ctx.num_input_pipelines  # replicas on this worker
            mine = tf.range(ctx.input_pipeline_id * local, (ctx.input_pipeline_id + 1) * local, dtype=tf.int64)

            def epoch_batches(e):  # the epoch's steps from its first (or `skip`), for this worker's shards
                order = tf.numpy_function(lambda e: feed.order(int(e)), [e], tf.int32, stateful=False)  # [n]
                order = tf.ensure_shape(order, [n])
                first_seed = tf.ensure_shape(tf.numpy_function(lambda e: feed.batch_seed(int(e), 0), [e], tf.int64,
                                                               stateful=False), [2])  # batch i's seed: + [0, i]
                first = tf.where(e == epoch0, tf.constant(skip, tf.int64), 0)
                i, g = tf.meshgrid(tf.range(first, spe, dtype=tf.int64), mine, indexing="ij")
                pairs = tf.reshape(tf.stack([i, g], -1), [-1, 2])  # [steps x local replicas, 2]
                return tf.data.Dataset.from_tensor_slices(pairs).map(lambda p: element(order, first_seed, p[0], p[1]))

            def element(order, first_seed, i, g):  # shard g of batch i
                start = i * size
                stop = tf.minimum(start + size, n)
                pos = tf.range(start + g, tf.maximum(stop, start + g), shards)  # the shard's positions, maybe none
                pad = 1 - tf.minimum(tf.size(pos), 1)  # an empty shard gets one row (the batch's first), weight 0
                idx = tf.gather(order, tf.concat([pos, tf.fill([pad], start)], 0))  # [shard]
                weights = tf.concat([tf.ones(tf.shape(pos), tf.float32), tf.zeros([pad], tf.float32)], 0)
                seed = first_seed + tf.stack([tf.constant(0, tf.int64), i])
                return {"x": feed.batch(idx, shard_seed(seed, g, shards)), "weights": weights,
                        "n": tf.cast(stop - start, tf.int32), "shard": tf.cast(g, tf.int32), "seed": seed}

            ds = tf.data.Dataset.range(epoch0, max(self.epochs, epoch0 + 1)).flat_map(epoch_batches)
            # repeat(): an endless dataset, so that next() does not ask every worker whether it still has data (a
            # collective per step, run eagerly); every worker takes exactly the same number of steps from it
            return ds.repeat().prefetch(tf.data.AUTOTUNE)  # one element per local replica per step, in replica order

        return dataset_fn


class ReplicatedEval:
    """The test set's summed elbo, reconstruction and kl over every replica (see the module docstring).
    `eval_sums(x, seed) -> {"elbo", "reconstruction", "kl"}` sums over the rows of x."""

    def __init__(self, strategy, eval_sums, x_test: np.ndarray, chunk: int):
        self.strategy = strategy
        self.shards = strategy.num_replicas_in_sync
        self.chunks = math.ceil(len(x_test) / chunk)
        self.rounds = math.ceil(self.chunks / self.shards)
        self.n = len(x_test)

        def rows(ctx):  # this replica's chunks k = t S + g; past the test set, one row counted 0 times
            ids = self._chunk_ids(ctx.replica_id_in_sync_group)
            return ([tf.constant(x_test[k * chunk:(k + 1) * chunk] if k < self.chunks else x_test[:1]) for k in ids],
                    [tf.constant(float(k < self.chunks)) for k in ids])

        self._xs = strategy.experimental_distribute_values_from_function(rows)
        keys = []

        @tf.function
        def run(xs, seeds):
            def replica(xs, seeds):
                terms = [eval_sums(x, s) for x, s in zip(xs[0], seeds)]
                keys[:] = list(terms[0])
                total = tf.add_n([w * tf.stack([t[k] for k in keys]) for t, w in zip(terms, xs[1])])  # [3]
                return tf.distribute.get_replica_context().all_reduce("SUM", total)  # one collective

            return strategy.experimental_local_results(strategy.run(replica, args=(xs, seeds)))[0]

        self._run, self._keys = run, keys

    def _chunk_ids(self, g: int) -> list[int]:
        return [t * self.shards + g for t in range(self.rounds)]

    def __call__(self, seed: int, step: int) -> dict:
        """Means over the test images of elbo, reconstruction and kl after `step` (z from eval_seed(seed, step, k))."""
        seeds = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: [tf.constant(eval_seed(seed, step, k)) for k in self._chunk_ids(ctx.replica_id_in_sync_group)])
        total = self._run(self._xs, seeds).numpy()
        return {k: float(v) / self.n for k, v in zip(self._keys, total)}
