"""The trainer: learning happens, events arrive, cancel, the NaN guard, checkpoints and resume, reproducibility."""

import numpy as np
import pytest

from vae_tfp._tf import tf
from vae_tfp.config import RunConfig
from vae_tfp.runs import load_model, open_run
from vae_tfp.training import Trainer, TrainingDiverged

FAST = dict(dataset="digits", epochs=4, batch_size=128, latent_dim=2, hidden=(64, 32))


def test_short_training_improves_test_elbo_and_reports_events(tmp_path):
    events = []
    trainer = Trainer(RunConfig(**FAST), runs_root=tmp_path, callbacks=[events.append])
    result = trainer.train()
    assert result.status == "completed" and result.steps == 4 * 12
    tests = [r for r in result.run.history() if r["kind"] == "test"]
    assert len(tests) == 4
    assert tests[-1]["elbo"] > tests[0]["elbo"] + 2.0  # nats
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("eval") == 4 and kinds.count("step") == 48
    step = [e for e in events if e.kind == "step"][-1]
    assert step.images_per_second > 0 and set(step.metrics) >= {"elbo", "reconstruction", "kl", "loss", "beta"}
    assert step.metrics["elbo"] == pytest.approx(step.metrics["reconstruction"] - step.metrics["kl"], rel=1e-5)
    metrics = result.run.metrics()
    assert metrics["status"] == "completed" and metrics["test_elbo"] == pytest.approx(tests[-1]["elbo"])


def test_same_seed_same_history():
    def run():
        t = Trainer(RunConfig(**FAST | {"epochs": 2}), save=False)
        t.train()
        return t.evaluate_test()["elbo"], [w.numpy() for w in t.model.trainable_variables]

    (a, wa), (b, wb) = run(), run()
    assert a == b
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def test_stop_is_honoured_within_one_step_and_keeps_the_model(tmp_path):
    trainer = Trainer(RunConfig(**FAST | {"epochs": 50}), runs_root=tmp_path)

    def stop_at_3(event):
        if event.kind == "step" and event.step == 3:
            trainer.stop()

    trainer.callbacks.append(stop_at_3)
    result = trainer.train()
    assert result.status == "stopped" and result.steps == 3
    saved = load_model(result.run)
    x = trainer.data.x_test[:5]
    np.testing.assert_allclose(saved.encode(x).mean().numpy(), trainer.model.encode(x).mean().numpy(), rtol=1e-6)
    assert result.run.metrics()["status"] == "stopped"


def test_nan_guard_stops_names_the_step_and_keeps_last_good_weights(tmp_path, monkeypatch):
    import vae_tfp.training as training

    poison = tf.Variable(0.0)
    original = training.training_loss

    def poisoned(model, x, **kw):
        loss, metrics = original(model, x, **kw)
        return tf.where(poison > 0, tf.constant(np.nan, tf.float32), loss), metrics

    monkeypatch.setattr(training, "training_loss", poisoned)
    trainer = Trainer(RunConfig(**FAST | {"epochs": 10}), runs_root=tmp_path)
    good = {}

    def inject(event):
        if event.kind == "step" and event.step == 5:
            good["weights"] = [w.numpy().copy() for w in trainer.model.trainable_variables]
            poison.assign(1.0)

    trainer.callbacks.append(inject)
    with pytest.raises(TrainingDiverged, match=r"step 6 .*NaN/Inf.*weights of step 5.*learning rate"):
        trainer.train()
    for w, g in zip(trainer.model.trainable_variables, good["weights"]):
        np.testing.assert_array_equal(w.numpy(), g)
    run = open_run(trainer.run.path)
    assert run.metrics()["status"] == "diverged" and "step 6" in run.metrics()["message"]
    saved = load_model(run)
    for w, g in zip(saved.trainable_variables, good["weights"]):
        np.testing.assert_array_equal(w.numpy(), g)


def test_nan_in_data_is_refused_before_training():
    from vae_tfp.data import Dataset

    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    x[3, 1] = np.nan
    ds = Dataset("bad", "points with a NaN", "points", x, None, x.copy(), None, None)
    with pytest.raises(ValueError, match="(?i)nan"):
        Trainer(RunConfig(dataset="bad", likelihood="gaussian"), dataset=ds, save=False)


