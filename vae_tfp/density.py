"""The model's density p(x) on the data plane (2-D point data), and the pictures that explain it.

    p(x) = int p(x|z) p(z) dz,      p(x|z) = N(x; f(z), diag(sigma^2))   (the gaussian likelihood, f the decoder)

- `density_grid`: log p(x) on a G x G grid of x. For latent_dim <= 2 by quadrature over a latent grid,
      p(x) ~= sum_g p(x|z_g) p(z_g) dz          z_g on an evenly spaced grid, dz its cell volume
  which is the mixture of Gaussians `vae_tfp.gaussian_mixture` evaluates (one matmul per grid; see there). The
  latent grid spans +-5 prior standard deviations around each of the prior's means (for the standard normal:
  [-5, 5] per dimension, prior mass 1 - 5.7e-7 in 1-D and 1 - 1.1e-6 in 2-D); its mass sum_g p(z_g) dz is reported
  as `prior_mass`: it is also the grid density's total mass over the whole plane, so the truncation is known.
  (Pointwise, an x whose posterior p(z|x) reaches past the latent grid -- far in the tails, where p(x) is tiny --
  loses that part of its integral.)
  `latent_step` is the largest move of f between neighbouring latent grid points (where p(z) >= 1e-3 of its
  largest value) in units of sigma: the sum's error grows fast with it (on a trained two_moons model, against a
  500 x 500 grid: step 1.1 -> max error 4e-4 nats over the test set, 2.2 -> 2e-3, 4.3 -> 0.08); raise the latent
  grid when it is above ~2.
  For latent_dim > 2, importance sampling with q(z|x) (`evaluation.log_px_importance`), k samples per x.
  `integral` = sum of p(x) over the grid times the cell area: 1 when the grid covers the model's mass.
- `log_px_at`: the same log p(x) at any points (e.g. the test set), any data dimension.
- `mixture_density`: p_K(x) = (1/K) sum_k N(x; f(z_k), sigma^2), z_k ~ p(z): an unbiased Monte-Carlo estimate of
  p(x) that approaches it as K grows; with the components' means and sigmas (ellipses) and
  mean_test |log p_K(x) - log p(x)|.
- `sampling_both_ways`: x ~ p(x) by z ~ p(z), then x ~ p(x|z); and reconstructions of test points, z ~ q(z|x),
  then x' ~ p(x|z).
- `one_point`: for one x, log p(x), the ELBO, the gap log p(x) - ELBO = KL(q(z|x) || p(z|x)), and the true
  posterior p(z|x) beside q(z|x) on a latent grid (latent <= 2), from `views.what_is_px`.

Shapes follow the data: x [n, 2], grids [G0, G1] with indexing "ij" (entry [i, j] is x = (axes[0][i], axes[1][j]);
transpose it for an image whose rows are x_1).
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from vae_tfp import evaluation
from vae_tfp._tf import tf, tfd
from vae_tfp.explain.prior_posterior import prior_decodes  # reused, not restated
from vae_tfp.explain.reconstructions import reconstructions
from vae_tfp.explain.what_is_px import what_is_px
from vae_tfp.gaussian_mixture import cell_area, grid_integral, grid_mesh, log_density_at, log_density_grid

LATENT_REACH = 5.0  # the latent grid spans +-5 prior standard deviations around the prior's means
DEFAULT_LATENT_GRID = {1: 1000, 2: 100}  # points per latent dimension
LATENT_GRID_LIMITS = {1: (2, 200_000), 2: (2, 1000)}
GRID_LIMITS = (2, 2000)  # data grid points per axis
GRID_K = 100  # importance samples per grid point (latent > 2)
TEST_K = 1000  # importance samples per test point (latent > 2)
PAD_FRACTION, PAD_SIGMAS = 0.1, 4.0  # the plane's extent: the data's and the model's box +- max(10%, 4 sigma)
MIXTURE_POOL = 1000  # p_K takes the first K of one draw of this many z_k, so growing K adds components
STEP_REGION = 1e-3  # latent_step looks where p(z) >= this fraction of its largest value on the grid


# --- checks -----------------------------------------------------------------------------------------------------
def _check_gaussian(model):
    if model.likelihood_name != "gaussian":
        raise ValueError(f"the density over the data plane needs a gaussian likelihood (real-valued points); this "
                         f"model's likelihood is {model.likelihood_name!r}")


def _check_plane(model):
    _check_gaussian(model)
    if tuple(model.event_shape) != (2,):
        raise ValueError(f"a density over the plane needs 2-D points (event shape (2,)); this model takes x of shape "
                         f"{tuple(model.event_shape)}")


def _int_in(name, value, lo, hi) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and lo <= int(value) <= hi
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def method_for(model) -> str:
    """"quadrature" for latent_dim <= 2, else "importance"."""
    return "quadrature" if model.latent_dim <= 2 else "importance"


# --- the decoder as a mixture's components ------------------------------------------------------------------------
def _compiled_latent_terms(model):
    """A tf.function z [P, latent] -> (f(z) [P, *event], log p(z) [P]) kept on the model, so a refresh does not
    retrace (eager TFP spends ~0.1 s building p(z) for 10^4 points)."""
    fn = getattr(model, "_density_latent_terms", None)
    if fn is None:
        fn = tf.function(lambda z: (model.decoder_mean(z), model.prior_distribution().log_prob(z)),
                         reduce_retracing=True)
        model._density_latent_terms = fn
    return fn


def _latent_terms(model, z) -> tuple[np.ndarray, np.ndarray]:
    """(f(z) [P, D], log p(z) [P]) for z [P, latent], float64, in chunks that bound the decoder's outputs."""
    z = np.asarray(z, np.float32).reshape(-1, model.latent_dim)
    fn = _compiled_latent_terms(model)
    chunk = evaluation.decode_chunk(model)
    parts = [fn(tf.constant(z[i:i + chunk])) for i in range(0, len(z), chunk)]
    means = np.concatenate([m.numpy() for m, _ in parts]).reshape(len(z), -1).astype(np.float64)
    return means, np.concatenate([lp.numpy() for _, lp in parts]).astype(np.float64)


