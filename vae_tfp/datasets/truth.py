"""The true density p(x) of the synthetic data sets, computed from each generator's own noise process.

No TensorFlow: numpy and scipy only. `true_density(name)` returns a `TrueDensity` (or None where the truth is not
known: digits, images, user data); its `method` says how the density is computed.

    two_moons   sklearn make_moons(n, noise=0.1): n // 2 positions t_i = linspace(0, pi) on the upper half circle
                (cos t, sin t), the rest on the lower one (1 - cos t, 1/2 - sin t), then N(0, 0.1^2 I) noise, so
                    p(x) = (1/n) sum_i N(x; c_i, 0.1^2 I)
                exactly (numerical integration over the position along the half circles, on the generator's own
                evenly spaced nodes).
    rings       sklearn make_circles(n, factor=0.5, noise=0.05): radius r = 1 or 0.5 (half the points each), angle
                on an even grid over [0, 2 pi), then N(0, 0.05^2 I) noise. The integral over the angle is closed:
                    p(x | r) = exp(-(|x|^2 + r^2) / (2 s^2)) I0(|x| r / s^2) / (2 pi s^2)
                (I0 the modified Bessel function; the generator's 3000 even angles give the same to ~1e-12).
    pinwheel    f = (f0, f1) ~ N((1, 0), diag(0.3^2, 0.05^2)), arm k uniform of 5, a = 2 pi k / 5 + 0.25 exp(f0),
                x = R(-a) f (a rotation by -a). Change of variables: |x| = |f| = rho, and with f = rho (cos psi,
                sin psi) the angle of x is phi = psi - a, so the preimages of x are the roots psi of
                    g(psi) = psi - 0.25 exp(rho cos psi) = phi + 2 pi k / 5   (mod 2 pi)
                found by a scan over [0, 2 pi), bisection and Newton steps, and
                    p(x) = (1/5) sum_k sum_roots N(f0; 1, 0.3^2) N(f1; 0, 0.05^2) / |1 + 0.25 exp(f0) f1|
                (the Jacobian determinant of f -> x is 1 + 0.25 exp(f0) f1).
    linear_gaussian, linear_gaussian_2d   x = z W + b + sigma eps: p(x) = N(b, W^T W + sigma^2 I), closed form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vae_tfp.gaussian_mixture import BUDGET, grid_mesh, log_density_at, log_density_grid

from . import builtin

N_POINTS = builtin.N_TRAIN_POINTS + builtin.N_TEST_POINTS  # the generators are called once for train + test


@dataclass(frozen=True)
class TrueDensity:
    """p(x) of a data set's generator. `log_prob(x)`: x [n, D] -> [n] nats (float64)."""

    dataset: str
    method: str  # how the density is computed, in words
    dim: int
    log_prob: Callable[[np.ndarray], np.ndarray]
    grid: Callable | None = None  # a faster log p on a 2-D product grid: axes -> [G0, G1]

    def log_density_grid(self, axes) -> np.ndarray:
        """log p(x) on the grid x = (axes[0][i], axes[1][j]) -> [G0, G1] (indexing "ij")."""
        if self.dim != 2:
            raise ValueError(f"{self.dataset} has {self.dim}-D points; a grid over the plane needs 2-D points")
        if self.grid is not None:
            return self.grid(axes)
        return self.log_prob(grid_mesh(axes).reshape(-1, 2)).reshape(len(axes[0]), len(axes[1]))


# --- two moons: the generator's own positions, then isotropic noise --------------------------------------------
def moons_centres(n: int = N_POINTS) -> np.ndarray:
    """The noise-free positions make_moons(n, shuffle=False) produces -> [n, 2] (sklearn's formula)."""
    n_out, n_in = n // 2, n - n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], axis=1)
    return np.concatenate([outer, inner])


def two_moons(n: int = N_POINTS, noise: float = builtin.MOONS_NOISE) -> TrueDensity:
    centres = moons_centres(n)
    log_w = np.full(len(centres), -math.log(len(centres)))
    return TrueDensity(
        "two_moons",
        f"exact: the average of N(x; c_i, {noise:g}^2 I) over make_moons' {len(centres)} evenly spaced positions c_i "
        "on the two half circles (numerical integration over the generator's position along the half circles, on "
        "its own nodes)",
        2,
        lambda x: log_density_at(x, centres, noise, log_w),
        lambda axes: log_density_grid(axes, centres, noise, log_w),
    )


