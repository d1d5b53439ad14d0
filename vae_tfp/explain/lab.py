"""The density lab (2-D point data): what the dashboard's lab draws, computed headless. The math is in
`vae_tfp.density` (the model's p(x)) and `vae_tfp.datasets.truth` (the data's true p(x)); this module puts them on
one plane and adds the numbers that compare them.

    axes = lab.plane_axes(lab.data_extent(x_train), grid=200)   # the plane: the data's box, padded; fixed per data
    model_side = lab.model_plane(model, axes, x_test)            # log p(x) on the grid and at the test points
    truth = lab.truth_plane("two_moons", axes, x_test)           # the data's true density there (None: not known)
    gap = lab.distance(truth.test_log_px, model_side.test_log_px)    # mean log p_true(x) - log p_model(x)
    curve = lab.mixture_curve(model, x_test, model_side.test_log_px)  # mean |log p_K(x) - log p(x)| per K

How far the model is from the data's density: over test points x ~ p_true,
    mean_x [log p_true(x) - log p_model(x)]  ->  E_{x ~ p_true}[log p_true(x) / p_model(x)] = KL(p_true || p_model)
an unbiased Monte-Carlo estimate (>= 0 in expectation; 0 only when the model's p(x) is the truth), with the
standard error std / sqrt(n) over the test points.

The plane is fixed by the data (not by the model), so a replay of snapshots and a live refresh draw every step on
the same axes; the model's mass that falls outside it shows as `integral` < 1.
"""

import math
from dataclasses import dataclass

import numpy as np

from vae_tfp import density
from vae_tfp.datasets.truth import true_density
from vae_tfp.gaussian_mixture import grid_integral

PAD = 0.15  # the plane: the data's box padded by 15 % of its longer side on every side
LAB_GRID = {"quadrature": 200, "importance": 80}  # data grid points per axis (importance sampling is dearer)
MIXTURE_KS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000)  # the K the lab offers
MIXTURE_SEED = 0  # one draw of z_k for every K, so a larger K adds components
STEP_LIMIT, STEP_TARGET = 2.0, 1.5  # refine the latent grid when f moves more than 2 sigma between neighbours
REFINED_MAX = {1: 20_000, 2: 400}  # the refined latent grid's points per dimension, at most


def data_extent(points, pad: float = PAD) -> tuple[tuple[float, float], tuple[float, float]]:
    """((lo_0, hi_0), (lo_1, hi_1)): the box around points [n, 2] padded by `pad` x its longer side."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if len(points) == 0 or not np.all(np.isfinite(points)):
        raise ValueError("the plane needs at least one finite 2-D point")
    lo, hi = points.min(axis=0), points.max(axis=0)
    margin = pad * max(float(np.max(hi - lo)), 1e-6)
    return tuple((float(a - margin), float(b + margin)) for a, b in zip(lo, hi))


def plane_axes(extent, grid: int = LAB_GRID["quadrature"]) -> list:
    """Two evenly spaced axes [grid] over the extent (`density.grid_axes`)."""
    return density.grid_axes(extent, grid)


def lab_grid(model) -> int:
    """Data grid points per axis for this model: 200 by quadrature (latent <= 2), 80 by importance sampling."""
    return LAB_GRID[density.method_for(model)]


@dataclass
class ModelPlane:
    """The model's log p(x) on the plane and at the test points."""

    grid: density.DensityGrid  # .axes, .log_density [G, G], .method, .integral, .prior_mass, .latent_step, ...
    test_log_px: np.ndarray  # [n]  log p(x) at the test points (same quadrature; importance sampling above 2-D)

    @property
    def test_mean(self) -> float:
        return float(np.mean(self.test_log_px))

    @property
    def test_stderr(self) -> float:
        return _stderr(self.test_log_px)