def decoder_gaussians(model, z) -> tuple[np.ndarray, np.ndarray]:
    """(f(z) [P, D], sigma [D]) of p(x|z) = N(f(z), diag(sigma^2)) for z [P, latent], float64; chunked."""
    _check_gaussian(model)
    return _latent_terms(model, z)[0], likelihood_sigma(model)


def likelihood_sigma(model) -> np.ndarray:
    """The gaussian likelihood's sigma per data dimension -> [D] (float64); it does not depend on z."""
    _check_gaussian(model)
    dims = int(np.prod(model.event_shape))
    return np.broadcast_to(np.asarray(model.likelihood_head.sigma().numpy(), np.float64).reshape(-1), (dims,)).copy()


# --- quadrature over the latent grid ------------------------------------------------------------------------------
def prior_box(model, reach: float = LATENT_REACH) -> tuple[np.ndarray, np.ndarray]:
    """(lo [latent], hi [latent]): +-reach standard deviations around every component mean of p(z)."""
    prior = model.prior_distribution()
    if isinstance(prior, tfd.MixtureSameFamily):
        comp = prior.components_distribution  # batch [K], event [latent]
        loc, scale = comp.mean().numpy(), comp.stddev().numpy()  # [K, latent]
    else:
        loc, scale = prior.mean().numpy()[None], prior.stddev().numpy()[None]  # [1, latent]
    return np.min(loc - reach * scale, axis=0).astype(np.float64), np.max(loc + reach * scale, axis=0).astype(
        np.float64)


@dataclass
class LatentQuadrature:
    """The latent grid as the mixture's components: p(x) ~= sum_g exp(log_weight_g) N(x; means_g, sigma^2)."""

    axes: list  # latent_dim arrays [M]
    z: np.ndarray  # [P, latent], P = M^latent (indexing "ij")
    log_weight: np.ndarray  # [P]  log p(z_g) + log(cell volume)
    means: np.ndarray  # [P, D]  f(z_g)
    sigma: np.ndarray  # [D]
    prior_mass: float  # sum_g p(z_g) dz: the grid's share of the prior (and the grid density's total mass)
    latent_step: float  # largest |f(z_g') - f(z_g)| / sigma between grid neighbours where p(z) is not negligible

    @property
    def size(self) -> int:
        return len(self.axes[0])


