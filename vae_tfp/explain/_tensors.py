"""Two small conversions the view modules share: a stateless sampling seed and tensors to numpy."""

import numpy as np

from vae_tfp._tf import tf


def stateless_seed(seed: int):
    """A stateless seed [2] for `sample(seed=...)`: the same integer gives the same samples."""
    return tf.constant([int(seed), 7], tf.int32)


def to_numpy(t) -> np.ndarray:
    """A tensor (or an array) as a numpy array."""
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)
