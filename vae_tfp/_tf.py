"""One place that imports TensorFlow, TFP and Keras 3 with the log noise turned down."""

import os

# C++ INFO/WARNING/ERROR logs (CUDA probing on a CPU machine) off; set TF_CPP_MIN_LOG_LEVEL=0 to see them
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions
tfb = tfp.bijectors

__all__ = ["keras", "tf", "tfp", "tfd", "tfb"]