# --- rings: closed form over the angle ---------------------------------------------------------------------------
def ring_log_prob(x, radius: float, noise: float) -> np.ndarray:
    """log of the integral over a uniform angle t of N(x; radius (cos t, sin t), noise^2 I) -> [n]."""
    from scipy.special import i0e

    rho = np.linalg.norm(np.asarray(x, np.float64).reshape(-1, 2), axis=1)
    s2 = noise**2
    # exp(-(rho^2 + r^2)/(2 s2)) I0(rho r / s2) = exp(-(rho - r)^2 / (2 s2)) i0e(rho r / s2)
    return -math.log(2 * math.pi * s2) - (rho - radius) ** 2 / (2 * s2) + np.log(i0e(rho * radius / s2))


def circles_centres(n: int = N_POINTS, factor: float = builtin.RINGS_FACTOR) -> np.ndarray:
    """The noise-free positions make_circles(n, factor, shuffle=False) produces -> [n, 2] (sklearn's formula)."""
    n_out, n_in = n // 2, n - n // 2
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    return np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                           factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)])


def rings(n: int = N_POINTS, factor: float = builtin.RINGS_FACTOR, noise: float = builtin.RINGS_NOISE) -> TrueDensity:
    n_out, n_in = n // 2, n - n // 2

    def log_prob(x):
        return np.logaddexp(math.log(n_out / n) + ring_log_prob(x, 1.0, noise),
                            math.log(n_in / n) + ring_log_prob(x, factor, noise))

    return TrueDensity(
        "rings",
        f"closed form: the integral over the generator's uniform angle of N(x; r (cos t, sin t), {noise:g}^2 I), "
        f"exp(-(|x|^2 + r^2) / 2s^2) I0(|x| r / s^2) / (2 pi s^2), for r = 1 and r = {factor:g}, half the points "
        "each",
        2,
        log_prob,
    )


# --- pinwheel: change of variables -------------------------------------------------------------------------------
MAX_SCAN = 2**15  # scan nodes over [0, 2 pi): enough for |x| <= 8 (see `_scan_nodes`)
MIN_SCAN = 64


def _speed(psi, rho_max: float, rate: float):
    """An upper bound on |u'(psi)| = |1 + rate exp(rho cos psi) rho sin psi| for every rho <= rho_max."""
    return 1 + rate * rho_max * np.maximum(1.0, np.exp(rho_max * np.cos(psi)))


def _scan_nodes(rho_max: float, rate: float) -> np.ndarray:
    """Scan nodes over [0, 2 pi] between which u = g(psi) - theta moves by at most pi/4 (so no multiple of 2 pi is
    stepped over): evenly spaced in the bound's integral S(psi) = int_0^psi speed, dense where u turns fast."""
    fine = np.linspace(0.0, 2 * np.pi, 4097)
    speed = _speed(fine, rho_max, rate)  # monotone between 0 and pi and between pi and 2 pi: a cell's max is an end
    cumulative = np.concatenate([[0.0], np.cumsum(np.maximum(speed[1:], speed[:-1]) * (fine[1] - fine[0]))])
    count = int(min(MAX_SCAN, max(MIN_SCAN, math.ceil(cumulative[-1] / (np.pi / 4)))))
    return np.interp(np.linspace(0.0, cumulative[-1], count + 1), cumulative, fine)


def pinwheel_log_prob(x, radial_std: float = builtin.PINWHEEL_RADIAL_STD,
                      tangential_std: float = builtin.PINWHEEL_TANGENTIAL_STD, arms: int = builtin.PINWHEEL_ARMS,
                      rate: float = builtin.PINWHEEL_RATE, bisections: int = 14, newton: int = 3) -> np.ndarray:
    """log p(x) of `make_pinwheel` by change of variables (module docstring) -> [n]."""
    x = np.asarray(x, np.float64).reshape(-1, 2)
    out = np.empty(len(x))
    radius = np.linalg.norm(x, axis=1)
    order = np.argsort(radius)  # chunks of similar radius share one scan
    start = 0
    while start < len(x):
        size = 64
        while True:  # double the chunk while the next one (its scan set by its largest radius) fits the budget
            stop = min(len(x), start + size)
            psi = _scan_nodes(float(radius[order[stop - 1]]), rate)
            if stop == len(x) or 2 * size * len(psi) * arms > BUDGET:
                break
            size *= 2
        idx = order[start:stop]
        out[idx] = _pinwheel_chunk(x[idx], psi, radial_std, tangential_std, arms, rate, bisections, newton)
        start = stop
    return out


