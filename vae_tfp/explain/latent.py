"""The Latent space view: decodes E[x|z] over a grid of a 2-D latent, along a traversal of one latent dimension
from an image's posterior mean, and along the straight line between two images' posterior means."""

from dataclasses import dataclass

import numpy as np

from vae_tfp import evaluation
from vae_tfp.explain._tensors import to_numpy


@dataclass
class LatentGrid:
    axes: list  # two arrays [G]: z_1 and z_2 values
    means: np.ndarray  # [G, G, *event]   E[x|z] at z = (axes[0][i], axes[1][j])


def latent_grid(model, size: int = 12, reach: float = 2.5) -> LatentGrid:
    """Decodes E[x|z] over a size x size grid of a 2-D latent, +-reach prior standard deviations around its mean."""
    if model.latent_dim != 2:
        raise ValueError(f"a latent grid needs latent_dim == 2, this model has {model.latent_dim}")
    prior = model.prior_distribution()
    center, std = to_numpy(prior.mean()), to_numpy(prior.stddev())
    axes, mesh = evaluation.box_grid(center - reach * std, center + reach * std, size)  # mesh [G, G, 2]
    return LatentGrid(axes, to_numpy(model.decoder_mean(mesh.astype(np.float32))))


@dataclass
class LatentPath:
    t: np.ndarray  # [m]  the path's parameter (latent value for a traversal, 0..1 for an interpolation)
    z: np.ndarray  # [m, latent]
    means: np.ndarray  # [m, *event]  E[x|z] along the path


def traversal(model, x1, dim: int, values) -> LatentPath:
    """Start at the posterior mean of one image x1 [*event] and move latent dimension `dim` through `values`."""
    if not 0 <= int(dim) < model.latent_dim:
        raise ValueError(f"dim must lie in [0, {model.latent_dim}), got {dim!r}")
    base = to_numpy(model.encode(np.asarray(x1, np.float32)[None]).mean())[0]  # [latent]
    values = np.asarray(values, np.float32)
    z = np.repeat(base[None], len(values), axis=0)  # [m, latent]
    z[:, int(dim)] = values
    return LatentPath(values, z, to_numpy(model.decoder_mean(z)))


def interpolation(model, xa, xb, steps: int = 8) -> LatentPath:
    """Decodes along the straight line between the posterior means of two images: z_t = (1 - t) mu_a + t mu_b."""
    mu = to_numpy(model.encode(np.stack([xa, xb]).astype(np.float32)).mean())  # [2, latent]
    t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)
    z = (1 - t)[:, None] * mu[0] + t[:, None] * mu[1]  # [steps, latent]
    return LatentPath(t, z, to_numpy(model.decoder_mean(z)))
