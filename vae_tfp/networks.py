"""Keras 3 encoders and decoders: the builders of the families in `vae_tfp.families.networks` (which also knows,
without TensorFlow, the size of every layer built here). They output *parameters*, never distributions (no
tfp.layers).

All are sized from the data's event shape:
    encoder: x [batch, *event_shape]      -> raw posterior parameters [batch, n_params]
    decoder: z [batch, latent_dim]        -> raw likelihood parameters [batch, *event_shape, params_per_dim]

    mlp:    flatten -> Dense(h) ... -> Dense(out)
    conv:   images only; two stride-2 3x3 convolutions (mirror: two transposed convolutions, cropped to H x W)
    linear: one Dense layer each way, so the decoder is x_params = W z + b (the linear-Gaussian model)

Given a seed, each kernel starts Glorot-uniform (Keras' default) drawn from its own seed, derived from (seed, layer
index), and biases at zero: a model's initial weights depend on its config's seed only, never on process-wide state.
"""

import math

import numpy as np

from vae_tfp._tf import keras
from vae_tfp.families.networks import CONV_FILTERS, KERNEL, image_shape


def _dense_stack(h, hidden, activation="relu"):
    for units in hidden:
        h = keras.layers.Dense(units, activation=activation)(h)
    return h


def mlp_encoder(event_shape, n_params: int, hidden=(256, 128)) -> keras.Model:
    x = keras.Input(shape=event_shape)
    h = _dense_stack(keras.layers.Flatten()(x), hidden)
    return keras.Model(x, keras.layers.Dense(n_params)(h), name="encoder")


def mlp_decoder(latent_dim: int, event_shape, params_per_dim: int, hidden=(128, 256)) -> keras.Model:
    z = keras.Input(shape=(latent_dim,))
    h = _dense_stack(z, hidden)
    out = keras.layers.Dense(int(np.prod(event_shape)) * params_per_dim)(h)
    return keras.Model(z, keras.layers.Reshape(tuple(event_shape) + (params_per_dim,))(out), name="decoder")


def linear_encoder(event_shape, n_params: int, hidden=()) -> keras.Model:
    return mlp_encoder(event_shape, n_params, hidden=())


def linear_decoder(latent_dim: int, event_shape, params_per_dim: int, hidden=()) -> keras.Model:
    return mlp_decoder(latent_dim, event_shape, params_per_dim, hidden=())


def conv_encoder(event_shape, n_params: int, hidden=(256,)) -> keras.Model:
    x = keras.Input(shape=event_shape)
    h = keras.layers.Reshape(image_shape(event_shape))(x)
    for filters in CONV_FILTERS:
        h = keras.layers.Conv2D(filters, KERNEL, strides=2, padding="same", activation="relu")(h)
    h = _dense_stack(keras.layers.Flatten()(h), hidden)
    return keras.Model(x, keras.layers.Dense(n_params)(h), name="encoder")


def conv_decoder(latent_dim: int, event_shape, params_per_dim: int, hidden=(256,)) -> keras.Model:
    height, width, channels = image_shape(event_shape)
    h4, w4 = math.ceil(height / 4), math.ceil(width / 4)
    z = keras.Input(shape=(latent_dim,))
    h = _dense_stack(z, hidden)
    top = CONV_FILTERS[-1]
    h = keras.layers.Dense(h4 * w4 * top, activation="relu")(h)
    h = keras.layers.Reshape((h4, w4, top))(h)
    h = keras.layers.Conv2DTranspose(CONV_FILTERS[0], KERNEL, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Conv2DTranspose(channels * params_per_dim, KERNEL, strides=2, padding="same")(h)
    h = keras.layers.Cropping2D(((0, 4 * h4 - height), (0, 4 * w4 - width)))(h)
    out = keras.layers.Reshape(tuple(event_shape) + (params_per_dim,))(h)
    return keras.Model(z, out, name="decoder")


def seed_kernels(net: keras.Model, seed) -> keras.Model:
    """Draw every kernel of `net` again, Glorot-uniform from the seed (seed, i) for its i-th layer with a kernel."""
    layers = [layer for layer in net.layers if getattr(layer, "kernel", None) is not None]
    for i, layer in enumerate(layers):
        state = np.random.SeedSequence([*np.atleast_1d(seed).tolist(), i]).generate_state(1)[0]
        init = keras.initializers.GlorotUniform(seed=int(state >> 1))
        layer.kernel.assign(init(tuple(layer.kernel.shape), dtype=layer.kernel.dtype))
    return net
