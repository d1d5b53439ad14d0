"""Keras 3 encoders and decoders. They output *parameters*, never distributions (no tfp.layers).

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
from vae_tfp.errors import choose

NETWORKS = ("mlp", "conv", "linear")


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


def _image_shape(event_shape):
    if len(event_shape) == 2:
        return tuple(event_shape) + (1,)
    if len(event_shape) == 3:
        return tuple(event_shape)
    raise ValueError(f"conv networks need images [H, W] or [H, W, C], got event shape {tuple(event_shape)}; use mlp")


def conv_encoder(event_shape, n_params: int, hidden=(256,)) -> keras.Model:
    x = keras.Input(shape=event_shape)
    h = keras.layers.Reshape(_image_shape(event_shape))(x)
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(h)
    h = _dense_stack(keras.layers.Flatten()(h), hidden)
    return keras.Model(x, keras.layers.Dense(n_params)(h), name="encoder")


def conv_decoder(latent_dim: int, event_shape, params_per_dim: int, hidden=(256,)) -> keras.Model:
    height, width, channels = _image_shape(event_shape)
    h4, w4 = math.ceil(height / 4), math.ceil(width / 4)
    z = keras.Input(shape=(latent_dim,))
    h = _dense_stack(z, hidden)
    h = keras.layers.Dense(h4 * w4 * 64, activation="relu")(h)
    h = keras.layers.Reshape((h4, w4, 64))(h)
    h = keras.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Conv2DTranspose(channels * params_per_dim, 3, strides=2, padding="same")(h)
    h = keras.layers.Cropping2D(((0, 4 * h4 - height), (0, 4 * w4 - width)))(h)
    out = keras.layers.Reshape(tuple(event_shape) + (params_per_dim,))(h)
    return keras.Model(z, out, name="decoder")


_ENCODERS = {"mlp": mlp_encoder, "conv": conv_encoder, "linear": linear_encoder}
_DECODERS = {"mlp": mlp_decoder, "conv": conv_decoder, "linear": linear_decoder}


def make_encoder(kind: str, event_shape, n_params: int, hidden, seed=None) -> keras.Model:
    """`seed` (an int or a tuple of ints) fixes the initial weights; None leaves Keras' global seed to draw them."""
    net = choose("network", kind, _ENCODERS)(tuple(event_shape), n_params, tuple(hidden))
    return net if seed is None else seed_kernels(net, seed)


def make_decoder(kind: str, latent_dim: int, event_shape, params_per_dim: int, hidden, seed=None) -> keras.Model:
    net = choose("network", kind, _DECODERS)(latent_dim, tuple(event_shape), params_per_dim, tuple(hidden))
    return net if seed is None else seed_kernels(net, seed)


def seed_kernels(net: keras.Model, seed) -> keras.Model:
    """Draw every kernel of `net` again, Glorot-uniform from the seed (seed, i) for its i-th layer with a kernel."""
    layers = [layer for layer in net.layers if getattr(layer, "kernel", None) is not None]
    for i, layer in enumerate(layers):
        state = np.random.SeedSequence([*np.atleast_1d(seed).tolist(), i]).generate_state(1)[0]
        init = keras.initializers.GlorotUniform(seed=int(state >> 1))
        layer.kernel.assign(init(tuple(layer.kernel.shape), dtype=layer.kernel.dtype))
    return net
