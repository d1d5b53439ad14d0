"""The numbers behind the dashboard's views, computed headless from a trained VAE. Never imports streamlit.

Each function takes a model and numpy arrays and returns numpy arrays in small dataclasses, so a page only draws:

    reconstructions(model, x)        x, E[x|z] (the decoder's output), x' ~ p(x|z), log p(x|z),  z ~ q(z|x)
    prior_decodes(model, n)          decodes of z ~ p(z): E[x|z] and x ~ p(x|z) (= samples of the model's p(x))
    latent_scatter(model, x, dims)   posterior means / samples of two latent dims over the prior's density
    aggregate_posterior(model, x)    histograms of z ~ q(z) = mean_x q(z|x) per dimension against p(z_j)
    latent_usage(model, x)           KL(q(z_j|x) || p(z_j)) per dimension and active units
    what_is_px(model, x1, ks)        ELBO, IWAE_k for growing k, exact / quadrature log p(x), the gap
                                     log p(x) - ELBO = KL(q(z|x) || p(z|x)), and p(z|x) on a grid (latent <= 2)
    latent_grid / traversal / interpolation   decodes E[x|z] along paths through the latent space
    history_curves, run_summary, comparability_note   training curves and comparing saved runs

Sampling takes an integer seed and is stateless, so a view redrawn with the same inputs shows the same samples.
"""

from dataclasses import dataclass

import numpy as np

from vae_tfp import evaluation
from vae_tfp._tf import tf, tfd
from vae_tfp.config import LIKELIHOOD_HELP, RunConfig
from vae_tfp.data import load, prepare
from vae_tfp.objectives import elbo_terms

DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
ELBO_SAMPLES = 20_000


def _seed(seed: int):
    return tf.constant([int(seed), 7], tf.int32)  # a stateless seed: same seed, same samples


