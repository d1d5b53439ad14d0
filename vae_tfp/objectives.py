"""Objectives, per example and batched.

    elbo(x)           = reconstruction(x) - kl(x)                          <= log p(x)
    reconstruction(x) = E_q[log p(x|z)]           (nats, higher is better)
    kl(x)             = KL(q(z|x) || p(z))        (nats)
    IWAE_k(x) = E[ log (1/k) sum_k p(x, z_k) / q(z_k|x) ],  z_k ~ q(z|x)  ELBO = IWAE_1 <= IWAE_k <= log p(x)

These three names (`elbo`, `reconstruction`, `kl`) are the one vocabulary of the ELBO's terms: in `ELBOTerms`, in
the metrics of `training_loss`, in the history and metrics files, in the CLI's JSON and in the dashboard's figures.

Training minimises  -mean_batch[reconstruction] + beta_t * kl', where beta_t rises linearly from 0 to beta over
the warm-up steps and kl' applies free bits: sum_j max(lambda, mean_batch KL_j) when the KL splits over latent
dimensions, else max(lambda * latent_dim, mean_batch KL).

log p(x|z) goes through `log_likelihood`, which for a Bernoulli p(x|z) on logits l uses the fused form
    log p(x|z) = sum_d [x_d l_d - softplus(l_d)]      (= TFP's -sigmoid_cross_entropy(x, l), in 3 ops not ~7)
with its gradient written out, d/dl_d = x_d - sigmoid(l_d) (one pass over the logits in the backward), and
otherwise the distribution's own `log_prob`.

The KL is analytic where TFP has a closed form (Gaussian q against a Gaussian prior) and Monte Carlo otherwise
(a mixture prior), or Monte Carlo on request: KL ~= mean_s [log q(z_s|x) - log p(z_s)], z_s ~ q(z|x). Whether it
splits over latent dimensions is a property of the model's registry entries (`kl_factorizes`), not of types.

Where it splits and is asked for analytically (q = N(mu, diag s^2), p = N(m, diag t^2)), `elbo_terms` works on the
raw tensors instead of distribution objects (`diagonal_elbo_terms`): z = mu + s eps with eps the very draws
q.sample would take from the same seed, and the KL per dimension in closed form,
    KL_j = log(t_j / s_j) + (s_j^2 + (mu_j - m_j)^2) / (2 t_j^2) - 1/2    (= (mu_j^2 + s_j^2 - 1) / 2 - log s_j
                                                                            against N(0, I)),
the same numbers as the general path (`sampled_elbo_terms`) in a fraction of the graph ops.
"""

import math
from dataclasses import dataclass

import numpy as np

from vae_tfp._tf import tf, tfd, tfp
from vae_tfp.config import KL_METHODS


@dataclass
class ELBOTerms:
    elbo: tf.Tensor  # [batch]  reconstruction - kl
    reconstruction: tf.Tensor  # [batch]  E_q[log p(x|z)]
    kl: tf.Tensor  # [batch]  KL(q(z|x) || p(z))
    loss: tf.Tensor  # []       what training minimises (beta, free bits applied)
    kl_per_dim: tf.Tensor | None = None  # [batch, latent] when the KL splits over dimensions


def log_likelihood(likelihood, x) -> tf.Tensor:
    """log p(x|z) summed over the event -> [samples, batch] (the likelihood's batch shape).

    A `tfd.Independent(tfd.Bernoulli(logits=l))` takes the fused form sum_d [x_d l_d - softplus(l_d)], which is the
    same formula TFP evaluates (log sigmoid(l) = l - softplus(l), log(1 - sigmoid(l)) = -softplus(l)) in fewer passes
    over the [samples, batch, *event] logits; every other likelihood uses its own log_prob."""
    base = getattr(likelihood, "distribution", None)
    if isinstance(likelihood, tfd.Independent) and type(base) is tfd.Bernoulli and base.logits is not None:
        return bernoulli_log_likelihood(x, base.logits, likelihood.event_shape.rank)
    return likelihood.log_prob(x)


