"""A trainer's own seed stream: every random number a `Trainer` draws comes from its config's seed and the position
in training, never from process-wide random state (nothing calls `keras.utils.set_random_seed`). Two trainers in one
process, or two dashboard sessions, do not disturb each other, and a resumed run draws what an uninterrupted one
would have drawn.

    initial weights      kernel of the i-th layer of the encoder (1) / decoder (2): Glorot-uniform seeded from
                         (seed, 1 | 2, i) (`vae_tfp.networks`); a mixture prior's means from `seed`
    epoch order          numpy Generator([seed, epoch]).permutation(n_train)
    binarization noise   batch i of an epoch: tf.random.stateless_uniform(seed=[7919 seed + epoch, i]); split over
                         S > 1 replicas, shard g's from fold_in(that batch seed, -1 - g): one stream per shard
    z in a train step    stateless, from fold_in(that batch seed, 1 + shard): one stream per replica
    z in a test eval     stateless, from (seed, step, chunk of the test set)
"""

import numpy as np

from vae_tfp._tf import tf


def epoch_order(seed: int, n: int, epoch: int) -> np.ndarray:
    """The order of the n training images in an epoch, int32 [n], fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def batch_seed(seed: int, epoch: int, i: int) -> np.ndarray:
    """The stateless seed of batch i of an epoch, int64 [2] (its binarization noise, and the root of its z seeds)."""
    return np.array([seed * 7919 + epoch, i], np.int64)


def z_seed(batch_seed, replica=0):
    """In a compiled step: the stateless seed (int32 [2]) for z ~ q(z|x) of this batch on this replica."""
    return tf.random.experimental.stateless_fold_in(batch_seed, 1 + replica)


def shard_seed(batch_seed, shard, shards: int):
    """In a compiled step or input pipeline: the stateless seed of shard `shard` of a batch split into `shards`
    (its binarization noise): the batch seed itself for one shard (what the single-replica step draws), else
    fold_in(batch_seed, -1 - shard), distinct from every shard's z seed (fold_in(batch_seed, 1 + shard))."""
    if shards == 1:
        return batch_seed
    return tf.random.experimental.stateless_fold_in(batch_seed, -1 - tf.cast(shard, tf.int64))


def eval_seed(seed: int, step: int, chunk: int) -> np.ndarray:
    """The stateless seed (int32 [2]) of the z samples for one chunk of the test set, evaluated after `step`."""
    return np.random.SeedSequence([seed, 1, step, chunk]).generate_state(2).view(np.int32)
