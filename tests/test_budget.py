"""The model-size budget: the TF-free parameter count equals Keras' count_params(), the memory estimate follows its
formula, and a model over the limit is refused before it is built (build_vae, the CLI)."""

import math

import pytest

from vae_tfp import budget
from vae_tfp.config import RunConfig
from vae_tfp.model import build_vae

HUGE = RunConfig(hidden=(16384,) * 8)


@pytest.mark.parametrize("event,levels,changes", [
    ((8, 8), None, {}),
    ((8, 8), None, {"network": "linear", "likelihood": "gaussian", "sigma_mode": "per_dim"}),
    ((8, 8), 17, {"likelihood": "categorical", "posterior": "full", "latent_dim": 4}),
    ((9, 7), 256, {"network": "conv", "likelihood": "discretized_logistic", "hidden": (16,)}),
    ((28, 28), None, {"network": "conv", "likelihood": "continuous_bernoulli", "prior": "mixture",
                      "prior_components": 3, "hidden": (32, 8)}),
    ((6, 6, 3), None, {"network": "conv", "likelihood": "gaussian", "sigma_mode": "shared", "hidden": ()}),
    ((10,), None, {"likelihood": "gaussian", "network": "mlp", "prior": "mixture", "posterior": "full",
                   "hidden": (7, 5, 3), "latent_dim": 3}),
    ((2,), None, {"likelihood": "gaussian", "network": "linear", "sigma_mode": "shared", "hidden": (64,)}),
])
def test_parameter_estimate_equals_keras_count_params(event, levels, changes):
    config = RunConfig(**({"hidden": (12, 6)} | changes))
    model = build_vae(config, event, levels)
    assert budget.estimate(config, event, levels).parameters == model.count_params()


def test_memory_estimate_follows_its_formula():
    # mlp 4 -> 3 -> z 2 (diagonal: 4 outputs); decoder 2 -> 3 -> 4 (bernoulli: 1 output per dimension)
    config = RunConfig(hidden=(3,), latent_dim=2, batch_size=10, iwae_k=5)
    params = (4 + 1) * 3 + (3 + 1) * 4 + (2 + 1) * 3 + (3 + 1) * 4
    activations_enc = 10 * (4 + 3 + 4)  # input, hidden, posterior parameters
    activations_dec = 10 * 5 * (2 + 3 + 4)  # z, hidden, likelihood parameters, for each of the 5 samples
    size = budget.estimate(config, (4,))
    assert size.parameters == params
    assert size.step_bytes == 4 * (4 * params + 2 * activations_enc + 2 * activations_dec)


def test_a_huge_model_is_refused_before_it_is_built():
    size = budget.estimate(HUGE, (8, 8))
    assert size.parameters > budget.MAX_PARAMETERS and size.step_bytes > budget.MAX_STEP_BYTES
    with pytest.raises(budget.BudgetError) as err:
        build_vae(HUGE, (8, 8))  # would need tens of GB: refused in milliseconds
    message = str(err.value)
    assert f"{size.parameters:,} parameters" in message and f"the limit is {budget.MAX_PARAMETERS:,}" in message
    assert isinstance(err.value, ValueError)


def test_a_large_batch_alone_can_exceed_the_memory_limit_of_training_but_not_of_building():
    # a categorical over 256 levels on 28x28 images: 200 704 decoder outputs per image
    config = RunConfig(likelihood="categorical", batch_size=65_536)
    size = budget.estimate(config, (28, 28), 256)
    assert size.parameters < budget.MAX_PARAMETERS and size.step_bytes > budget.MAX_STEP_BYTES
    assert "batch size 65536" in size.problem() and "parameters (the limit" not in size.problem()
    with pytest.raises(budget.BudgetError, match="batch size 65536"):
        budget.check(config, (28, 28), 256)
    assert budget.check(config, (28, 28), 256, training=False) == size  # a saved run of it still opens


def test_a_model_that_does_not_fit_the_data_is_left_to_the_data_checks():
    from vae_tfp.data import load

    points = load("two_moons")
    assert budget.problem_for(RunConfig(likelihood="categorical"), points) == ""  # prepare() explains the misfit
    assert budget.problem_for(RunConfig(network="conv", likelihood="gaussian"), points) == ""
    assert "too large" in budget.problem_for(HUGE.replace(likelihood="gaussian"), points)


def test_the_default_models_fit_with_room_to_spare():
    for event, levels, config in (((8, 8), None, RunConfig()), ((28, 28), 256, RunConfig(likelihood="categorical")),
                                  ((28, 28), None, RunConfig(hidden=(512, 256), latent_dim=32, prior="mixture"))):
        size = budget.estimate(config, event, levels)
        assert size.problem() == "" and size.parameters < budget.MAX_PARAMETERS / 1.5
        assert size.step_bytes < budget.MAX_STEP_BYTES / 2


def test_limits_are_one_place_and_can_be_lowered():
    size = budget.estimate(RunConfig(), (8, 8))
    assert size.problem() == ""
    assert "the limit is 1,000" in size.problem(max_parameters=1000)
    assert math.isclose(budget.MAX_STEP_BYTES / 2**30, 4.0)