def bernoulli_log_likelihood(x, logits, event_ndims: int) -> tf.Tensor:
    """sum_d [x_d l_d - softplus(l_d)] over the last `event_ndims` axes of logits l [..., *event] (x broadcasts
    against l, e.g. x [batch, *event] and l [samples, batch, *event]) -> [...].

    Its gradient is written out rather than left to autodiff (which takes five passes over the logits):
        d/dl_d = g (x_d - sigmoid(l_d)),   d/dx_d = g l_d   (summed over the axes x was broadcast along)
    so training's backward makes one pass over the [samples, batch, *event] logits."""
    axes = list(range(-int(event_ndims), 0))

    @tf.custom_gradient
    def fused(x, logits):
        def grad(g):  # g [...]
            for _ in axes:
                g = g[..., None]  # [..., 1 per event dim]
            d_logits = g * (x - tf.sigmoid(logits))  # [..., *event]
            d_x = g * logits
            reduce, _ = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(x), s1=tf.shape(d_x))
            return tf.reshape(tf.reduce_sum(d_x, axis=reduce), tf.shape(x)), d_logits

        return tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=axes), grad

    return fused(tf.cast(x, logits.dtype), logits)


def kl_divergence(posterior, prior, method: str = "analytic", z=None) -> tf.Tensor:
    """KL(q(z|x) || p(z)) -> [batch]. Monte Carlo uses z [samples, batch, latent] drawn from q."""
    if method not in KL_METHODS:
        raise ValueError(f"unknown KL method {method!r}; allowed: {', '.join(KL_METHODS)}")
    if method == "analytic":
        try:
            return tfd.kl_divergence(posterior, prior)
        except NotImplementedError:
            pass
    if z is None:
        z = posterior.sample(1)
    return tf.reduce_mean(posterior.log_prob(z) - prior.log_prob(z), axis=0)


def kl_factorizes(model) -> bool:
    """True when KL(q(z|x) || p(z)) is a sum of closed-form KLs per latent dimension: q and p both diagonal Gaussians,
    as the model's registry entries say."""
    return model.posterior_family.diagonal and model.prior_family.diagonal_gaussian


def factorized_kl(posterior, prior, factorizes: bool):
    """KL per latent dimension [batch, latent] when `factorizes` (see `kl_factorizes`; then it sums to the KL);
    None otherwise.

        KL_j = KL(N(mu_j, s_j^2) || N(m_j, t_j^2)) = log(t_j / s_j) + (s_j^2 + (mu_j - m_j)^2) / (2 t_j^2) - 1/2
    """
    if not factorizes:
        return None
    q = tfd.Normal(posterior.mean(), posterior.stddev())
    p = tfd.Normal(prior.mean(), prior.stddev())
    return tfd.kl_divergence(q, p)


def diagonal_gaussian_kl(loc, scale, prior_loc=None, prior_scale=None) -> tf.Tensor:
    """KL(N(mu, s^2) || N(m, t^2)) per dimension, element-wise over loc = mu and scale = s [..., latent]:
        KL_j = log(t_j / s_j) + (s_j^2 + (mu_j - m_j)^2) / (2 t_j^2) - 1/2
    and against N(0, 1) (prior_loc and prior_scale None) KL_j = (mu_j^2 + s_j^2 - 1) / 2 - log s_j."""
    if prior_loc is None and prior_scale is None:
        return 0.5 * (tf.square(loc) + tf.square(scale) - 1.0) - tf.math.log(scale)
    ratio = tf.square(scale / prior_scale)
    return 0.5 * (ratio + tf.square((loc - prior_loc) / prior_scale) - 1.0 - tf.math.log(ratio))


