"""The Reconstructions view: for each input x, z ~ q(z|x), the decoder's mean E[x|z], a sample x' ~ p(x|z) and the
reconstruction log-likelihood log p(x|z) of the input (the ELBO's reconstruction term for that one z)."""

from dataclasses import dataclass

import numpy as np

from vae_tfp.explain._tensors import stateless_seed, to_numpy


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
    z = model.encode(x).sample(seed=stateless_seed(seed))  # [n, latent]
    likelihood = model.decode(z)  # batch [n], event [*event]
    return Reconstructions(x=x, z=to_numpy(z), mean=to_numpy(model.likelihood_head.mean(likelihood)),
                           sample=to_numpy(likelihood.sample(seed=stateless_seed(seed + 1))),
                           log_px_given_z=to_numpy(likelihood.log_prob(x)))
