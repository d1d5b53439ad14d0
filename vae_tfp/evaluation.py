"""Evaluation: how good is the model as a density p(x)?

    importance sampling   log p(x) ~= logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)],  z_k ~ q(z|x)
    linear-Gaussian       x = W z + b + sigma eps, z ~ N(0, I)  =>  p(x) = N(b, W^T W + diag(sigma^2))  exactly,
                          p(z|x) = N(M^-1 W Psi^-1 (x - b), M^-1),  M = I + W Psi^-1 W^T,  Psi = diag(sigma^2)
    quadrature (L <= 2)   log p(x) ~= logsumexp_g [log p(x|z_g) + log p(z_g)] + log(cell area) on a grid over z;
                          p(z_g|x) = p(x|z_g) p(z_g) / p(x) is the true posterior on that grid
    KL to p(z|x)          KL(q(z|x) || p(z|x)) = log p(x) - ELBO, computed on its own: in closed form against the
                          exact posterior (linear-Gaussian), else ~= sum_g q(z_g|x) cell (log q(z_g|x) - log p(z_g|x))
    ELBO terms            reconstruction = E_q[log p(x|z)], kl = KL(q(z|x) || p(z)), elbo = reconstruction - kl,
                          with many samples of z in bounded-memory chunks
    prior marginals       p(z_dims) of the diagonal-component priors: keep the chosen coordinates of each component
    active units          A_u = Cov_x(E_q(z|x)[z_u]) > 0.01 (Burda et al. 2015)
    mutual information    I_q(x; z) = E_x[E_q(z|x) log q(z|x)] - E_z[log q(z)],  q(z) = (1/N) sum_n q(z|x_n) the
                          aggregate posterior over N examples, both terms by Monte Carlo on the same z_n ~ q(z|x_n)
                          (He et al. 2019, "Lagging inference networks"): 0 <= I <= log N

W is [latent, D] here (x = z W + b for row vectors), the layout of the linear decoder's Dense kernel.
"""

import math
from dataclasses import dataclass

import numpy as np

from vae_tfp._tf import tf, tfd
from vae_tfp.objectives import elbo_terms, factorized_kl, kl_factorizes, log_importance_weights, log_mean_exp

MAX_POINTS = 2**15  # samples x images per compiled chunk: bounds memory to ~MAX_POINTS x D floats


# --- importance sampling --------------------------------------------------------------------------------------
def _compiled_log_weights(model):
    """A tf.function log w [k, batch] kept on the model, so repeated evaluations do not retrace."""
    fn = getattr(model, "_eval_log_weights", None)
    if fn is None:
        fn = tf.function(lambda x, k: log_importance_weights(model, x, k), reduce_retracing=True)
        model._eval_log_weights = fn
    return fn