def reparameterized_normal(loc, scale, n_samples: int, seed=None):
    """(z, eps): z = loc + scale eps [samples, batch, latent] for loc, scale [batch, latent], eps ~ N(0, I) drawn as
    `tfd.MultivariateNormalDiag(loc, scale).sample(n_samples, seed)` draws it (a [samples, latent, batch] standard
    normal from the stateless seed, transposed), so both give the same z for the same seed. seed None: a fresh one
    from TF's global random state."""
    seed = tfp.random.sanitize_seed(seed)
    shape = tf.stack([n_samples, tf.shape(loc)[-1], tf.shape(loc)[0]])
    eps = tf.transpose(tf.random.stateless_normal(shape, seed=seed, dtype=loc.dtype), [0, 2, 1])
    return loc + scale * eps, eps


def free_bits_kl(kl, kl_per_dim, free_bits: float, latent_dim: int) -> tf.Tensor:
    """The KL term training sees, kl [batch] -> []: per-dimension KL floored at `free_bits` nats (averaged over the
    batch first), or the whole KL floored at free_bits * latent_dim when it does not split over dimensions."""
    if free_bits <= 0:
        return tf.reduce_mean(kl)
    if kl_per_dim is not None:
        return tf.reduce_sum(tf.maximum(tf.reduce_mean(kl_per_dim, axis=0), free_bits))
    return tf.maximum(tf.reduce_mean(kl), free_bits * latent_dim)


def elbo_terms(model, x, *, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic", free_bits: float = 0.0,
               seed=None) -> ELBOTerms:
    """The ELBO of each example in x [batch, *event] with n_samples Monte-Carlo samples of z (drawn with the
    stateless `seed`, int32 [2], when given). On raw tensors where the KL splits into closed-form dimensions and is
    asked for analytically (`diagonal_elbo_terms`), else through the distributions (`sampled_elbo_terms`)."""
    if kl == "analytic" and kl_factorizes(model):
        return diagonal_elbo_terms(model, x, n_samples=n_samples, beta=beta, free_bits=free_bits, seed=seed)
    return sampled_elbo_terms(model, x, n_samples=n_samples, beta=beta, kl=kl, free_bits=free_bits, seed=seed)


def diagonal_elbo_terms(model, x, *, n_samples: int = 1, beta: float = 1.0, free_bits: float = 0.0,
                        seed=None) -> ELBOTerms:
    """`elbo_terms` of a model whose q(z|x) and p(z) are diagonal Gaussians (`kl_factorizes`), on raw tensors: the
    posterior's mean and standard deviation, z = mu + s eps with q.sample's own draws, the KL per dimension in closed
    form (`diagonal_gaussian_kl`), p(x|z) from the decoder. The same numbers as `sampled_elbo_terms` with the
    analytic KL (to float32 rounding)."""
    if not kl_factorizes(model):
        raise ValueError(f"diagonal_elbo_terms needs a diagonal-Gaussian q(z|x) and p(z); this model has posterior="
                         f"{model.posterior_family.name!r}, prior={model.prior_family.name!r}")
    if tf.executing_eagerly():
        model.likelihood_head.check_support(np.asarray(x))
    posterior = model.encode(x)  # batch [batch], event [latent]
    loc, scale = posterior.mean(), posterior.stddev()  # [batch, latent] each
    z, _ = reparameterized_normal(loc, scale, n_samples, seed)  # [samples, batch, latent]
    log_lik = log_likelihood(model.decode(z), x)  # [samples, batch]
    reconstruction = tf.reduce_mean(log_lik, axis=0)  # [batch]
    if model.prior_family.standard_normal:
        per_dim = diagonal_gaussian_kl(loc, scale)  # [batch, latent]
    else:
        prior = model.prior_distribution()
        per_dim = diagonal_gaussian_kl(loc, scale, prior.mean(), prior.stddev())
    kl_q_p = tf.reduce_sum(per_dim, axis=-1)  # [batch]
    loss = -tf.reduce_mean(reconstruction) + beta * free_bits_kl(kl_q_p, per_dim, free_bits, model.latent_dim)
    return ELBOTerms(elbo=reconstruction - kl_q_p, reconstruction=reconstruction, kl=kl_q_p, loss=loss,
                     kl_per_dim=per_dim)