def latent_quadrature(model, size: int | None = None, reach: float = LATENT_REACH) -> LatentQuadrature:
    """The latent grid (size points per dimension, default 1000 in 1-D and 100 in 2-D) over +-reach prior standard
    deviations, its quadrature weights p(z_g) dz and the decoder's Gaussians there."""
    latent = model.latent_dim
    if latent > 2:
        raise ValueError(f"quadrature over z needs latent_dim <= 2, this model has {latent}; use importance sampling")
    size = _int_in("latent grid size", DEFAULT_LATENT_GRID[latent] if size is None else size,
                   *LATENT_GRID_LIMITS[latent])
    lo, hi = prior_box(model, reach)
    axes = [np.linspace(a, b, size) for a, b in zip(lo, hi)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # [M, (M,) latent]
    z = mesh.reshape(-1, latent)  # [P, latent]
    _check_gaussian(model)
    means, log_pz = _latent_terms(model, z)  # [P, D], [P]
    sigma = likelihood_sigma(model)
    log_weight = log_pz + math.log(cell_area(axes))
    step = _latent_step(means.reshape(mesh.shape[:-1] + (-1,)), sigma, log_pz.reshape(mesh.shape[:-1]))
    return LatentQuadrature(axes, z, log_weight, means, sigma, float(np.sum(np.exp(log_weight))), step)


def _latent_step(means, sigma, log_pz) -> float:
    """max over neighbouring grid points (both with p(z) >= STEP_REGION max p(z)) of |f(z') - f(z)| / sigma."""
    keep = log_pz >= np.max(log_pz) + math.log(STEP_REGION)  # [M, (M,)]
    steps = [0.0]
    for axis in range(log_pz.ndim):
        moves = np.linalg.norm(np.diff(means, axis=axis) / sigma, axis=-1)  # [M - 1, (M,)] along `axis`
        both = np.logical_and(*(np.take(keep, range(a, a + keep.shape[axis] - 1), axis=axis) for a in (0, 1)))
        steps.append(float(np.max(moves[both], initial=0.0)))
    return max(steps)


# --- log p(x) at points and on the plane --------------------------------------------------------------------------
def log_px_at(model, x, *, quadrature: LatentQuadrature | None = None, latent_grid: int | None = None,
              k: int = TEST_K) -> np.ndarray:
    """log p(x) at points x [n, D] -> [n] (nats): quadrature over the latent grid for latent_dim <= 2 (any D), else
    importance sampling with k samples from q(z|x)."""
    x = np.asarray(x, np.float64).reshape((-1,) + tuple(model.event_shape))
    model.likelihood_head.check_support(x)
    if model.latent_dim > 2:
        return evaluation.log_px_importance(model, x.astype(np.float32), k=k)
    quadrature = quadrature or latent_quadrature(model, latent_grid)
    return log_density_at(x.reshape(len(x), -1), quadrature.means, quadrature.sigma, quadrature.log_weight)


def plane_extent(model, points=None, seed: int = 0) -> tuple[tuple[float, float], tuple[float, float]]:
    """((lo_0, hi_0), (lo_1, hi_1)): the box around `points` (e.g. the training data) and 2000 draws of the
    decoder's mean f(z), z ~ p(z), padded by max(10% of its range, 4 sigma) on each side, so the grid holds the
    data, the model's mass and the noise around both."""
    _check_plane(model)
    sigma = likelihood_sigma(model)
    z = model.prior_distribution().sample(2000, seed=_stateless(seed)).numpy()
    inside, _ = decoder_gaussians(model, z)  # [2000, 2]
    if points is not None:
        inside = np.concatenate([inside, np.asarray(points, np.float64).reshape(-1, 2)])
    lo, hi = inside.min(axis=0), inside.max(axis=0)
    pad = np.maximum(PAD_FRACTION * (hi - lo), PAD_SIGMAS * sigma)
    return tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad))


def grid_axes(extent, grid: int) -> list:
    """Two evenly spaced axes [G] over ((lo_0, hi_0), (lo_1, hi_1))."""
    grid = _int_in("grid", grid, *GRID_LIMITS)
    if len(extent) != 2 or any(not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) for lo, hi in extent):
        raise ValueError(f"extent must be ((lo_0, hi_0), (lo_1, hi_1)) with finite lo < hi, got {extent!r}")
    return [np.linspace(lo, hi, grid) for lo, hi in extent]


