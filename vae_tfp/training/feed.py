"""Data feeding: which training images each step sees.

An epoch visits every training image once, in an order fixed by (seed, epoch) (so a resumed run sees the batches an
uninterrupted one would): batch i is rows order[i B : (i + 1) B] (B the batch size; the last batch of an epoch may be
smaller). With dynamic binarization a batch is drawn as x ~ Bernoulli(intensity) from the batch's stateless seed,
fresh every epoch and batch. One replica: the compiled step gathers and binarizes its batch itself from (indices,
seed), so there is no input pipeline (see `single_step`); several replicas read a distributed tf.data pipeline built
on the same order and seeds (see `replicated_step`).
"""

import math

import numpy as np

from vae_tfp._tf import tf
from vae_tfp.training.seeds import batch_seed, epoch_order


class Feed:
    """The training set of a `Prepared` data set, fed in batches of `batch_size` with seeds from `seed`."""

    def __init__(self, data, *, batch_size: int, seed: int):
        self.x_train = data.x_train  # numpy [n, *event]
        self.n = len(self.x_train)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.dynamic_binarization = bool(data.dynamic_binarization)
        self.steps_per_epoch = math.ceil(self.n / self.batch_size)
        self._x = None
        self._order = None

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's order of the training images, int32 [n] (the latest epoch's is kept)."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.seed, self.n, epoch))
        return self._order[1]

    def batch_seed(self, epoch: int, i: int) -> np.ndarray:
        """The stateless seed of batch i of the epoch, int64 [2]."""
        return batch_seed(self.seed, epoch, i)

    def images_in_batch(self, i: int) -> int:
        """How many images batch i of an epoch holds (the last one may be smaller)."""
        return min(self.batch_size, self.n - i * self.batch_size)

    def block(self, epoch: int, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices int32 [k, batch], seeds int64 [k, 2]) of batches i .. i + k - 1 of the epoch, which must hold the
        same number of images (the epoch's last batch may be smaller: it goes in a block of its own)."""
        sizes = {self.images_in_batch(j) for j in range(i, i + k)}
        if k < 1 or i + k > self.steps_per_epoch or len(sizes) != 1:
            raise ValueError(f"batches {i}..{i + k - 1} of an epoch of {self.steps_per_epoch} do not form a block "
                             f"of equal batches (sizes {sorted(sizes)})")
        b = sizes.pop()
        rows = self.order(epoch)[i * self.batch_size:i * self.batch_size + k * b]
        return rows.reshape(k, b), np.stack([self.batch_seed(epoch, j) for j in range(i, i + k)])

    def steps(self, epoch: int, skip: int = 0):
        """(indices int32 [batch], seed int64 [2]) for each of the epoch's steps after the first `skip`."""
        order = self.order(epoch)
        for i in range(skip, self.steps_per_epoch):
            yield order[i * self.batch_size:(i + 1) * self.batch_size], self.batch_seed(epoch, i)

    def batch(self, idx, seed):
        """Rows `idx` of the training set [batch, *event]; with dynamic binarization x ~ Bernoulli(intensity), drawn
        from the stateless `seed`. Runs eagerly or inside a compiled step."""
        x = tf.gather(self.x_tensor(), idx)
        if self.dynamic_binarization:
            x = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=seed) < x, tf.float32)
        return x

    def x_tensor(self):
        """The training set as one eager tensor (made once, also when first asked for while a step is traced)."""
        if self._x is None:
            with tf.init_scope():
                self._x = tf.constant(self.x_train)
        return self._x