def _pinwheel_chunk(x, psi, radial_std, tangential_std, arms, rate, bisections, newton):
    rho = np.linalg.norm(x, axis=1)[:, None, None]  # [n, 1, 1]
    theta = (np.arctan2(x[:, 1], x[:, 0])[:, None] + 2 * np.pi * np.arange(arms) / arms)[:, :, None]  # [n, K, 1]

    def s(psi):  # sin(u / 2) is zero exactly where u = g(psi) - theta is a multiple of 2 pi
        return np.sin(0.5 * (psi - rate * np.exp(rho * np.cos(psi)) - theta))

    psi = psi[None, None, :]  # [1, 1, M + 1]
    values = s(psi)  # [n, K, M + 1]
    i, k, m = np.nonzero((values[..., :-1] * values[..., 1:] < 0) | (values[..., :-1] == 0))
    lo, hi = psi[0, 0, m], psi[0, 0, m + 1]  # one bracket per root, [R]
    s_lo = values[i, k, m]
    r, th = rho[i, 0, 0], theta[i, k, 0]

    def u(p):  # g(psi) - theta, [R]
        return p - rate * np.exp(r * np.cos(p)) - th

    for _ in range(bisections):  # narrow each bracket until u moves by < 1e-4 across it
        mid = 0.5 * (lo + hi)
        s_mid = np.sin(0.5 * u(mid))
        left = s_lo * s_mid <= 0
        hi = np.where(left, mid, hi)
        lo, s_lo = np.where(left, lo, mid), np.where(left, s_lo, s_mid)
    root = 0.5 * (lo + hi)
    target = 2 * np.pi * np.round(u(root) / (2 * np.pi))  # the multiple of 2 pi that u crosses in the bracket
    for _ in range(newton):  # then Newton on u(psi) = target: u' = 1 + rate exp(rho cos psi) rho sin psi
        root = np.clip(root - (u(root) - target) / (1 + rate * np.exp(r * np.cos(root)) * r * np.sin(root)), lo, hi)
    f0, f1 = r * np.cos(root), r * np.sin(root)
    log_jacobian = np.log(np.abs(1 + rate * np.exp(f0) * f1))
    log_c = (-0.5 * ((f0 - 1.0) / radial_std) ** 2 - 0.5 * (f1 / tangential_std) ** 2
             - math.log(2 * math.pi * radial_std * tangential_std) - log_jacobian - math.log(arms))  # [R]
    top = np.full(len(x), -np.inf)
    np.maximum.at(top, i, log_c)
    total = np.zeros(len(x))
    np.add.at(total, i, np.exp(log_c - top[i]))
    with np.errstate(divide="ignore"):
        return np.log(total) + top


def pinwheel() -> TrueDensity:
    return TrueDensity(
        "pinwheel",
        "change of variables: the radial and tangential Gaussian features f pushed through the arm's rotation "
        "x = R(-a(f0)) f; all preimages of x per arm by a scan and bisection over the angle, each weighted by "
        "1 / |Jacobian determinant| = 1 / |1 + 0.25 exp(f0) f1|",
        2,
        pinwheel_log_prob,
    )


# --- linear-Gaussian: closed form --------------------------------------------------------------------------------
def gaussian_log_prob(x, mean, cov) -> np.ndarray:
    """log N(x; mean, cov) -> [n], by a Cholesky factor."""
    x = np.asarray(x, np.float64).reshape(-1, len(mean))
    chol = np.linalg.cholesky(cov)
    from scipy.linalg import solve_triangular

    y = solve_triangular(chol, (x - mean).T, lower=True)  # [D, n]
    return (-0.5 * np.sum(y**2, axis=0) - np.sum(np.log(np.diag(chol)))
            - 0.5 * len(mean) * math.log(2 * math.pi))


def linear_gaussian_density(name: str, truth: dict) -> TrueDensity:
    w, b, sigma = np.asarray(truth["W"], np.float64), np.asarray(truth["b"], np.float64), float(truth["sigma"])
    cov = w.T @ w + sigma**2 * np.eye(len(b))
    return TrueDensity(
        name,
        f"closed form: x = z W + b + sigma eps gives p(x) = N(b, W^T W + sigma^2 I) with sigma = {sigma:g}",
        len(b),
        lambda x: gaussian_log_prob(x, b, cov),
    )


TRUTHS: dict[str, Callable[[], TrueDensity]] = {
    "two_moons": two_moons,
    "rings": rings,
    "pinwheel": pinwheel,
    "linear_gaussian": lambda: linear_gaussian_density("linear_gaussian", builtin.linear_gaussian_truth()),
    "linear_gaussian_2d": lambda: linear_gaussian_density("linear_gaussian_2d", builtin.linear_gaussian_2d_truth()),
}


def true_density(name) -> TrueDensity | None:
    """The true p(x) of the registered data set `name`, or None where it is not known (images, user data)."""
    if not isinstance(name, str):
        return None
    build = TRUTHS.get(name.strip().lower().replace("-", "_"))
    return None if build is None else build()


__all__ = ["TrueDensity", "true_density", "TRUTHS", "moons_centres", "circles_centres", "ring_log_prob",
           "pinwheel_log_prob", "gaussian_log_prob"]
