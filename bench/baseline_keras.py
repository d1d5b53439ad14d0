"""The textbook Keras 3 VAE, as a speed baseline.

Written the way the Keras documentation example writes a VAE (keras.io/examples/generative/vae): a `Sampling`
layer, encoder and decoder as functional models, a `VAE(keras.Model)` subclass with a custom `train_step` using
`tf.GradientTape`, trained with `model.fit` under the Keras defaults (Adam, a `tf.function` train step; on a
CPU-only machine `jit_compile="auto"` resolves to no XLA). Only the architecture is changed to the reference MLP VAE:

    encoder  D -> 512 -> 256 -> (z_mean 16, z_log_var 16), relu
    decoder 16 -> 256 -> 512 -> D, sigmoid output (Bernoulli means)

Loss per image (the textbook's, summed over pixels, averaged over the batch):
    reconstruction = sum_d BCE(x_d, p_d) = -sum_d [x_d log p_d + (1 - x_d) log(1 - p_d)]
    KL(q(z|x) || N(0, I)) = -1/2 sum_j (1 + log s_j^2 - m_j^2 - s_j^2)
    loss = reconstruction + KL   (= -ELBO with one reparameterised sample z = m + s * eps, eps ~ N(0, I))
"""

import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

HIDDEN = (512, 256)
LATENT_DIM = 16


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z: z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, I)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def build_encoder(input_dim, latent_dim=LATENT_DIM, hidden=HIDDEN):
    """Functional encoder x [D] -> (z_mean, z_log_var, z), each [latent_dim]."""
    encoder_inputs = keras.Input(shape=(input_dim,))
    x = encoder_inputs
    for units in hidden:
        x = layers.Dense(units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(output_dim, latent_dim=LATENT_DIM, hidden=HIDDEN):
    """Functional mirror decoder z [latent_dim] -> Bernoulli means p [D] (sigmoid)."""
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = latent_inputs
    for units in reversed(hidden):
        x = layers.Dense(units, activation="relu")(x)
    decoder_outputs = layers.Dense(output_dim, activation="sigmoid")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


class VAE(keras.Model):
    """The keras.io VAE: custom train_step with tf.GradientTape; loss = summed BCE + KL."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            # ops.binary_crossentropy is elementwise; sum over the D pixels, mean over the batch
            # (the keras.io example gets the same sum via keras.losses.binary_crossentropy on [28, 28, 1] images)
            reconstruction_loss = ops.mean(ops.sum(ops.binary_crossentropy(data, reconstruction), axis=1))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build_vae(input_dim, latent_dim=LATENT_DIM, hidden=HIDDEN):
    """The compiled textbook VAE (Adam with Keras defaults, `model.compile` defaults otherwise)."""
    vae = VAE(build_encoder(input_dim, latent_dim, hidden), build_decoder(input_dim, latent_dim, hidden))
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


class _EpochTimer(keras.callbacks.Callback):
    """Wall time and optimizer steps of each epoch (reading `iterations` forces completion of the epoch's steps)."""

    def __init__(self):
        super().__init__()
        self.seconds, self.steps = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._it0 = int(self.model.optimizer.iterations.numpy())
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        it1 = int(self.model.optimizer.iterations.numpy())
        self.seconds.append(time.perf_counter() - self._t0)
        self.steps.append(it1 - self._it0)


def baseline_images_per_second(
    x_train, batch_size=128, steps=200, repeats=3, warmup_epochs=1, latent_dim=LATENT_DIM, hidden=HIDDEN, verbose=0
):
    """Training throughput of the textbook Keras VAE under `model.fit`.

    x_train: [n, D] float32 in {0, 1} (D is taken from the data; images may be passed unflattened, they are
    reshaped to [n, D]). Each epoch is exactly `steps` full batches: the rows used are x_train[i mod n] for
    i < steps * batch_size (so no partial batch, and small data sets are tiled). One `model.fit` call runs
    `warmup_epochs + repeats` epochs (shuffle=True, the fit default); the warm-up epochs (which include tracing the
    tf.function) are dropped, each remaining epoch gives images/s = steps * batch_size / epoch seconds.
    verbose=0 only silences the progress bar.

    Returns {"images_per_second": median over repeats, "images_per_second_all": [...], "seconds": [...],
    "steps_per_epoch", "batch_size", "input_dim", "repeats", "warmup_seconds", "jit_compile", "final_loss"}.
    """
    x = np.asarray(x_train, dtype=np.float32)
    x = x.reshape(x.shape[0], -1)
    n, input_dim = x.shape
    rows = steps * batch_size
    x = x[np.arange(rows) % n] if rows != n else x

    vae = build_vae(input_dim, latent_dim, hidden)
    timer = _EpochTimer()
    history = vae.fit(x, epochs=warmup_epochs + repeats, batch_size=batch_size, callbacks=[timer], verbose=verbose)

    timed_s = timer.seconds[warmup_epochs:]
    timed_steps = timer.steps[warmup_epochs:]
    assert all(s == steps for s in timed_steps), f"expected {steps} steps per epoch, got {timed_steps}"
    ips = [steps * batch_size / s for s in timed_s]
    return {
        "images_per_second": statistics.median(ips),
        "images_per_second_all": ips,
        "seconds": timed_s,
        "steps_per_epoch": steps,
        "batch_size": batch_size,
        "input_dim": input_dim,
        "repeats": repeats,
        "warmup_seconds": timer.seconds[:warmup_epochs],
        "jit_compile": bool(vae.jit_compile),
        "final_loss": float(history.history["loss"][-1]),
    }
