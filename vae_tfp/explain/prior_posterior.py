"""The Prior vs posterior view: decodes of z ~ p(z) beside decodes of z ~ q(z|x); posterior means or samples of two
latent dimensions over the prior's density p(z_a, z_b); the aggregate posterior q(z) = mean_x q(z|x) per dimension
against p(z_j); KL(q(z_j|x) || p(z_j)) per dimension and active units."""

from dataclasses import dataclass

import numpy as np

from vae_tfp import evaluation
from vae_tfp.explain._tensors import stateless_seed, to_numpy
from vae_tfp.explain.reconstructions import reconstructions


# --- decodes of the prior and of the posterior ---------------------------------------------------------------------
@dataclass
class Decodes:
    z: np.ndarray  # [n, latent]
    mean: np.ndarray  # [n, *event]   E[x|z]
    sample: np.ndarray  # [n, *event] x ~ p(x|z)


def prior_decodes(model, n: int, seed: int = 0) -> Decodes:
    """z ~ p(z), then E[x|z] and x ~ p(x|z): the samples are draws from the model's p(x)."""
    z = model.prior_distribution().sample(int(n), seed=stateless_seed(seed))  # [n, latent]
    likelihood = model.decode(z)
    return Decodes(z=to_numpy(z), mean=to_numpy(model.likelihood_head.mean(likelihood)),
                   sample=to_numpy(likelihood.sample(seed=stateless_seed(seed + 1))))


def posterior_decodes(model, x, seed: int = 0) -> Decodes:
    """z ~ q(z|x) for each x, then E[x|z] and x ~ p(x|z)."""
    r = reconstructions(model, x, seed)
    return Decodes(z=r.z, mean=r.mean, sample=r.sample)


# --- the latent space under q and p --------------------------------------------------------------------------------
@dataclass
class LatentScatter:
    dims: tuple  # the latent dimensions shown (one or two)
    means: np.ndarray  # [n, len(dims)]    E_q[z|x]
    samples: np.ndarray  # [n, len(dims)]  z ~ q(z|x)
    labels: np.ndarray | None  # [n]
    axes: list  # len(dims) arrays [G]: the grid of the prior's density
    prior_density: np.ndarray  # [G] or [G, G]: p(z_dims) on the grid (indexing "ij")


def latent_scatter(model, x, labels=None, dims=(0, 1), grid: int = 80, seed: int = 0) -> LatentScatter:
    """Posterior means and samples of latent dims `dims` (two, or one for a 1-D latent) over p(z_dims), on a grid
    over the box holding 99 % of the points and of the prior's samples, padded by 15 %."""
    dims = tuple(int(d) for d in dims)[: model.latent_dim]
    if any(not 0 <= d < model.latent_dim for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"dims {dims} must be distinct latent dimensions in [0, {model.latent_dim})")
    q = model.encode(np.asarray(x, np.float32))
    means = to_numpy(q.mean())[:, dims]
    samples = to_numpy(q.sample(seed=stateless_seed(seed)))[:, dims]
    marginal = evaluation.prior_marginals(model, dims)  # event [len(dims)]
    span = np.concatenate([means, samples, to_numpy(marginal.sample(2000, seed=stateless_seed(seed + 1)))])
    lo, hi = np.percentile(span, 0.5, axis=0), np.percentile(span, 99.5, axis=0)
    pad = 0.15 * (hi - lo) + 1e-3
    axes, mesh = evaluation.box_grid(lo - pad, hi + pad, grid)  # mesh [G, (G,) d]
    density = np.exp(to_numpy(marginal.log_prob(mesh.astype(np.float32))))
    return LatentScatter(dims, means, samples, None if labels is None else np.asarray(labels), axes, density)


@dataclass
class AggregatePosterior:
    edges: np.ndarray  # [dims, bins + 1]   histogram bin edges per latent dimension
    density: np.ndarray  # [dims, bins]     histogram of z_j ~ q(z_j) = mean_x q(z_j|x), normalised to a density
    grid: np.ndarray  # [dims, G]           points where the prior's marginal is drawn
    prior_pdf: np.ndarray  # [dims, G]      p(z_j)
    dims: tuple


def aggregate_posterior(model, x, dims=None, bins: int = 40, n_samples: int = 4, seed: int = 0) -> AggregatePosterior:
    """Per latent dimension: a histogram of samples of the aggregate posterior q(z) = mean_x q(z|x) (n_samples per
    x) against the prior's marginal p(z_j)."""
    dims = tuple(range(min(model.latent_dim, 16))) if dims is None else tuple(dims)
    z = to_numpy(model.encode(np.asarray(x, np.float32)).sample(n_samples, seed=stateless_seed(seed)))  # [S, n, L]
    z = z.reshape(-1, model.latent_dim)[:, dims]  # [S n, d]
    edges, density, grids, pdfs = [], [], [], []
    for j, d in enumerate(dims):
        reach = max(4.0, float(np.percentile(np.abs(z[:, j]), 99.5)) * 1.1)
        e = np.linspace(-reach, reach, bins + 1)
        h, _ = np.histogram(np.clip(z[:, j], -reach, reach), bins=e, density=True)
        g = np.linspace(-reach, reach, 200)
        pdf = to_numpy(evaluation.prior_marginals(model, [d]).prob(g[:, None].astype(np.float32)))  # [200]
        edges.append(e), density.append(h), grids.append(g), pdfs.append(pdf)
    return AggregatePosterior(np.array(edges), np.array(density), np.array(grids), np.array(pdfs), dims)


@dataclass
class LatentUsage:
    kl_per_dim: np.ndarray  # [latent]  mean over x of KL(q(z_j|x) || p(z_j)), nats
    activity: np.ndarray  # [latent]    Cov_x(E_q[z_j|x])
    active: np.ndarray  # [latent]      bool, activity > threshold
    threshold: float

    @property
    def n_active(self) -> int:
        return int(self.active.sum())


def latent_usage(model, x, threshold: float = 0.01) -> LatentUsage:
    """KL per latent dimension and active units (A_u = Cov_x(E_q[z_u]) > threshold, Burda et al. 2015)."""
    x = np.asarray(x, np.float32)
    _, activity = evaluation.active_units(model, x, threshold)
    return LatentUsage(evaluation.kl_per_dimension(model, x), activity, activity > threshold, threshold)