def test_checkpoint_and_resume_continue_the_same_run(tmp_path):
    config = RunConfig(**FAST | {"epochs": 3, "checkpoint_every": 5})
    first = Trainer(config, runs_root=tmp_path)
    first.callbacks.append(lambda e: first.stop() if e.kind == "step" and e.step == 17 else None)
    assert first.train().steps == 17
    run_dir = first.run.path
    resumed = Trainer.resume(run_dir)
    assert resumed.step == 17 and resumed.epoch == 1
    np.testing.assert_array_equal(resumed.model.trainable_variables[0].numpy(),
                                  first.model.trainable_variables[0].numpy())
    assert int(resumed.optimizer.iterations.numpy()) == 17
    result = resumed.train()
    assert result.status == "completed" and result.steps == 36 and result.run.path == run_dir
    steps = [r["step"] for r in result.run.history() if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_warmup_raises_beta_linearly(tmp_path):
    betas = []
    trainer = Trainer(RunConfig(**FAST | {"epochs": 2, "warmup_epochs": 1.0, "beta": 2.0}), save=False,
                      callbacks=[lambda e: betas.append(e.metrics["beta"]) if e.kind == "step" else None])
    trainer.train()
    assert betas[0] == pytest.approx(0.0)
    assert betas[6] == pytest.approx(2.0 * 6 / 12)
    assert betas[-1] == pytest.approx(2.0)


@pytest.mark.parametrize("overrides", [
    {"likelihood": "categorical", "network": "conv"},
    {"likelihood": "discretized_logistic", "prior": "mixture", "prior_components": 3},
    {"likelihood": "gaussian", "sigma_mode": "per_dim", "posterior": "full", "iwae_k": 4},
    {"likelihood": "continuous_bernoulli", "free_bits": 0.2, "lr_schedule": "cosine"},
    {"dataset": "two_moons", "likelihood": "gaussian", "sigma_mode": "shared", "hidden": (32,)},
])
def test_every_family_trains_a_step_with_finite_metrics(overrides):
    trainer = Trainer(RunConfig(**FAST | {"epochs": 1} | overrides), save=False)
    result = trainer.train()
    assert result.status == "completed"
    assert all(np.isfinite(v) for v in result.test_metrics.values())


def test_each_epoch_visits_every_image_once_in_a_seeded_order():
    trainer = Trainer(RunConfig(**FAST), save=False)
    n = len(trainer.data.x_train)
    p0, p1 = trainer._permutation(0), trainer._permutation(1)
    assert np.array_equal(np.sort(p0), np.arange(n)) and not np.array_equal(p0, p1)
    assert np.array_equal(p0, Trainer(RunConfig(**FAST), save=False)._permutation(0))  # what resume relies on
    idx = np.concatenate([inputs[0] for inputs in trainer._epoch_inputs(0)])
    assert np.array_equal(idx, p0)
    skipped = list(trainer._epoch_inputs(0, skip=3))
    assert len(skipped) == trainer.steps_per_epoch - 3 and np.array_equal(skipped[0][0], p0[3 * 128:4 * 128])


def test_dynamic_binarization_draws_bernoulli_of_the_intensities():
    trainer = Trainer(RunConfig(**FAST), save=False)
    idx = trainer._permutation(0)[:64]
    intensity = trainer.data.x_train[idx]  # grey levels in [0, 1]
    assert np.mean((intensity > 0.2) & (intensity < 0.8)) > 0.05  # really grey, not already binary
    draws = np.stack([trainer._batch(tf.constant(idx), trainer._batch_seed(e, 0)).numpy() for e in range(400)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    # mean of 400 Bernoulli draws: standard error <= 0.025 per pixel
    assert np.max(np.abs(draws.mean(axis=0) - intensity)) < 0.13
    assert abs(float(np.mean(draws.mean(axis=0) - intensity))) < 0.005
    again = trainer._batch(tf.constant(idx), trainer._batch_seed(0, 0)).numpy()
    assert np.array_equal(again, draws[0])  # same (seed, epoch, batch): same images
    assert not np.array_equal(draws[0], draws[1])
