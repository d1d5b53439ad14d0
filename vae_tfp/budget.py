"""A budget on a model's size, checked before anything is built: the whole budget (parameters and the memory of one
training step) by the CLI's `train` and by the sidebar (Train stays off for a link or a setting that is too large),
the parameters alone by `build_vae` (so every model built, e.g. for a bundle or a saved run, is bounded; a saved
run's batch size does not matter for viewing it). Imports no TensorFlow: the sizes come from the registry entries
in `vae_tfp.families`.

    parameters P = sum over the encoder's and decoder's layers (the network family's layer sizes)
                   + the prior's parameters + the likelihood's own (a learned sigma)

    memory for one training step, float32 (4 bytes per value), with batch B and S = iwae_k samples of z:
        bytes ~= 4 * ( 4 P                                   weights, gradients and Adam's two moments
                     + 2 B (D + sum_l encoder outputs_l)     the input and the encoder's activations, kept for the
                                                             backward pass, and their gradients
                     + 2 B S (L + sum_l decoder outputs_l) ) z and the decoder's activations, and their gradients
    with D the data's dimension and L the latent dimension. It is an estimate, made to catch a model that cannot
    fit, not to size one to the byte: TensorFlow's temporaries come on top (the peak resident memory of two compiled
    training steps grew by 1.4x this estimate for a categorical on 28x28 images, 1.5x for a 2048-2048 MLP at batch
    512 and 1.7x for IWAE with k = 50, measured on CPU).

The limits live here, in one place; an operator who wants a smaller server lowers them.
"""

import math
from dataclasses import dataclass

from vae_tfp import families

MAX_PARAMETERS = 200_000_000  # 0.8 GB of float32 weights; 3.2 GB with gradients and Adam's moments
MAX_STEP_BYTES = 4 * 2**30  # memory for one training step
BYTES_PER_VALUE = 4  # float32


class BudgetError(ValueError):
    """The model described by a config is larger than the budget allows; the message names its size and the limit."""


@dataclass(frozen=True)
class ModelSize:
    parameters: int  # trainable parameters
    step_bytes: int  # estimated memory for one training step at the config's batch size and iwae_k
    batch_size: int

    def problem(self, max_parameters: int = MAX_PARAMETERS, max_step_bytes: int = MAX_STEP_BYTES,
                training: bool = True) -> str:
        """An empty string when the model fits the budget, else one sentence naming its size and the limit.
        training=False checks the parameters alone (building a model to look at it, not to train it)."""
        parts = []
        if self.parameters > max_parameters:
            parts.append(f"{self.parameters:,} parameters (the limit is {max_parameters:,})")
        if training and self.step_bytes > max_step_bytes:
            parts.append(f"about {_gigabytes(self.step_bytes)} of memory for one training step at batch size "
                         f"{self.batch_size} (the limit is {_gigabytes(max_step_bytes)})")
        if not parts:
            return ""
        return ("This model is too large to train here: " + " and ".join(parts) + ". Use fewer or narrower hidden "
                "layers, a smaller latent dimension or a smaller batch size.")


def _gigabytes(n: int) -> str:
    return f"{n / 2**30:,.1f} GB"


def estimate(config, event_shape, levels: int | None = None) -> ModelSize:
    """The size of the model `config` describes for data of `event_shape` (and `levels` grey levels, which only
    families that need levels read; None for points). ValueError if the families cannot be built for that data
    (e.g. conv on points, a categorical without levels)."""
    event_shape = tuple(int(d) for d in event_shape)
    likelihood = families.likelihoods.get(config.likelihood)
    posterior = families.posteriors.get(config.posterior)
    prior = families.priors.get(config.prior)
    network = families.networks.get(config.network)
    latent = int(config.latent_dim)
    encoder, decoder = network.layer_sizes(event_shape, latent, posterior.n_params(latent),
                                           likelihood.params_per_dim(levels), config.hidden)
    parameters = (sum(layer.params for layer in encoder + decoder)
                  + prior.n_params(latent, config.prior_components, math.prod(event_shape))
                  + likelihood.head_params(event_shape, config.sigma_mode))
    batch, samples = int(config.batch_size), int(config.iwae_k)
    values = (4 * parameters
              + 2 * batch * (math.prod(event_shape) + sum(layer.outputs for layer in encoder))
              + 2 * batch * samples * (latent + sum(layer.outputs for layer in decoder)))
    if prior.needs_encoder:  # each step encodes the K pseudo-inputs too
        values += 2 * int(config.prior_components) * (math.prod(event_shape) + sum(layer.outputs for layer in encoder))
    return ModelSize(parameters=parameters, step_bytes=BYTES_PER_VALUE * values, batch_size=batch)


def check(config, event_shape, levels: int | None = None, *, training: bool = True) -> ModelSize:
    """The model's size, or BudgetError (a ValueError) naming its size and the limit when it is too large (to train,
    or with training=False only to hold its parameters)."""
    size = estimate(config, event_shape, levels)
    problem = size.problem(training=training)
    if problem:
        raise BudgetError(problem)
    return size


def problem_for(config, dataset) -> str:
    """The whole budget's verdict for `config` on a loaded data set (its event shape and levels): "" when the model
    fits, else the sentence naming its size and the limit. A model that cannot be made for this data at all (conv
    on points, a categorical without levels) also gives "": the data's own checks say why, in better words."""
    try:
        return estimate(config, dataset.event_shape, dataset.levels).problem()
    except ValueError:
        return ""