def log_weights(model, x, k: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """All k log importance weights for each image: [k, batch] (numpy), computed in bounded-memory chunks."""
    x = np.asarray(x, np.float32)
    model.likelihood_head.check_support(x)
    fn = _compiled_log_weights(model)
    per_images = max(1, max_points // k)
    k_chunk = min(k, max_points)
    out = np.empty((k, len(x)), np.float32)
    for i in range(0, len(x), per_images):
        xb = tf.constant(x[i:i + per_images])
        for j in range(0, k, k_chunk):
            kk = min(k_chunk, k - j)
            out[j:j + kk, i:i + per_images] = fn(xb, kk).numpy()
    return out


def log_px_importance(model, x, k: int = 1000, max_points: int = MAX_POINTS, batch: int | None = None) -> np.ndarray:
    """Importance-sampled log p(x) with k samples from q(z|x) -> [n] (nats).

    Memory stays bounded: images are taken `batch` at a time (default: as many as fit `max_points` samples x images)
    and the k samples in chunks, combined by a running logsumexp (float64), so 10 000 images x k = 5000 need only
    the chunk's memory.
    """
    if int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    x = np.asarray(x, np.float32)
    model.likelihood_head.check_support(x)
    fn = _compiled_log_weights(model)
    k_chunk = min(int(k), max_points)
    batch = batch or max(1, max_points // k_chunk)
    result = np.empty(len(x))
    for i in range(0, len(x), batch):
        xb = tf.constant(x[i:i + batch])
        running = np.full(len(xb), -np.inf)
        for j in range(0, k, k_chunk):
            lw = fn(xb, min(k_chunk, k - j)).numpy().astype(np.float64)  # [kk, b]
            running = np.logaddexp(running, _logsumexp(lw, axis=0))
        result[i:i + batch] = running - math.log(k)
    return result


def _logsumexp(a, axis):
    m = np.max(a, axis=axis)
    return m + np.log(np.sum(np.exp(a - np.expand_dims(m, axis)), axis=axis))


def iwae_curve(log_w: np.ndarray, ks) -> np.ndarray:
    """IWAE_k for each k in `ks` from one set of K log weights [K, batch]: the mean of the bound over the
    floor(K/k) disjoint groups of k samples (k = 1 is the ELBO estimate, k = K the importance-sampled log p(x)).
    Returns [len(ks), batch]."""
    return iwae_spread(log_w, ks)[0]


def iwae_spread(log_w: np.ndarray, ks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, standard error, groups) of IWAE_k for each k in `ks` over the floor(K/k) disjoint groups of k of the K
    log weights [K, batch]: mean and s.e. [len(ks), batch], groups [len(ks)]. The s.e. is the spread of one group's
    estimate over the groups, / sqrt(groups); NaN where there is one group (no spread to measure)."""
    log_w = np.asarray(log_w, np.float64)
    total = log_w.shape[0]
    means, sems, counts = [], [], []
    for k in ks:
        if not 1 <= k <= total:
            raise ValueError(f"k={k} must lie in [1, {total}] (the number of log weights given)")
        groups = total // k
        g = log_w[: groups * k].reshape(groups, k, -1)
        estimates = _logsumexp(g, axis=1) - math.log(k)  # [groups, batch]
        means.append(estimates.mean(axis=0))
        sems.append(estimates.std(axis=0, ddof=1) / math.sqrt(groups) if groups > 1
                    else np.full(estimates.shape[1], np.nan))
        counts.append(groups)
    return np.stack(means), np.stack(sems), np.array(counts)


@dataclass
class ELBOEstimate:
    """The ELBO's terms per image (nats, float64): elbo = reconstruction - kl."""

    reconstruction: np.ndarray  # [batch]  E_q[log p(x|z)], Monte Carlo
    kl: np.ndarray  # [batch]              KL(q(z|x) || p(z)), analytic where TFP has it, else Monte Carlo

    @property
    def elbo(self) -> np.ndarray:
        return self.reconstruction - self.kl


def elbo_estimate(model, x, n_samples: int = 1, max_points: int | None = None) -> ELBOEstimate:
    """The ELBO terms of each image of x [batch, *event] with n_samples z ~ q(z|x) per image.

    Memory stays bounded: at most `max_points` (samples x images) decodes at once (default `decode_chunk(model)`);
    a term over n samples taken in chunks of n_c is sum_c (n_c / n) mean_c, so the chunking changes nothing but
    the memory."""
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    x = np.asarray(x, np.float32)
    model.likelihood_head.check_support(x)
    points = int(max_points or decode_chunk(model))
    k_chunk = min(n_samples, points)
    per_images = max(1, points // k_chunk)
    reconstruction, kl = np.zeros(len(x)), np.zeros(len(x))
    for i in range(0, len(x), per_images):
        xb = tf.constant(x[i:i + per_images])
        for j in range(0, n_samples, k_chunk):
            kk = min(k_chunk, n_samples - j)
            terms = elbo_terms(model, xb, n_samples=kk)
            reconstruction[i:i + per_images] += terms.reconstruction.numpy().astype(np.float64) * (kk / n_samples)
            kl[i:i + per_images] += terms.kl.numpy().astype(np.float64) * (kk / n_samples)
    return ELBOEstimate(reconstruction, kl)


# --- the linear-Gaussian model: exact p(x) and p(z|x) ---------------------------------------------------------
@dataclass
class LinearGaussian:
    """x = z W + b + sigma eps, z ~ N(0, I_L): W [L, D], b [D], sigma [D] (float64 numpy)."""

    W: np.ndarray
    b: np.ndarray
    sigma: np.ndarray

    def marginal(self) -> tfd.Distribution:
        """p(x) = N(b, W^T W + diag(sigma^2)), event [D]."""
        cov = self.W.T @ self.W + np.diag(self.sigma**2)
        return tfd.MultivariateNormalTriL(loc=self.b, scale_tril=np.linalg.cholesky(cov))

    def log_px(self, x) -> np.ndarray:
        """Exact log p(x) -> [batch], x [batch, D]."""
        return self.marginal().log_prob(np.asarray(x, np.float64).reshape(len(x), -1)).numpy()

    def posterior(self, x) -> tfd.Distribution:
        """Exact p(z|x) = N(M^-1 W Psi^-1 (x - b), M^-1), M = I + W Psi^-1 W^T; batch [batch], event [L]."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        w_scaled = self.W / self.sigma**2  # W Psi^-1, [L, D]
        precision = np.eye(self.W.shape[0]) + w_scaled @ self.W.T  # M, [L, L]
        cov = np.linalg.inv(precision)
        mean = (x - self.b) @ w_scaled.T @ cov  # [batch, L]  (M symmetric)
        return tfd.MultivariateNormalTriL(loc=mean, scale_tril=np.linalg.cholesky(cov))


def is_linear_gaussian(model) -> bool:
    """True when log p(x) is exact: a linear network, a Gaussian likelihood and a standard-normal prior (as the
    model's registry entries say)."""
    return (model.network_family.linear and model.likelihood_family.gaussian
            and model.prior_family.standard_normal)


def linear_gaussian(model) -> LinearGaussian:
    """The model's decoder as W, b, sigma; ValueError if the model is not linear-Gaussian."""
    if not is_linear_gaussian(model):
        raise ValueError(
            "exact log p(x) needs a linear-Gaussian model: network='linear', likelihood='gaussian', "
            f"prior='standard_normal'; this model has network={model.network_family.name!r}, "
            f"likelihood={model.likelihood_family.name!r}, prior={model.prior_family.name!r}"
        )
    dense = [layer for layer in model.decoder.layers if hasattr(layer, "kernel")]
    kernel, bias = (v.numpy().astype(np.float64) for v in (dense[0].kernel, dense[0].bias))
    dim = kernel.shape[1]
    sigma = np.broadcast_to(model.likelihood_head.sigma().numpy().astype(np.float64).reshape(-1), (dim,)).copy()
    return LinearGaussian(W=kernel, b=bias, sigma=sigma)


def exact_log_px(model, x) -> np.ndarray:
    """Exact log p(x) of a linear-Gaussian model -> [batch]."""
    return linear_gaussian(model).log_px(x)


def exact_posterior(model, x) -> tfd.Distribution:
    """Exact p(z|x) of a linear-Gaussian model."""
    return linear_gaussian(model).posterior(x)


def kl_to_exact_posterior(model, x) -> np.ndarray:
    """KL(q(z|x) || p(z|x)) -> [batch] in closed form (float64) against the exact posterior of a linear-Gaussian
    model: KL(N(m0, S0) || N(m1, S1)) = 1/2 [tr(S1^-1 S0) + (m1 - m0)^T S1^-1 (m1 - m0) - L + ln(det S1 / det S0)]."""
    q = model.encode(np.asarray(x, np.float32))
    q64 = tfd.MultivariateNormalTriL(q.mean().numpy().astype(np.float64),
                                     np.linalg.cholesky(q.covariance().numpy().astype(np.float64)))
    return tfd.kl_divergence(q64, exact_posterior(model, x)).numpy()


def decode_chunk(model, most: int = MAX_POINTS, budget: int = 2**24) -> int:
    """How many z to decode at once so the decoder's outputs stay within `budget` floats (a categorical
    likelihood on 28x28 images has 784 x 256 outputs per z)."""
    per_z = int(np.prod(model.event_shape)) * int(model.likelihood_head.params_per_dim)
    return int(max(1, min(most, budget // per_z)))


# --- quadrature over a 1-D or 2-D latent ----------------------------------------------------------------------
@dataclass
class GridPosterior:
    """The true posterior of one image on a grid: axes[i] [G], log_post [G] or [G, G] (normalised log density)."""

    axes: list
    log_joint: np.ndarray  # log p(x|z_g) + log p(z_g)
    log_px: float  # log of the grid sum, times the cell area

    @property
    def log_post(self) -> np.ndarray:
        return self.log_joint - self.log_px


def grid_mesh(axes) -> np.ndarray:
    """The points of the grid with one axis [G_i] per dimension -> [G_1, ..., G_d, d] (indexing "ij")."""
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def box_grid(lo, hi, size: int) -> tuple[list, np.ndarray]:
    """A grid of `size` points per dimension over the box [lo, hi] (lo, hi [d]), ends included:
    (axes, d arrays [size]; mesh [size, ..., size, d])."""
    axes = [np.linspace(a, b, int(size)) for a, b in zip(np.atleast_1d(lo), np.atleast_1d(hi))]
    return axes, grid_mesh(axes)


def cell_volume(axes) -> float:
    """The volume of one cell of an evenly spaced grid: prod_i (axes[i][1] - axes[i][0])."""
    return float(np.prod([a[1] - a[0] for a in axes]))


def grid_moments(axes, log_density) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per latent dimension of a log density on a grid (indexing "ij"), normalised here."""
    mesh = grid_mesh(axes)  # [G, (G,) latent]
    p = np.exp(log_density - np.max(log_density))
    p = p / p.sum()  # cell probabilities
    mean = np.array([np.sum(p * mesh[..., i]) for i in range(len(axes))])
    var = np.array([np.sum(p * (mesh[..., i] - mean[i]) ** 2) for i in range(len(axes))])
    return mean, np.sqrt(np.maximum(var, 0))


def log_joint_on(model, x1, mesh) -> np.ndarray:
    """log p(x1|z) + log p(z) at every grid point of mesh [G, (G,) latent] -> [G, (G,)] (float64)."""
    z = tf.constant(mesh.reshape(-1, mesh.shape[-1]), tf.float32)  # [P, L]
    chunk = decode_chunk(model, 4096)
    out = []
    for i in range(0, len(z), chunk):
        zc = z[i:i + chunk]
        out.append((model.decode(zc).log_prob(x1) + model.prior_distribution().log_prob(zc)).numpy())
    return np.concatenate(out).astype(np.float64).reshape(mesh.shape[:-1])


def posterior_grid(model, x1, size: int | None = None, refine: int = 4) -> GridPosterior:
    """True posterior p(z|x) and log p(x) for ONE image x1 [*event] on a grid over a latent of dimension <= 2.

    Starts on a grid covering the prior (+-6 prior standard deviations around its mean), then narrows the grid to
    +-7 posterior standard deviations around the posterior mean while that gives a finer grid, so sharp posteriors
    are resolved.
    """
    latent = model.latent_dim
    if latent > 2:
        raise ValueError(f"quadrature needs latent_dim <= 2, this model has {latent}")
    size = size or (801 if latent == 1 else 121)
    x1 = np.asarray(x1, np.float32)[None]
    model.likelihood_head.check_support(x1)
    prior = model.prior_distribution()
    samples = prior.sample(4000, seed=tf.constant([0, 0])).numpy()  # a stateless seed: the same grid every call
    center, half = samples.mean(0), 6.0 * samples.std(0) + 1e-3
    for _ in range(refine + 1):
        axes, mesh = box_grid(center - half, center + half, size)
        log_joint = log_joint_on(model, x1, mesh)  # [G] or [G, G]
        log_px = float(_logsumexp(log_joint.reshape(-1), axis=0) + math.log(cell_volume(axes)))
        mean, std = grid_moments(axes, log_joint)
        new_half = np.maximum(7.0 * std, 4.0 * np.array([a[1] - a[0] for a in axes]))
        if np.all(new_half >= 0.7 * half):
            break
        center, half = mean, np.minimum(new_half, half)
    return GridPosterior(axes=axes, log_joint=log_joint, log_px=log_px)


def log_px_quadrature(model, x, size: int | None = None) -> np.ndarray:
    """log p(x) by quadrature over z (latent_dim <= 2) -> [batch]."""
    return np.array([posterior_grid(model, xi, size).log_px for xi in np.asarray(x, np.float32)])


@dataclass
class PosteriorsOnGrid:
    """The true posterior p(z|x) and the encoder's q(z|x) of one image on a grid over a 1-D or 2-D latent."""

    axes: list  # [G] per latent dimension
    log_true: np.ndarray  # [G] or [G, G]  log p(z|x) = log p(x|z) + log p(z) - log p(x)
    log_q: np.ndarray  # [G] or [G, G]     log q(z|x)


def posteriors_on_grid(model, x1, lo, hi, size: int, log_px: float) -> PosteriorsOnGrid:
    """log p(z|x) and log q(z|x) of ONE image x1 [*event] on a grid of `size` points per dimension over the box
    [lo, hi] of the latent; log_px is log p(x1) (exact or by quadrature), which normalises p(z|x)."""
    x = np.asarray(x1, np.float32)[None]  # [1, *event]
    axes, mesh = box_grid(lo, hi, size)  # mesh [G, (G,) latent]
    log_true = log_joint_on(model, x, mesh) - log_px  # log p(x|z) + log p(z) - log p(x)
    flat = mesh.reshape(-1, 1, mesh.shape[-1]).astype(np.float32)  # [P, 1, latent] against q's batch [1]
    log_q = model.encode(x).log_prob(flat).numpy().astype(np.float64).reshape(mesh.shape[:-1])
    return PosteriorsOnGrid(axes, log_true, log_q)


def kl_on_grid(grid: PosteriorsOnGrid) -> float:
    """KL(q(z|x) || p(z|x)) ~= sum_g q(z_g|x) cell (log q(z_g|x) - log p(z_g|x)), a Riemann sum over the grid
    (accurate when the grid holds q's mass and resolves both densities)."""
    return float(np.sum(np.exp(grid.log_q) * cell_volume(grid.axes) * (grid.log_q - grid.log_true)))


def kl_to_posterior_on_grid(model, x1, log_px: float, size: int = 121, reach: float = 6.0) -> float:
    """KL(q(z|x) || p(z|x)) of ONE image x1 [*event] (latent <= 2) on a grid over q's box mean +- reach std."""
    q = model.encode(np.asarray(x1, np.float32)[None])
    mean, std = q.mean().numpy()[0], q.stddev().numpy()[0]  # [latent]
    return kl_on_grid(posteriors_on_grid(model, x1, mean - reach * std, mean + reach * std, size, log_px))


def kl_to_true_posterior(model, x1, log_px: float | None = None, size: int = 121) -> float:
    """KL(q(z|x) || p(z|x)) of ONE image x1 [*event], computed on its own rather than as log p(x) - ELBO: in closed
    form for a linear-Gaussian model, else on a grid (latent <= 2) with log p(x1) given or by quadrature."""
    if is_linear_gaussian(model):
        return float(kl_to_exact_posterior(model, np.asarray(x1, np.float32)[None])[0])
    if model.latent_dim > 2:
        raise ValueError(f"KL(q(z|x) || p(z|x)) needs a linear-Gaussian model or latent_dim <= 2, this model has "
                         f"latent_dim {model.latent_dim}")
    if log_px is None:
        log_px = posterior_grid(model, x1, size).log_px
    return kl_to_posterior_on_grid(model, x1, log_px, size)


# --- latent usage -----------------------------------------------------------------------------------------------
KL_MC_SAMPLES = 64  # samples per example of the Monte Carlo KL per dimension (priors that are not diagonal Gaussians)


def active_units(model, x, threshold: float = 0.01):
    """(number of active units, Cov_x(E_q[z_u]) per dimension [latent]); a unit is active above `threshold`."""
    means = np.concatenate([model.encode(x[i:i + 1024]).mean().numpy() for i in range(0, len(x), 1024)])
    variances = means.var(axis=0)
    return int(np.sum(variances > threshold)), variances


def kl_per_dimension(model, x, n_samples: int = KL_MC_SAMPLES, seed: int = 0) -> np.ndarray:
    """Mean over x of KL(q(z_j|x) || p(z_j)) per latent dimension -> [latent].

    Exact (and summing to the KL) when q and p are both diagonal Gaussians; otherwise the KL between the
    one-dimensional marginals, by Monte Carlo with `n_samples` z_j per example, which then need not sum to the joint
    KL.
    """
    x = np.asarray(x, np.float32)
    rows = [_kl_per_dim_tensor(model, model.encode(x[i:i + 1024]), n_samples, seed).numpy()
            for i in range(0, len(x), 1024)]
    return np.concatenate(rows).mean(axis=0)


def _kl_per_dim_tensor(model, q, n_samples: int, seed) -> tf.Tensor:
    """KL(q(z_j|x) || p(z_j)) per example and dimension -> [batch, latent]: closed form when it factorizes, else
    ~= mean_s [log q(z_js|x) - log p(z_js)] over n_samples z_js ~ q(z_j|x) (stateless seed [seed, 18])."""
    exact = factorized_kl(q, model.prior_distribution(), kl_factorizes(model))
    if exact is not None:
        return exact
    q_marg = tfd.Normal(q.mean(), q.stddev())  # batch [batch, latent]
    z = q_marg.sample(int(n_samples), seed=_stateless_seed(seed, 18))  # [S, batch, latent]
    log_p = model.prior.marginals().log_prob(z)  # p(z_j) per dimension, batch [latent] -> [S, batch, latent]
    return tf.reduce_mean(q_marg.log_prob(z) - log_p, axis=0)


def _stateless_seed(seed, salt: int) -> tf.Tensor:
    return tf.stack([tf.cast(seed, tf.int32), tf.constant(salt, tf.int32)])


def mutual_information(model, x, n_samples: int = 1, seed: int = 0) -> float:
    """I_q(x; z) in nats: the mutual information between x and z under the encoder's joint q(x, z) = p_data(x) q(z|x)
    on the N examples x [N, *event], as in He et al. 2019 (the lagging-encoder paper):

        I = E_x[E_q(z|x) log q(z|x)] - E_z[log q(z)],   q(z) = (1/N) sum_m q(z|x_m)  (the aggregate posterior)

    How: `n_samples` z_sn ~ q(z|x_n) per example (stateless seed [seed, 17]); the first term is the mean of
    log q(z_sn|x_n), the second the mean of log q(z_sn) = logsumexp_m log q(z_sn|x_m) - log N, a sum over all N
    posteriors ([samples, N, N] log densities, in float64; for a diagonal Gaussian q as two matrix products, without
    an [N, N, latent] intermediate). The z_sn are draws from q(z) itself (x_n ~ p_data, then z ~ q(z|x_n)), so this is
    the paper's E_z[log q(z)]. Its code takes the first term as minus q's entropy in closed form; pairing both terms
    on the same z removes most of the sampling noise (their difference is what varies), and makes the two limits
    exact: 0 when every x gets the same posterior (the code carries nothing about x: posterior collapse), log N when
    the posteriors do not overlap. q(z) is the aggregate over these N examples, which caps the estimate at log N:
    compare values on the same N."""
    x = np.asarray(x, np.float32)
    if len(x) < 1:
        raise ValueError("mutual_information needs at least one example")
    return float(_mutual_information_tensor(model.encode(x), n_samples, seed))


def _mutual_information_tensor(q, n_samples: int, seed) -> tf.Tensor:
    """I_q(x; z) as in `mutual_information`, from q(z|x_n) with batch [N] -> float64 scalar."""
    z = q.sample(int(n_samples), seed=_stateless_seed(seed, 17))  # [S, N, latent]
    if isinstance(q, tfd.MultivariateNormalDiag):
        log_q_all = _diagonal_log_prob_pairs(z, q.mean(), q.stddev())  # [S, N, N]
    else:
        log_q_all = tf.cast(q.log_prob(z[:, :, None, :]), tf.float64)  # z_sn against every q(.|x_m): [S, N, N]
    n = tf.cast(tf.shape(log_q_all)[-1], tf.float64)
    log_qz = tf.reduce_logsumexp(log_q_all, axis=-1) - tf.math.log(n)  # log q(z_sn): [S, N]
    log_q_own = tf.linalg.diag_part(log_q_all)  # log q(z_sn | x_n): [S, N]
    return tf.reduce_mean(log_q_own - log_qz)


def _diagonal_log_prob_pairs(z, loc, scale) -> tf.Tensor:
    """log N(z_sn; mu_m, diag s_m^2) for every pair (n, m) -> [S, N, M] float64, with
        sum_j (z_j - mu_j)^2 / s_j^2 = z^2 . (1 / s^2) - 2 z . (mu / s^2) + sum_j mu_j^2 / s_j^2
    as matrix products. z [S, N, latent]; loc, scale [M, latent]."""
    z, loc, scale = (tf.cast(t, tf.float64) for t in (z, loc, scale))
    precision = 1.0 / tf.square(scale)  # [M, latent]
    quadratic = (tf.einsum("snj,mj->snm", tf.square(z), precision) - 2.0 * tf.einsum("snj,mj->snm", z, loc * precision)
                 + tf.reduce_sum(tf.square(loc) * precision, -1))  # [S, N, M]
    log_norm = -tf.reduce_sum(tf.math.log(scale), -1) - 0.5 * tf.cast(tf.shape(loc)[-1], tf.float64) * math.log(
        2 * math.pi)  # [M]
    return log_norm - 0.5 * tf.maximum(quadratic, 0.0)


def _compiled_diagnostics(model):
    """A tf.function (x, seed) -> (E_q[z] [N, latent], mean KL per dimension [latent], I_q(x; z)) kept on the model:
    one compiled call per record instead of a dozen eager ones."""
    fn = getattr(model, "_eval_diagnostics", None)
    if fn is None:
        def terms(x, seed):
            q = model.encode(x)  # batch [N], event [latent]
            kl = tf.reduce_mean(_kl_per_dim_tensor(model, q, KL_MC_SAMPLES, seed), axis=0)  # [latent]
            return q.mean(), kl, _mutual_information_tensor(q, 1, seed)

        fn = tf.function(terms, reduce_retracing=True)
        model._eval_diagnostics = fn
    return fn


def diagnostics(model, x, threshold: float = 0.01, seed: int = 0) -> dict:
    """What posterior collapse looks like, on the examples x [N, *event] (one compiled call; N up to a few thousand):
    KL(q(z_j|x) || p(z_j)) per latent dimension (nats, mean over x; see `kl_per_dimension`), the active units
    (Cov_x(E_q[z_u]) > threshold, `active_units`) and the mutual information I_q(x; z) (nats, one z per example,
    `mutual_information`), all with the stateless seeds `seed` gives."""
    x = np.asarray(x, np.float32)
    if len(x) < 2:
        raise ValueError("diagnostics needs at least two examples")
    means, kl, mi = _compiled_diagnostics(model)(tf.constant(x), tf.constant(int(seed), tf.int32))
    variances = means.numpy().var(axis=0)
    return {"kl_per_dim": [float(v) for v in kl.numpy()], "active_units": int(np.sum(variances > threshold)),
            "mutual_information": float(mi), "n": int(len(x))}


def prior_marginals(model, dims=None) -> tfd.Distribution:
    """p(z_dims): the prior's joint marginal over the latent coordinates `dims` (all when None), event [len(dims)];
    a one-dimensional marginal p(z_j) is dims=[j]. Each prior layer knows its own (`Prior.marginal`); for the 1-D
    marginals of every dimension at once, batch [latent], see `Prior.marginals`."""
    dims = list(range(model.latent_dim)) if dims is None else [int(d) for d in dims]
    return model.prior.marginal(dims)


__all__ = [
    "log_weights", "log_px_importance", "iwae_curve", "iwae_spread", "ELBOEstimate", "elbo_estimate", "LinearGaussian",
    "linear_gaussian", "is_linear_gaussian", "exact_log_px", "exact_posterior", "kl_to_exact_posterior",
    "decode_chunk", "GridPosterior", "grid_mesh", "box_grid", "cell_volume", "grid_moments", "log_joint_on",
    "posterior_grid", "log_px_quadrature", "PosteriorsOnGrid", "posteriors_on_grid", "kl_on_grid",
    "kl_to_posterior_on_grid", "kl_to_true_posterior", "active_units", "kl_per_dimension", "mutual_information",
    "diagnostics", "prior_marginals",
    "log_mean_exp",
]