def _np(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


# --- data for a config ------------------------------------------------------------------------------------------
def prepared_data(config: RunConfig, data_dir=None):
    """(Dataset, Prepared) exactly as the trainer prepares them for `config` (same representation and seeds)."""
    dataset = load(config.dataset, data_dir=data_dir, seed=config.seed)
    representation = LIKELIHOOD_HELP[config.likelihood][1]
    return dataset, prepare(dataset, representation, binarization=config.binarization, seed=config.seed)


# --- reconstructions ---------------------------------------------------------------------------------------------
@dataclass
class Reconstructions:
    x: np.ndarray  # [n, *event]        the inputs
    z: np.ndarray  # [n, latent]        z ~ q(z|x)
    mean: np.ndarray  # [n, *event]     E[x|z]: what the decoder network outputs
    sample: np.ndarray  # [n, *event]   x' ~ p(x|z): a draw from the distribution the network parameterises
    log_px_given_z: np.ndarray  # [n]   log p(x|z) of the input (nats)


def reconstructions(model, x, seed: int = 0) -> Reconstructions:
    """For each x: z ~ q(z|x), then the decoder's mean E[x|z], a sample x' ~ p(x|z) and log p(x|z)."""
    x = np.asarray(x, np.float32)
    z = model.encode(x).sample(seed=_seed(seed))  # [n, latent]
    likelihood = model.decode(z)  # batch [n], event [*event]
    return Reconstructions(x=x, z=_np(z), mean=_np(model.likelihood_head.mean(likelihood)),
                           sample=_np(likelihood.sample(seed=_seed(seed + 1))),
                           log_px_given_z=_np(likelihood.log_prob(x)))


@dataclass
class Decodes:
    z: np.ndarray  # [n, latent]
    mean: np.ndarray  # [n, *event]   E[x|z]
    sample: np.ndarray  # [n, *event] x ~ p(x|z)


def prior_decodes(model, n: int, seed: int = 0) -> Decodes:
    """z ~ p(z), then E[x|z] and x ~ p(x|z): the samples are draws from the model's p(x)."""
    z = model.prior_distribution().sample(int(n), seed=_seed(seed))  # [n, latent]
    likelihood = model.decode(z)
    return Decodes(z=_np(z), mean=_np(model.likelihood_head.mean(likelihood)),
                   sample=_np(likelihood.sample(seed=_seed(seed + 1))))


def posterior_decodes(model, x, seed: int = 0) -> Decodes:
    """z ~ q(z|x) for each x, then E[x|z] and x ~ p(x|z)."""
    r = reconstructions(model, x, seed)
    return Decodes(z=r.z, mean=r.mean, sample=r.sample)


# --- the latent space under q and p ------------------------------------------------------------------------------
def prior_marginal(model, dims) -> tfd.Distribution:
    """p(z_dims), the prior's marginal over the latent dimensions `dims`; event [len(dims)].
    The priors here have diagonal components, so a marginal keeps the chosen coordinates of each component."""
    prior = model.prior_distribution()
    dims = list(dims)
    if isinstance(prior, tfd.MixtureSameFamily):
        comp = prior.components_distribution  # batch [K], event [latent]
        loc = tf.gather(comp.mean(), dims, axis=-1)  # [K, d]
        scale = tf.gather(comp.stddev(), dims, axis=-1)
        return tfd.MixtureSameFamily(prior.mixture_distribution, tfd.MultivariateNormalDiag(loc, scale))
    return tfd.MultivariateNormalDiag(tf.gather(prior.mean(), dims, axis=-1), tf.gather(prior.stddev(), dims, axis=-1))


@dataclass
class LatentScatter:
    dims: tuple  # the latent dimensions shown (one or two)
    means: np.ndarray  # [n, len(dims)]    E_q[z|x]
    samples: np.ndarray  # [n, len(dims)]  z ~ q(z|x)
    labels: np.ndarray | None  # [n]
    axes: list  # len(dims) arrays [G]: the grid of the prior's density
    prior_density: np.ndarray  # [G] or [G, G]: p(z_dims) on the grid (indexing "ij")


def latent_scatter(model, x, labels=None, dims=(0, 1), grid: int = 80, seed: int = 0) -> LatentScatter:
    """Posterior means and samples of latent dims `dims` (two, or one for a 1-D latent) over p(z_dims)."""
    dims = tuple(int(d) for d in dims)[: model.latent_dim]
    if any(not 0 <= d < model.latent_dim for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"dims {dims} must be distinct latent dimensions in [0, {model.latent_dim})")
    q = model.encode(np.asarray(x, np.float32))
    means = _np(q.mean())[:, dims]
    samples = _np(q.sample(seed=_seed(seed)))[:, dims]
    marginal = prior_marginal(model, dims)
    span = np.concatenate([means, samples, _np(marginal.sample(2000, seed=_seed(seed + 1)))])
    lo, hi = np.percentile(span, 0.5, axis=0), np.percentile(span, 99.5, axis=0)
    pad = 0.15 * (hi - lo) + 1e-3
    axes = [np.linspace(a - p, b + p, grid) for a, b, p in zip(lo, hi, pad)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # [G, (G,) d]
    density = np.exp(_np(marginal.log_prob(mesh.astype(np.float32))))
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
    z = _np(model.encode(np.asarray(x, np.float32)).sample(n_samples, seed=_seed(seed)))  # [S, n, latent]
    z = z.reshape(-1, model.latent_dim)[:, dims]  # [S n, d]
    marginals = evaluation.prior_marginals(model.prior_distribution())  # batch [latent]
    edges, density, grids, pdfs = [], [], [], []
    for j, d in enumerate(dims):
        reach = max(4.0, float(np.percentile(np.abs(z[:, j]), 99.5)) * 1.1)
        e = np.linspace(-reach, reach, bins + 1)
        h, _ = np.histogram(np.clip(z[:, j], -reach, reach), bins=e, density=True)
        g = np.linspace(-reach, reach, 200)
        pdf = _np(marginals.prob(np.broadcast_to(g[:, None], (len(g), model.latent_dim)).astype(np.float32)))[:, d]
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


# --- what is p(x)? -----------------------------------------------------------------------------------------------
@dataclass
class PosteriorPicture:
    """p(z|x) and q(z|x) of one image on a grid over a 1-D or 2-D latent (indexing "ij")."""

    axes: list  # [G] per latent dimension
    log_true: np.ndarray  # [G] or [G, G]  log p(z|x) = log p(x|z) + log p(z) - log p(x)
    log_q: np.ndarray  # [G] or [G, G]     log q(z|x)


@dataclass
class WhatIsPx:
    elbo: float  # E_q[log p(x|z)] - KL(q(z|x) || p(z)), Monte Carlo over n samples of z ~ q(z|x)
    reconstruction: float  # E_q[log p(x|z)]
    kl_prior: float  # KL(q(z|x) || p(z))
    ks: np.ndarray  # [m]
    iwae: np.ndarray  # [m]  IWAE_k = E log mean_k p(x, z_k) / q(z_k|x), averaged over disjoint groups of k samples
    log_px: float | None  # exact (linear-Gaussian) or quadrature (latent <= 2); None where neither exists
    method: str  # "exact", "quadrature" or "none"
    kl_true_posterior: float | None  # KL(q(z|x) || p(z|x)), computed on its own (closed form or on a grid)
    picture: PosteriorPicture | None  # latent <= 2

    @property
    def gap(self) -> float | None:
        """log p(x) - ELBO, which equals KL(q(z|x) || p(z|x))."""
        return None if self.log_px is None else self.log_px - self.elbo


def what_is_px(model, x1, ks=DEFAULT_KS, grid: int = 121, elbo_samples: int | None = None) -> WhatIsPx:
    """Everything the "What is p(x)?" view shows for ONE image x1 [*event]. The ELBO takes `elbo_samples`
    samples of z ~ q(z|x) (default: 20 000 where the decoder is small, else the largest k) with the KL in closed
    form where it exists."""
    x1 = np.asarray(x1, np.float32)
    x = x1[None]  # [1, *event]
    ks = np.array(sorted({int(k) for k in ks}))
    kmax = int(ks[-1])
    chunk = evaluation.decode_chunk(model)  # bounds the decoder's outputs held at once
    if elbo_samples is None:  # the ELBO's Monte-Carlo error shows in the gap: many samples where they are cheap
        elbo_samples = max(kmax, ELBO_SAMPLES) if chunk >= 1024 else kmax
    distortion, rate = _elbo_terms_chunked(model, x, int(elbo_samples), chunk)
    elbo = -distortion - rate
    iwae = evaluation.iwae_curve(evaluation.log_weights(model, x, kmax, max_points=chunk), ks)[:, 0]  # [m]
    q = model.encode(x)
    log_px, method, kl_true, picture = None, "none", None, None
    grid = grid if chunk >= 1024 else min(grid, 61)  # big decoders (e.g. categorical 28x28): a coarser grid
    true = evaluation.posterior_grid(model, x1, size=grid) if model.latent_dim <= 2 else None  # zoomed on p(z|x)
    if evaluation.is_linear_gaussian(model):
        log_px, method = float(evaluation.exact_log_px(model, x)[0]), "exact"
        q64 = tfd.MultivariateNormalTriL(_np(q.mean()).astype(np.float64),
                                         np.linalg.cholesky(_np(q.covariance()).astype(np.float64)))
        kl_true = float(_np(tfd.kl_divergence(q64, evaluation.exact_posterior(model, x)))[0])
    elif true is not None:
        log_px, method = float(true.log_px), "quadrature"
    if true is not None:
        q_mean, q_std = _np(q.mean())[0], _np(q.stddev())[0]
        if kl_true is None:  # KL(q || p(z|x)) = sum_g q(z_g) cell (log q(z_g) - log p(z_g|x)) on a grid around q
            axes_q, log_true_q, log_q_q = _on_grid(model, x, q, log_px, q_mean - 6 * q_std, q_mean + 6 * q_std, grid)
            cell = np.prod([a[1] - a[0] for a in axes_q])
            kl_true = float(np.sum(np.exp(log_q_q) * cell * (log_q_q - log_true_q)))
        p_mean, p_std = evaluation.grid_moments(true.axes, true.log_post)
        p_std = np.maximum(p_std, [a[1] - a[0] for a in true.axes])  # at least one grid cell
        lo = np.minimum(p_mean - 4 * p_std, q_mean - 4 * q_std)  # a box around both p(z|x) and q(z|x)
        hi = np.maximum(p_mean + 4 * p_std, q_mean + 4 * q_std)
        picture = PosteriorPicture(*_on_grid(model, x, q, log_px, lo, hi, grid))
    return WhatIsPx(elbo, -distortion, rate, ks, iwae, log_px, method, kl_true, picture)


def _elbo_terms_chunked(model, x, n: int, chunk: int) -> tuple[float, float]:
    """(distortion, rate) of ONE image x [1, *event] with n samples of z ~ q(z|x), taken `chunk` at a time."""
    distortion = rate = 0.0
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        terms = elbo_terms(model, x, n_samples=size)
        distortion += float(_np(terms.distortion)[0]) * size / n
        rate += float(_np(terms.rate)[0]) * size / n
    return distortion, rate


def _on_grid(model, x, q, log_px, lo, hi, size):
    """axes, log p(z|x) and log q(z|x) on a grid over the box [lo, hi] of the latent."""
    axes = [np.linspace(a, b, size) for a, b in zip(lo, hi)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # [G, (G,) latent]
    log_true = evaluation.log_joint_on(model, x, mesh) - log_px  # log p(x|z) + log p(z) - log p(x)
    flat = mesh.reshape(-1, 1, mesh.shape[-1]).astype(np.float32)  # [P, 1, latent] against q's batch [1]
    log_q = _np(q.log_prob(flat)).astype(np.float64).reshape(mesh.shape[:-1])
    return axes, log_true, log_q


# --- paths through the latent space ------------------------------------------------------------------------------
@dataclass
class LatentGrid:
    axes: list  # two arrays [G]: z_1 and z_2 values
    means: np.ndarray  # [G, G, *event]   E[x|z] at z = (axes[0][i], axes[1][j])


def latent_grid(model, size: int = 12, reach: float = 2.5) -> LatentGrid:
    """Decodes E[x|z] over a size x size grid of a 2-D latent, +-reach prior standard deviations around its mean."""
    if model.latent_dim != 2:
        raise ValueError(f"a latent grid needs latent_dim == 2, this model has {model.latent_dim}")
    prior = model.prior_distribution()
    center, std = _np(prior.mean()), _np(prior.stddev())
    axes = [np.linspace(c - reach * s, c + reach * s, size) for c, s in zip(center, std)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float32)  # [G, G, 2]
    return LatentGrid(axes, _np(model.decoder_mean(mesh)))


@dataclass
class LatentPath:
    t: np.ndarray  # [m]  the path's parameter (latent value for a traversal, 0..1 for an interpolation)
    z: np.ndarray  # [m, latent]
    means: np.ndarray  # [m, *event]  E[x|z] along the path


def traversal(model, x1, dim: int, values) -> LatentPath:
    """Start at the posterior mean of one image x1 [*event] and move latent dimension `dim` through `values`."""
    if not 0 <= int(dim) < model.latent_dim:
        raise ValueError(f"dim must lie in [0, {model.latent_dim}), got {dim!r}")
    base = _np(model.encode(np.asarray(x1, np.float32)[None]).mean())[0]  # [latent]
    values = np.asarray(values, np.float32)
    z = np.repeat(base[None], len(values), axis=0)  # [m, latent]
    z[:, int(dim)] = values
    return LatentPath(values, z, _np(model.decoder_mean(z)))


def interpolation(model, xa, xb, steps: int = 8) -> LatentPath:
    """Decodes along the straight line between the posterior means of two images: z_t = (1 - t) mu_a + t mu_b."""
    mu = _np(model.encode(np.stack([xa, xb]).astype(np.float32)).mean())  # [2, latent]
    t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)
    z = (1 - t)[:, None] * mu[0] + t[:, None] * mu[1]  # [steps, latent]
    return LatentPath(t, z, _np(model.decoder_mean(z)))


# --- training curves and comparing runs --------------------------------------------------------------------------
@dataclass
class Curves:
    """One line per term, split by split: {"train": {...}, "test": {...}}, each with step, epoch (completed),
    epochs (= step / steps per epoch, fractional), elbo, reconstruction (= E_q[log p(x|z)] = -distortion) and kl
    (= rate), all in nats per example."""

    train: dict
    test: dict


def history_curves(records) -> Curves:
    """Training history records (`Run.history()`) as arrays per split."""
    out = {}
    for split in ("train", "test"):
        rows = [r for r in records if r.get("kind") == split and r.get("elbo") is not None]
        out[split] = {"step": np.array([r["step"] for r in rows], int),
                      "epoch": np.array([r.get("epoch", 0) for r in rows], int),
                      "elbo": np.array([r["elbo"] for r in rows], float),
                      "reconstruction": np.array([-r["distortion"] for r in rows], float),
                      "kl": np.array([r["rate"] for r in rows], float)}
    per_epoch = _steps_per_epoch(records)
    for c in out.values():
        c["epochs"] = c["step"] / per_epoch if per_epoch else c["epoch"].astype(float)
    return Curves(out["train"], out["test"])


def _steps_per_epoch(records) -> float | None:
    """Test evaluations happen at epoch ends (step = epoch x steps per epoch); None without one."""
    ends = [r["step"] / r["epoch"] for r in records if r.get("kind") == "test" and r.get("epoch")]
    return float(np.median(ends)) if ends else None


def run_summary(run) -> dict:
    """What the comparison table shows for one saved run."""
    config, metrics = run.config(), run.metrics()
    try:
        info = run.data_info()
    except (OSError, ValueError):
        info = {}
    test = metrics.get("test") or {}
    return {"name": run.name, "dataset": config.dataset, "likelihood": config.likelihood,
            "latent_dim": config.latent_dim, "representation": info.get("representation"),
            "levels": info.get("levels"), "binarization": config.binarization if config.likelihood == "bernoulli"
            else None, "status": metrics.get("status", "unfinished"), "epochs": metrics.get("epochs"),
            "test_elbo": metrics.get("test_elbo"), "test_reconstruction": _neg(test.get("distortion")),
            "test_kl": test.get("rate"), "log_px": metrics.get("log_px")}


def _neg(v):
    return None if v is None else -v


REPRESENTATION_WORDS = {
    "binary": "binarized pixels (a probability mass over {0, 1} per pixel)",
    "unit": "intensities in [0, 1] (a density on the unit interval)",
    "real": "real values (a density on the real line)",
    "levels": "integer grey levels (a probability mass over K levels)",
}


def comparability_note(summaries) -> str | None:
    """A note when the runs' log-likelihoods are not comparable (different data or data representations), or None.

    Log-likelihoods are comparable only on the same data in the same representation: a probability mass over
    binarized pixels, a density over [0, 1] and a density over the real line are different quantities, in
    different units, and a density can exceed 1 (positive log p(x)).
    """
    groups = {}
    for s in summaries:
        key = (s["dataset"], s["representation"], s["levels"], s["binarization"])
        groups.setdefault(key, []).append(s["name"])
    if len(groups) <= 1:
        return None
    lines = []
    for (dataset, representation, levels, binarization), names in groups.items():
        what = REPRESENTATION_WORDS.get(representation, str(representation))
        if representation == "levels":
            what = what.replace("K levels", f"{levels} levels")
        if binarization:
            what += f", binarization {binarization}"
        lines.append(f"{', '.join(names)}: {dataset} as {what}")
    return ("These runs model different data representations, so their ELBOs and log-likelihoods are not "
            "comparable: a probability mass over discrete values (<= 0 nats) and a density over continuous values "
            "(which can exceed 1, so log p(x) > 0) measure different things. Compare runs within a group:\n- "
            + "\n- ".join(lines))


def log_px_definitions() -> list[tuple[str, str, str, str]]:
    """(symbol, what it is, can it be computed?, can it be sampled?) for the four densities of a VAE."""
    return [
        ("p(z)", "the prior, chosen by us (standard normal or a learned mixture)", "yes, in closed form",
         "yes, directly"),
        ("p(x|z)", "the likelihood: the decoder network outputs its parameters, e.g. E[x|z]", "yes, in closed form",
         "yes, directly"),
        ("p(x)", "the marginal likelihood, the integral of p(x|z) p(z) over z", "no, only bounded (ELBO, IWAE) or "
         "estimated; exact for a linear-Gaussian model, by quadrature for latent <= 2",
         "yes: z ~ p(z), then x ~ p(x|z)"),
        ("p(z|x)", "the true posterior p(x|z) p(z) / p(x)", "only up to the unknown constant p(x)",
         "not directly (it needs MCMC or importance weights)"),
        ("q(z|x)", "the approximate posterior: the encoder network outputs its mean and scale",
         "yes, in closed form", "yes, directly"),
    ]


__all__ = [
    "DEFAULT_KS", "prepared_data", "Reconstructions", "reconstructions", "Decodes", "prior_decodes",
    "posterior_decodes", "prior_marginal", "LatentScatter", "latent_scatter", "AggregatePosterior",
    "aggregate_posterior", "LatentUsage", "latent_usage", "PosteriorPicture", "WhatIsPx", "what_is_px",
    "LatentGrid", "latent_grid", "LatentPath", "traversal", "interpolation", "Curves", "history_curves",
    "run_summary", "comparability_note", "log_px_definitions",
]
