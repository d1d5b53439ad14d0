"""The network registry: one `NetworkFamily` per encoder/decoder architecture, importable without TensorFlow.

    images_only   needs image data [H, W] or [H, W, C]
    linear        one affine layer each way (hidden widths are ignored): with a Gaussian likelihood and a
                  standard-normal prior, the linear-Gaussian model whose log p(x) is exact

Besides the lazy references to its Keras builders (encoder(event_shape, n_params, hidden),
decoder(latent_dim, event_shape, params_per_dim, hidden)), each entry knows the size of every layer it builds,
without TensorFlow: `layer_sizes` gives (parameters, outputs per example) per layer, which `vae_tfp.budget` adds up
to check a model's size before anything is built (tests compare the count with Keras' count_params()).
The decoder mirrors the encoder: it gets the hidden widths reversed.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

from vae_tfp.families.reference import lookup, resolve

CONV_FILTERS = (32, 64)  # the two stride-2 3x3 convolutions of the conv encoder (mirrored by the decoder)
KERNEL = 3


@dataclass(frozen=True)
class Layer:
    params: int  # trainable parameters
    outputs: int  # values it outputs per example


@dataclass(frozen=True)
class NetworkFamily:
    name: str
    words: str  # one line for people
    encoder: str  # lazy reference: (event_shape, n_params, hidden) -> keras.Model
    decoder: str  # lazy reference: (latent_dim, event_shape, params_per_dim, hidden) -> keras.Model
    encoder_layers: Callable  # (event_shape, n_params, hidden) -> [Layer]
    decoder_layers: Callable  # (latent_dim, event_shape, params_per_dim, hidden) -> [Layer]
    images_only: bool = False
    linear: bool = False

    def build(self, event_shape, latent_dim: int, n_params: int, params_per_dim: int, hidden):
        """(encoder, decoder) Keras models (imports TensorFlow on first use); the decoder mirrors `hidden`."""
        event_shape, hidden = tuple(event_shape), tuple(hidden)
        return (resolve(self.encoder)(event_shape, n_params, hidden),
                resolve(self.decoder)(int(latent_dim), event_shape, params_per_dim, hidden[::-1]))

    def layer_sizes(self, event_shape, latent_dim: int, n_params: int, params_per_dim: int, hidden):
        """([Layer] of the encoder, [Layer] of the decoder), as `build` would make them."""
        event_shape, hidden = tuple(int(d) for d in event_shape), tuple(int(h) for h in hidden)
        return (self.encoder_layers(event_shape, n_params, hidden),
                self.decoder_layers(int(latent_dim), event_shape, params_per_dim, hidden[::-1]))


def image_shape(event_shape) -> tuple:
    """(H, W, C) of image data [H, W] or [H, W, C]; ValueError for anything else."""
    if len(event_shape) == 2:
        return tuple(event_shape) + (1,)
    if len(event_shape) == 3:
        return tuple(event_shape)
    raise ValueError(f"conv networks need images [H, W] or [H, W, C], got event shape {tuple(event_shape)}; use mlp")


def _dense(n_in: int, widths) -> list[Layer]:
    # Dense(w): kernel [n_in, w] + bias [w]
    layers = []
    for w in widths:
        layers.append(Layer((n_in + 1) * w, w))
        n_in = w
    return layers


def mlp_encoder_layers(event_shape, n_params: int, hidden) -> list[Layer]:
    return _dense(math.prod(event_shape), (*hidden, n_params))


def mlp_decoder_layers(latent_dim: int, event_shape, params_per_dim: int, hidden) -> list[Layer]:
    return _dense(latent_dim, (*hidden, math.prod(event_shape) * params_per_dim))


def linear_encoder_layers(event_shape, n_params: int, hidden=()) -> list[Layer]:
    return mlp_encoder_layers(event_shape, n_params, ())


def linear_decoder_layers(latent_dim: int, event_shape, params_per_dim: int, hidden=()) -> list[Layer]:
    return mlp_decoder_layers(latent_dim, event_shape, params_per_dim, ())


def _conv_grid(height: int, width: int) -> tuple[int, int]:
    return math.ceil(height / 4), math.ceil(width / 4)  # after two stride-2 "same" convolutions


def conv_encoder_layers(event_shape, n_params: int, hidden) -> list[Layer]:
    height, width, channels = image_shape(event_shape)
    layers, h, w = [], height, width
    for filters in CONV_FILTERS:  # Conv2D: kernel [3, 3, in, filters] + bias [filters]
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        layers.append(Layer(KERNEL * KERNEL * channels * filters + filters, h * w * filters))
        channels = filters
    return layers + _dense(h * w * channels, (*hidden, n_params))


def conv_decoder_layers(latent_dim: int, event_shape, params_per_dim: int, hidden) -> list[Layer]:
    height, width, channels = image_shape(event_shape)
    h4, w4 = _conv_grid(height, width)
    top = CONV_FILTERS[-1]
    layers = _dense(latent_dim, (*hidden, h4 * w4 * top))
    out_channels = channels * params_per_dim
    # Conv2DTranspose: kernel [3, 3, filters, in] + bias [filters]; then the crop to H x W (a copy)
    layers.append(Layer(KERNEL * KERNEL * top * CONV_FILTERS[0] + CONV_FILTERS[0], 4 * h4 * w4 * CONV_FILTERS[0]))
    layers.append(Layer(KERNEL * KERNEL * CONV_FILTERS[0] * out_channels + out_channels, 16 * h4 * w4 * out_channels))
    layers.append(Layer(0, height * width * out_channels))
    return layers


NETWORKS: dict[str, NetworkFamily] = {f.name: f for f in (
    NetworkFamily("mlp", "dense layers of the hidden widths",
                  "vae_tfp.networks:mlp_encoder", "vae_tfp.networks:mlp_decoder",
                  mlp_encoder_layers, mlp_decoder_layers),
    NetworkFamily("conv", "two stride-2 3x3 convolutions, then dense layers of the hidden widths (images only)",
                  "vae_tfp.networks:conv_encoder", "vae_tfp.networks:conv_decoder",
                  conv_encoder_layers, conv_decoder_layers, images_only=True),
    NetworkFamily("linear", "one affine layer each way (x = W z + b); with a Gaussian likelihood the "
                  "linear-Gaussian model, exact log p(x)",
                  "vae_tfp.networks:linear_encoder", "vae_tfp.networks:linear_decoder",
                  linear_encoder_layers, linear_decoder_layers, linear=True),
)}


def get(name: str) -> NetworkFamily:
    """The registry entry of a network; ValueError naming the allowed names."""
    return lookup("network", name, NETWORKS)