@dataclass
class DensityGrid:
    """log p(x) of a model over a grid of the plane."""

    axes: list  # two arrays [G]: x_0 and x_1 values
    log_density: np.ndarray  # [G, G]  log p(x) at (axes[0][i], axes[1][j])  (nats; indexing "ij")
    method: str  # "quadrature" (latent <= 2) or "importance"
    latent_grid: int | None  # latent grid points per latent dimension (quadrature)
    latent_points: int | None  # all latent grid points, latent_grid ** latent_dim
    latent_extent: list | None  # [(lo, hi)] per latent dimension
    prior_mass: float | None  # sum_g p(z_g) dz over the latent grid (quadrature)
    latent_step: float | None  # see the module docstring (quadrature)
    k: int | None  # importance samples per x (importance)
    integral: float  # sum_ij p(x_ij) x cell area
    seconds: float  # wall-clock time of the computation (latent grid, decoder and sum)
    quadrature: LatentQuadrature | None = field(default=None, repr=False)  # reuse it for points (same weights)

    @property
    def grid(self) -> int:
        return len(self.axes[0])

    @property
    def extent(self) -> tuple:
        return tuple((float(a[0]), float(a[-1])) for a in self.axes)

    @property
    def cell_area(self) -> float:
        return cell_area(self.axes)


def density_grid(model, grid: int = 200, *, extent=None, points=None, latent_grid: int | None = None,
                 k: int = GRID_K, quadrature: LatentQuadrature | None = None) -> DensityGrid:
    """log p(x) on a grid x grid grid over the plane (2-D point data, gaussian likelihood).

    extent: ((lo_0, hi_0), (lo_1, hi_1)); default `plane_extent(model, points)` (the box around `points`, e.g. the
    training data, and the model's samples, padded). latent_grid: points per latent dimension for the quadrature
    (latent_dim <= 2); k: importance samples per grid point otherwise. A `quadrature` computed before for the same
    weights is reused; the result keeps the one it used (`.quadrature`), e.g. for `log_px_at` on test points."""
    start = time.perf_counter()
    _check_plane(model)
    axes = grid_axes(extent if extent is not None else plane_extent(model, points), grid)
    if model.latent_dim <= 2:
        quadrature = quadrature or latent_quadrature(model, latent_grid)
        log_density = log_density_grid(axes, quadrature.means, quadrature.sigma, quadrature.log_weight)
        extra = dict(latent_grid=quadrature.size, latent_points=len(quadrature.z),
                     latent_extent=[(float(a[0]), float(a[-1])) for a in quadrature.axes],
                     prior_mass=quadrature.prior_mass, latent_step=quadrature.latent_step, k=None,
                     quadrature=quadrature)
    else:
        k = _int_in("k", k, 1, 100_000)
        mesh = grid_mesh(axes).reshape(-1, 2).astype(np.float32)  # [G G, 2]
        log_density = evaluation.log_px_importance(model, mesh, k=k).reshape(len(axes[0]), len(axes[1]))
        extra = dict(latent_grid=None, latent_points=None, latent_extent=None, prior_mass=None, latent_step=None, k=k)
    return DensityGrid(axes, log_density, method_for(model), integral=grid_integral(axes, log_density),
                       seconds=time.perf_counter() - start, **extra)


# --- p(x) as a mixture of K components ----------------------------------------------------------------------------
def _stateless(seed: int):
    return tf.constant([int(seed), 11], tf.int32)  # a stateless seed: same seed, same draws


@dataclass
class MixtureDensity:
    """p_K(x) = (1/K) sum_k N(x; f(z_k), diag(sigma^2)), z_k ~ p(z)."""

    K: int
    z: np.ndarray  # [K, latent]  z_k ~ p(z)
    means: np.ndarray  # [K, D]     f(z_k), the components' centres
    sigmas: np.ndarray  # [K, D]    the components' standard deviations (the likelihood's sigma, shared)
    axes: list | None  # the grid of `log_density`
    log_density: np.ndarray | None  # [G, G]  log p_K(x) on the grid
    test_log_pk: np.ndarray | None  # [n]     log p_K(x) at the test points
    mean_abs_error: float | None  # mean over the test points of |log p_K(x) - log p(x)|

    @property
    def weight(self) -> float:
        return 1.0 / self.K


