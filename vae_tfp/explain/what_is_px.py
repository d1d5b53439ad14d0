"""The "What is p(x)?" view for ONE image x: the ELBO and its terms, IWAE_k as k grows towards log p(x), log p(x)
itself where it can be had (exact for a linear-Gaussian model, by quadrature for latent <= 2), the gap
log p(x) - ELBO = KL(q(z|x) || p(z|x)) beside that KL computed on its own, and for latent <= 2 the true posterior
p(z|x) and q(z|x) on one grid; plus the table of which density can be computed or sampled. Where the data's own
density is known (the synthetic point sets, `vae_tfp.datasets.truth`), `data_truth` puts it beside the model's:
log p_true(x) of the point shown and the held-out means under the truth and (linear-Gaussian models) the model."""

from dataclasses import dataclass

import numpy as np

from vae_tfp import evaluation

DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
ELBO_SAMPLES = 20_000
IWAE_GROUPS = 4  # independent groups of the largest k: every IWAE_k is an average with a standard error


@dataclass
class WhatIsPx:
    elbo: float  # reconstruction - kl, Monte Carlo over many samples of z ~ q(z|x)
    reconstruction: float  # E_q[log p(x|z)]
    kl: float  # KL(q(z|x) || p(z))
    ks: np.ndarray  # [m]
    iwae: np.ndarray  # [m]  IWAE_k = E log mean_k p(x, z_k) / q(z_k|x), averaged over disjoint groups of k samples
    log_px: float | None  # exact (linear-Gaussian) or quadrature (latent <= 2); None where neither exists
    method: str  # "exact", "quadrature" or "none"
    kl_true_posterior: float | None  # KL(q(z|x) || p(z|x)), computed on its own (closed form or on a grid)
    picture: evaluation.PosteriorsOnGrid | None  # latent <= 2: p(z|x) and q(z|x) over a box around both
    iwae_sem: np.ndarray  # [m]  IWAE_k's standard error over its groups (at least IWAE_GROUPS of them)
    iwae_groups: np.ndarray  # [m]  how many groups of k samples each IWAE_k averages

    @property
    def gap(self) -> float | None:
        """log p(x) - ELBO, which equals KL(q(z|x) || p(z|x))."""
        return None if self.log_px is None else self.log_px - self.elbo


def what_is_px(model, x1, ks=DEFAULT_KS, grid: int = 121, elbo_samples: int | None = None) -> WhatIsPx:
    """Everything the view shows for ONE image x1 [*event]. The ELBO takes `elbo_samples` samples of z ~ q(z|x)
    (default: 20 000 where the decoder is small, else the largest k) with the KL in closed form where it exists."""
    x1 = np.asarray(x1, np.float32)
    x = x1[None]  # [1, *event]
    ks = np.array(sorted({int(k) for k in ks}))
    kmax = int(ks[-1])
    chunk = evaluation.decode_chunk(model)  # bounds the decoder's outputs held at once
    if elbo_samples is None:  # the ELBO's Monte-Carlo error shows in the gap: many samples where they are cheap
        elbo_samples = max(kmax, ELBO_SAMPLES) if chunk >= 1024 else kmax
    terms = evaluation.elbo_estimate(model, x, int(elbo_samples), max_points=chunk)
    log_w = evaluation.log_weights(model, x, IWAE_GROUPS * kmax, max_points=chunk)  # [groups x kmax, 1]
    iwae, iwae_sem, groups = evaluation.iwae_spread(log_w, ks)  # [m, 1], [m, 1], [m]
    grid = grid if chunk >= 1024 else min(grid, 61)  # big decoders (e.g. categorical 28x28): a coarser grid
    true = evaluation.posterior_grid(model, x1, size=grid) if model.latent_dim <= 2 else None  # zoomed on p(z|x)
    log_px, method, kl_true, picture = None, "none", None, None
    if evaluation.is_linear_gaussian(model):
        log_px, method = float(evaluation.exact_log_px(model, x)[0]), "exact"
    elif true is not None:
        log_px, method = float(true.log_px), "quadrature"
    if log_px is not None:
        kl_true = evaluation.kl_to_true_posterior(model, x1, log_px, size=grid)
    if true is not None:
        q = model.encode(x)
        q_mean, q_std = q.mean().numpy()[0], q.stddev().numpy()[0]  # [latent]
        p_mean, p_std = evaluation.grid_moments(true.axes, true.log_post)
        p_std = np.maximum(p_std, [a[1] - a[0] for a in true.axes])  # at least one grid cell
        lo = np.minimum(p_mean - 4 * p_std, q_mean - 4 * q_std)  # a box around both p(z|x) and q(z|x)
        hi = np.maximum(p_mean + 4 * p_std, q_mean + 4 * q_std)
        picture = evaluation.posteriors_on_grid(model, x1, lo, hi, grid, log_px)
    return WhatIsPx(float(terms.elbo[0]), float(terms.reconstruction[0]), float(terms.kl[0]), ks, iwae[:, 0],
                    log_px, method, kl_true, picture, iwae_sem[:, 0], groups)


@dataclass
class DataTruth:
    dataset: str
    method: str  # how the truth is computed, in words
    log_px: float  # log p_true(x) of the point shown (nats)
    test_mean: float  # mean log p_true(x) over the test points
    model_test_mean: float | None  # mean exact log p(x) of the model over the same points (linear-Gaussian), else None

    @property
    def test_gap(self) -> float | None:
        """mean_x [log p_true(x) - log p_model(x)] over test points x ~ p_true: estimates KL(p_true || p_model)."""
        return None if self.model_test_mean is None else self.test_mean - self.model_test_mean


def data_truth(model, dataset: str, x1, x_test) -> DataTruth | None:
    """The data's true density at the point x1 [D] and over x_test [n, D], beside the model's exact held-out
    log p(x) where the model is linear-Gaussian; None where the truth is not known (images, user data) or the data
    is not the registered set's points."""
    from vae_tfp.datasets.truth import true_density

    truth = true_density(dataset)
    x_test = np.asarray(x_test, np.float64)
    if truth is None or x_test.ndim != 2 or x_test.shape[1] != truth.dim:
        return None
    log_true = truth.log_prob(x_test)  # [n]
    model_mean = (float(np.mean(evaluation.exact_log_px(model, x_test.astype(np.float32))))
                  if evaluation.is_linear_gaussian(model) else None)
    return DataTruth(truth.dataset, truth.method, float(truth.log_prob(np.asarray(x1, np.float64)[None])[0]),
                     float(np.mean(log_true)), model_mean)


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