def sampled_elbo_terms(model, x, *, n_samples: int = 1, beta: float = 1.0, kl: str = "analytic",
                       free_bits: float = 0.0, seed=None) -> ELBOTerms:
    """`elbo_terms` through the distribution objects: any posterior, prior and likelihood; the KL analytic where TFP
    has a closed form, else (or with kl="mc") Monte Carlo on the same samples of z."""
    out = model(x, n_samples=n_samples, seed=seed)
    log_lik = log_likelihood(out.likelihood, x)  # [samples, batch]
    reconstruction = tf.reduce_mean(log_lik, axis=0)  # [batch]
    kl_q_p = kl_divergence(out.posterior, out.prior, kl, z=out.z)  # [batch]
    per_dim = factorized_kl(out.posterior, out.prior, kl_factorizes(model))
    loss = -tf.reduce_mean(reconstruction) + beta * free_bits_kl(kl_q_p, per_dim, free_bits, model.latent_dim)
    return ELBOTerms(elbo=reconstruction - kl_q_p, reconstruction=reconstruction, kl=kl_q_p, loss=loss,
                     kl_per_dim=per_dim)


def log_importance_weights(model, x, k: int, beta: float = 1.0) -> tf.Tensor:
    """log w_k = log p(x|z_k) + beta (log p(z_k) - log q(z_k|x)), z_k ~ q(z|x) -> [k, batch]."""
    out = model(x, n_samples=k)
    return log_likelihood(out.likelihood, x) + beta * (out.prior.log_prob(out.z) - out.posterior.log_prob(out.z))


def log_mean_exp(a, axis: int = 0):
    """log (1/n) sum_i exp(a_i), stable."""
    return tf.reduce_logsumexp(a, axis=axis) - math.log(a.shape[axis])


def iwae_bound(model, x, k: int, beta: float = 1.0) -> tf.Tensor:
    """IWAE_k(x) = log (1/k) sum_k w_k -> [batch]."""
    return log_mean_exp(log_importance_weights(model, x, k, beta), axis=0)


def warmup_beta(step: int, beta: float, warmup_steps: float) -> np.float32:
    """beta_t = beta * min(1, step / warmup_steps); no warm-up when warmup_steps <= 0. A numpy scalar: a compiled
    step takes it as a tensor argument (no retracing per value, no eager op per step)."""
    if warmup_steps <= 0:
        return np.float32(beta)
    return np.float32(float(beta) * min(1.0, step / float(warmup_steps)))


def training_loss(model, x, *, beta=1.0, kl: str = "analytic", free_bits: float = 0.0, iwae_k: int = 1, seed=None):
    """(loss, metrics) for one batch: loss is what training minimises; metrics hold the batch means of `elbo`,
    `reconstruction` and `kl`, the `loss`, and `iwae` (the bound, which training then maximises) when iwae_k > 1.
    `seed`: a stateless seed (int32 [2]) for the z samples (the trainer's own seed stream); None: TF's global one."""
    if iwae_k <= 1:
        terms = elbo_terms(model, x, beta=beta, kl=kl, free_bits=free_bits, seed=seed)
        return terms.loss, _batch_means(terms.reconstruction, terms.kl, terms.loss)
    bound, reconstruction, kl_q_p = _iwae_terms(model, x, iwae_k, beta, kl, seed)
    loss = -tf.reduce_mean(bound)
    return loss, dict(_batch_means(reconstruction, kl_q_p, loss), iwae=-loss)


def _iwae_terms(model, x, k: int, beta, kl: str, seed):
    """(IWAE_k bound, reconstruction, kl), each [batch]: one set of k samples serves the bound and the terms."""
    out = model(x, n_samples=k, seed=seed)
    log_lik = log_likelihood(out.likelihood, x)  # [k, batch]
    log_ratio = out.prior.log_prob(out.z) - out.posterior.log_prob(out.z)  # log p(z) - log q(z|x), [k, batch]
    bound = log_mean_exp(log_lik + beta * log_ratio, axis=0)  # [batch]
    return bound, tf.reduce_mean(log_lik, axis=0), kl_divergence(out.posterior, out.prior, kl, z=out.z)