def mixture_density(model, K: int, *, axes=None, x=None, log_px=None, seed: int = 0) -> MixtureDensity:
    """The K-component mixture p_K on the grid `axes` (2-D) and at points x [n, D]; with log_px [n] (the model's
    log p(x) at x, e.g. from `log_px_at`) also mean |log p_K(x) - log p(x)|. The z_k are the first K of one draw of
    max(K, 1000) from p(z) (seeded), so a larger K adds components to the same mixture."""
    K = _int_in("K", K, 1, 1_000_000)
    z = model.prior_distribution().sample(max(K, MIXTURE_POOL), seed=_stateless(seed)).numpy()[:K]  # [K, latent]
    means, sigma = decoder_gaussians(model, z)
    log_w = np.full(K, -math.log(K))
    log_density = test = error = None
    if axes is not None:
        log_density = log_density_grid(axes, means, sigma, log_w)
    if x is not None:
        test = log_density_at(np.asarray(x, np.float64).reshape(len(x), -1), means, sigma, log_w)
        if log_px is not None:
            error = float(np.mean(np.abs(test - np.asarray(log_px, np.float64))))
    return MixtureDensity(K, z, means, np.broadcast_to(sigma, means.shape).copy(), axes, log_density, test, error)


# --- sampling, both ways ------------------------------------------------------------------------------------------
@dataclass
class BothWays:
    """Samples of the model's p(x) and reconstructions of data through q(z|x), on the same axes."""

    prior_z: np.ndarray  # [n, latent]  z ~ p(z)
    prior_means: np.ndarray  # [n, D]   f(z) = E[x|z]
    samples: np.ndarray  # [n, D]       x ~ p(x|z), z ~ p(z): draws of the model's p(x)
    x: np.ndarray  # [m, D]             the test points
    posterior_z: np.ndarray  # [m, latent]  z ~ q(z|x)
    reconstruction_means: np.ndarray  # [m, D]  f(z), z ~ q(z|x)
    reconstructions: np.ndarray  # [m, D]       x' ~ p(x|z), z ~ q(z|x)


def sampling_both_ways(model, x, n: int = 1000, seed: int = 0) -> BothWays:
    """n draws of x ~ p(x) by two steps (z ~ p(z), then x ~ p(x|z)), and for each test point x [m, D] a
    reconstruction x' ~ p(x|z) with z ~ q(z|x)."""
    prior = prior_decodes(model, _int_in("n", n, 1, 10_000_000), seed=seed)
    recon = reconstructions(model, np.asarray(x, np.float32), seed=seed + 2)
    return BothWays(prior.z, prior.mean, prior.sample, recon.x, recon.z, recon.mean, recon.sample)


# --- one point, all four densities ---------------------------------------------------------------------------------
@dataclass
class OnePoint:
    x: np.ndarray  # [D]
    log_px: float  # nats
    method: str  # "exact" (linear-Gaussian), "quadrature" (latent <= 2) or "importance"
    elbo: float  # E_q[log p(x|z)] - KL(q(z|x) || p(z)), Monte Carlo
    reconstruction: float  # E_q[log p(x|z)]
    kl: float  # KL(q(z|x) || p(z))
    kl_true_posterior: float | None  # KL(q(z|x) || p(z|x)) computed on its own (closed form or on a latent grid)
    posterior: object | None  # views.PosteriorPicture: axes, log_true = log p(z|x), log_q = log q(z|x) (latent <= 2)

    @property
    def gap(self) -> float:
        """log p(x) - ELBO = KL(q(z|x) || p(z|x))."""
        return self.log_px - self.elbo


def one_point(model, x1, *, grid: int = 121, k: int = 5000, elbo_samples: int | None = None) -> OnePoint:
    """log p(x), the ELBO, the gap and p(z|x) beside q(z|x) for ONE point x1 [D] (from `views.what_is_px`, whose
    ELBO takes `elbo_samples` draws of z ~ q(z|x), by default 20 000 for a small decoder; for latent_dim > 2,
    log p(x) by importance sampling with k samples)."""
    x1 = np.asarray(x1, np.float32).reshape(tuple(model.event_shape))
    w = what_is_px(model, x1, ks=(1,), grid=grid, elbo_samples=elbo_samples)
    log_px, method = w.log_px, w.method
    if log_px is None:
        log_px, method = float(evaluation.log_px_importance(model, x1[None], k=k)[0]), "importance"
    return OnePoint(x1, float(log_px), method, float(w.elbo), float(w.reconstruction), float(w.kl),
                    w.kl_true_posterior, w.picture)


__all__ = [
    "LATENT_REACH", "DEFAULT_LATENT_GRID", "method_for", "decoder_gaussians", "prior_box", "LatentQuadrature",
    "latent_quadrature", "log_px_at", "plane_extent", "grid_axes", "DensityGrid", "density_grid", "MixtureDensity",
    "mixture_density", "BothWays", "sampling_both_ways", "OnePoint", "one_point",
]