def model_plane(model, axes, x_test, *, latent_grid: int | None = None) -> ModelPlane:
    """log p(x) of the model on the grid `axes` and at the test points x_test [n, 2] (one latent quadrature serves
    both; latent > 2: importance sampling, k = density.GRID_K per grid point and density.TEST_K per test point).

    Quadrature's error grows fast with `latent_step`, the decoder's largest move between neighbouring latent grid
    points in units of sigma (see `vae_tfp.density`): when the default grid gives a step above 2 (a sharp decoder
    against a small sigma), the grid is refined once so the step comes to about 1.5 (at most REFINED_MAX points per
    dimension); `plane.grid.latent_grid` says which grid was used."""
    extent = tuple((float(a[0]), float(a[-1])) for a in axes)
    plane = density.density_grid(model, len(axes[0]), extent=extent, latent_grid=latent_grid)
    step = plane.latent_step
    if latent_grid is None and step is not None and step > STEP_LIMIT:
        finer = min(REFINED_MAX[model.latent_dim], math.ceil(plane.latent_grid * step / STEP_TARGET))
        if finer > plane.latent_grid:
            seconds = plane.seconds
            plane = density.density_grid(model, len(axes[0]), extent=extent, latent_grid=finer)
            plane.seconds += seconds  # the time of both grids
    return ModelPlane(plane, density.log_px_at(model, x_test, quadrature=plane.quadrature))


@dataclass
class TruthPlane:
    """The data's true log p(x) on the plane and at the test points."""

    dataset: str
    method: str  # how it is computed, in words (closed form, numerical integration, change of variables)
    axes: list
    log_density: np.ndarray  # [G, G]
    integral: float  # sum of p_true over the grid x cell area: the truth's mass on the plane
    test_log_px: np.ndarray  # [n]

    @property
    def test_mean(self) -> float:
        return float(np.mean(self.test_log_px))

    @property
    def test_stderr(self) -> float:
        return _stderr(self.test_log_px)


def truth_plane(dataset: str, axes, x_test) -> TruthPlane | None:
    """The true density of a registered 2-D data set on the grid `axes` and at x_test [n, 2]; None where the truth
    is not known (user data, images) or the points are not 2-D."""
    truth = true_density(dataset)
    if truth is None or truth.dim != 2:
        return None
    log_density = truth.log_density_grid(axes)
    return TruthPlane(truth.dataset, truth.method, axes, log_density, grid_integral(axes, log_density),
                      truth.log_prob(np.asarray(x_test, np.float64).reshape(-1, 2)))


@dataclass
class Distance:
    """mean over test x of log p_true(x) - log p_model(x): a Monte-Carlo estimate of KL(p_true || p_model)."""

    kl: float  # nats
    stderr: float  # standard error over the test points
    n: int


def distance(true_log_px, model_log_px) -> Distance:
    """KL(p_true || p_model) estimated on test points drawn from p_true (see the module docstring)."""
    diff = np.asarray(true_log_px, np.float64) - np.asarray(model_log_px, np.float64)  # [n]
    if diff.ndim != 1 or len(diff) == 0:
        raise ValueError(f"distance needs two equally long 1-D arrays of log densities, got shape {diff.shape}")
    return Distance(float(np.mean(diff)), _stderr(diff), len(diff))


@dataclass
class MixtureCurve:
    """How fast p_K(x) = (1/K) sum_k N(x; f(z_k), sigma^2), z_k ~ p(z), approaches p(x) at the test points."""

    ks: np.ndarray  # [m]
    mean_abs_error: np.ndarray  # [m]  mean over the test points of |log p_K(x) - log p(x)|


def mixture_curve(model, x_test, log_px, ks=MIXTURE_KS, seed: int = MIXTURE_SEED) -> MixtureCurve:
    """mean |log p_K(x) - log p(x)| over x_test for each K in ks (the same z_k draw for every K, as in
    `density.mixture_density`)."""
    ks = np.array(sorted({int(k) for k in ks}))
    errors = [density.mixture_density(model, int(k), x=x_test, log_px=log_px, seed=seed).mean_abs_error for k in ks]
    return MixtureCurve(ks, np.array(errors, np.float64))


def _stderr(values) -> float:
    values = np.asarray(values, np.float64)
    return float(np.std(values) / math.sqrt(len(values))) if len(values) > 1 else float("nan")


__all__ = ["PAD", "LAB_GRID", "MIXTURE_KS", "data_extent", "plane_axes", "lab_grid", "ModelPlane", "model_plane",
           "TruthPlane", "truth_plane", "Distance", "distance", "MixtureCurve", "mixture_curve"]