def shard_loss(model, x, *, n_global, beta=1.0, kl: str = "analytic", free_bits: float = 0.0, iwae_k: int = 1,
               seed=None, global_sum=None, weights=None):
    """One shard's part of `training_loss` of a global batch of N = `n_global` examples split into shards (one per
    replica): (loss, sums). The shards' losses add up to `training_loss` of the whole global batch, and so do their
    gradients, whatever the shard sizes, so summing the replicas' gradients gives the gradient of the loss over the
    global batch. `weights` [b] (default all 1) marks the shard's rows of the batch with 1 and padding rows with 0: a
    shard with no row of the batch holds one padding row (TFP cannot sample a batch of 0) and adds 0, never NaN.

        loss_shard = (1/N) sum_{i in shard} w_i l_i  (+ beta FB_shard with free bits)
        l_i = -reconstruction_i + beta kl_i       no free bits
        l_i = -reconstruction_i                   free bits (the KL term is FB below)
        l_i = -IWAE_k(x_i)                        iwae_k > 1

    Free bits, sum_j max(lambda, m_j) with m_j the global batch's mean KL of dimension j, is not a mean over
    examples: m_j = global_sum(sum_{i in shard} w_i KL_ij) / N, where `global_sum` adds a value over all shards (a
    forward value: no gradient flows through it), and
        FB_shard = sum_j [ (1/N) sum_{i in shard} w_i KL_ij   if m_j > lambda,   else lambda * b / N ]
    (b = sum_i w_i, the shard's rows of the batch), which adds up over the shards to sum_j max(lambda, m_j) with the
    same gradient. A KL that does not split over dimensions is one term with lambda * latent_dim.

    sums: {"reconstruction", "kl"} (and "iwae" when iwae_k > 1) summed over the shard's rows of the batch, [] each.
    """
    n = tf.cast(n_global, tf.float32)
    w = tf.ones(tf.shape(x)[:1]) if weights is None else tf.cast(weights, tf.float32)  # [b]

    def total(v):  # [b] -> []
        return tf.reduce_sum(w * v)

    if iwae_k > 1:
        bound, reconstruction, kl_q_p = _iwae_terms(model, x, iwae_k, beta, kl, seed)  # [b] each
        sums = {"reconstruction": total(reconstruction), "kl": total(kl_q_p), "iwae": total(bound)}
        return -sums["iwae"] / n, sums
    terms = elbo_terms(model, x, beta=beta, kl=kl, free_bits=free_bits, seed=seed)
    sums = {"reconstruction": total(terms.reconstruction), "kl": total(terms.kl)}
    if free_bits <= 0:
        return (beta * sums["kl"] - sums["reconstruction"]) / n, sums
    if terms.kl_per_dim is not None:
        local, floor = tf.reduce_sum(w[:, None] * terms.kl_per_dim, axis=0), free_bits  # [latent]
    else:
        local, floor = sums["kl"][None], free_bits * model.latent_dim  # [1]
    every = tf.stop_gradient(local) if global_sum is None else global_sum(tf.stop_gradient(local))
    share = tf.reduce_sum(w) / n  # b / N
    kept = tf.where(every / n > floor, local / n, floor * share)  # [latent] or [1]
    return beta * tf.reduce_sum(kept) - sums["reconstruction"] / n, sums


def _batch_means(reconstruction, kl, loss) -> dict:
    """{elbo, reconstruction, kl, loss}: batch means of the terms [batch] -> [], elbo = reconstruction - kl."""
    r, k = tf.reduce_mean(reconstruction), tf.reduce_mean(kl)
    return {"elbo": r - k, "reconstruction": r, "kl": k, "loss": loss}
