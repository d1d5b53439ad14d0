"""The trainer: learning happens, events arrive, bounded calls, stop, the NaN guard, its own seed stream, the data feed,
checkpoints and resume through the run recorder."""

import numpy as np
import pytest

from vae_tfp._tf import keras, tf
from vae_tfp.config import RunConfig
from vae_tfp.runs import load_model, open_run
from vae_tfp.training import RunRecorder, Trainer

FAST = dict(dataset="digits", epochs=4, batch_size=128, latent_dim=2, hidden=(64, 32))


def _weights(trainer):
    return [w.numpy().copy() for w in trainer.model.trainable_variables]


def test_short_training_improves_test_elbo_and_reports_events(tmp_path):
    events = []
    recorder = RunRecorder(runs_root=tmp_path)
    trainer = Trainer(RunConfig(**FAST), callbacks=[recorder, events.append])
    result = trainer.train()
    assert result.status == "completed" and result.steps == 4 * 12 and result.message == ""
    tests = [r for r in recorder.run.history() if r["kind"] == "test"]
    assert len(tests) == 4
    assert tests[-1]["elbo"] > tests[0]["elbo"] + 2.0  # nats
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("eval") == 4 and kinds.count("step") == 48
    assert events[-1].status == "completed" and all(e.trainer is trainer for e in events)
    step = [e for e in events if e.kind == "step"][-1]
    assert step.images_per_second > 0 and set(step.metrics) >= {"elbo", "reconstruction", "kl", "loss", "beta"}
    assert step.metrics["elbo"] == pytest.approx(step.metrics["reconstruction"] - step.metrics["kl"], rel=1e-5)
    metrics = recorder.run.metrics()
    assert metrics["status"] == "completed" and metrics["test_elbo"] == pytest.approx(tests[-1]["elbo"])
    assert result.test_metrics["elbo"] == pytest.approx(tests[-1]["elbo"])


def test_trainers_have_their_own_seed_stream():
    """Two trainers with one config, trained in turns in one process (with the process-global seeds disturbed in
    between), end with exactly the weights of one trained alone; another seed gives other weights."""
    config = RunConfig(**FAST | {"epochs": 2})
    alone = Trainer(config)
    alone.train()

    a, b = Trainer(config), Trainer(config)
    for _ in range(30):
        keras.utils.set_random_seed(int(np.random.default_rng().integers(1000)))  # what another trainer did once
        tf.random.uniform([3])
        a.train(max_steps=2)
        b.train(max_steps=3)
    assert a.step == b.step == alone.step == 24
    for w, wa, wb in zip(_weights(alone), _weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, w)
        np.testing.assert_array_equal(wb, w)
    assert a.evaluate_test() == alone.evaluate_test()  # the test-set z samples come from the stream too

    other = Trainer(config.replace(seed=1))
    assert not np.array_equal(_weights(other)[0], _weights(Trainer(config))[0])  # initial weights differ
    other.train()
    assert not np.array_equal(_weights(other)[0], _weights(alone)[0])


def test_max_steps_bounds_a_call_and_calls_add_up():
    trainer = Trainer(RunConfig(**FAST | {"epochs": 2}))
    steps = []
    trainer.callbacks.append(lambda e: steps.append(e.step) if e.kind == "step" else None)
    first = trainer.train(max_steps=5)
    assert first.status == "stopped" and first.steps == 5 and trainer.epoch == 0 and steps == [1, 2, 3, 4, 5]
    assert trainer.train(max_steps=0).steps == 5
    second = trainer.train(max_steps=7)  # ends exactly at the end of the first epoch
    assert second.status == "stopped" and second.steps == 12 and second.epochs == 1
    last = trainer.train(max_steps=100)  # more than is left
    assert last.status == "completed" and last.steps == 24 and steps == list(range(1, 25))
    with pytest.raises(ValueError, match="max_steps"):
        trainer.train(max_steps=-1)


@pytest.mark.parametrize("steps_per_call,stops_at", [(1, 3), (5, 5)])
def test_stop_is_honoured_within_one_block_holds_until_reset_and_keeps_the_model(tmp_path, steps_per_call, stops_at):
    """stop() asked in the event of step 3 is honoured after the block holding step 3: at once with one step per
    call, after step 5 with five (the steps of a block are applied before its events arrive, and each gets its
    event)."""
    recorder = RunRecorder(runs_root=tmp_path)
    steps = []
    trainer = Trainer(RunConfig(**FAST | {"epochs": 50}), callbacks=[recorder], steps_per_call=steps_per_call)

    def stop_at_3(event):
        if event.kind == "step":
            steps.append(event.step)
            if event.step == 3:
                trainer.stop()

    trainer.callbacks.append(stop_at_3)
    result = trainer.train()
    assert result.status == "stopped" and result.steps == stops_at and trainer.stop_requested
    assert steps == list(range(1, stops_at + 1))
    saved = load_model(recorder.run)
    x = trainer.data.x_test[:5]
    np.testing.assert_allclose(saved.encode(x).mean().numpy(), trainer.model.encode(x).mean().numpy(), rtol=1e-6)
    assert recorder.run.metrics()["status"] == "stopped" and recorder.run.metrics()["steps"] == stops_at
    assert trainer.train().steps == stops_at  # the stop holds
    trainer.reset_stop()
    trainer.callbacks.remove(stop_at_3)
    assert trainer.train(max_steps=4).steps == stops_at + 4


@pytest.mark.parametrize("steps_per_call", [1, 4, None])
def test_nan_guard_returns_diverged_names_the_step_and_keeps_last_good_weights(tmp_path, monkeypatch, steps_per_call):
    """The loss turns NaN from the 6th step on (decided inside the compiled step, so also in the middle of a block):
    step 6 is not applied, nor any after it; steps 1-5 were, and each got its event."""
    import vae_tfp.training.loop as loop

    original = loop.training_loss
    holder = {}

    def poisoned(model, x, **kw):
        loss, metrics = original(model, x, **kw)
        poison = holder["trainer"].optimizer.iterations >= 5  # 5 steps applied: this is the 6th
        return tf.where(poison, tf.constant(np.nan, tf.float32), loss), metrics

    monkeypatch.setattr(loop, "training_loss", poisoned)
    recorder = RunRecorder(runs_root=tmp_path)
    events = []
    trainer = Trainer(RunConfig(**FAST | {"epochs": 10}), callbacks=[recorder, events.append],
                      steps_per_call=steps_per_call)
    holder["trainer"] = trainer
    good = {}

    def keep(event):
        if event.kind == "step" and event.step == 5:
            good["weights"] = _weights(trainer)  # the block ended at step 5: the model holds step 5's weights

    trainer.callbacks.append(keep)
    result = trainer.train()  # no exception: a result that says so
    assert result.status == "diverged" and result.steps == 5
    assert [e.step for e in events if e.kind == "step"] == [1, 2, 3, 4, 5]
    assert int(trainer.optimizer.iterations.numpy()) == 5
    assert __import__("re").search(r"step 6 .*NaN/Inf.*weights of step 5.*learning rate", result.message)
    assert events[-1].kind == "end" and events[-1].status == "diverged" and events[-1].message == result.message
    for w, g in zip(_weights(trainer), good["weights"]):
        np.testing.assert_array_equal(w, g)
    run = open_run(recorder.run.path)
    assert run.metrics()["status"] == "diverged" and "step 6" in run.metrics()["message"]
    for w, g in zip(load_model(run).trainable_variables, good["weights"]):
        np.testing.assert_array_equal(w.numpy(), g)


def test_nan_in_data_is_refused_before_training():
    from vae_tfp.data import Dataset

    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    x[3, 1] = np.nan
    ds = Dataset("bad", "points with a NaN", "points", x, None, x.copy(), None, None)
    with pytest.raises(ValueError, match="(?i)nan"):
        Trainer(RunConfig(dataset="bad", likelihood="gaussian"), dataset=ds)


def test_checkpoint_and_resume_continue_the_same_run(tmp_path):
    config = RunConfig(**FAST | {"epochs": 3, "checkpoint_every": 5})
    recorder = RunRecorder(tmp_path / "run")
    first = Trainer(config, callbacks=[recorder])
    assert first.train(max_steps=17).steps == 17
    run_dir = recorder.run.path
    resumed = Trainer.resume(run_dir)
    assert resumed.step == 17 and resumed.epoch == 1
    np.testing.assert_array_equal(resumed.model.trainable_variables[0].numpy(),
                                  first.model.trainable_variables[0].numpy())
    assert int(resumed.optimizer.iterations.numpy()) == 17
    again = RunRecorder(run_dir)
    resumed.callbacks.append(again)
    result = resumed.train()
    assert result.status == "completed" and result.steps == 36 and again.run.path == run_dir
    steps = [r["step"] for r in again.run.history() if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    # the same run uninterrupted: resume continues the same batches, z samples and optimizer state
    uninterrupted = Trainer(config)
    uninterrupted.train()
    for w, u in zip(_weights(resumed), _weights(uninterrupted)):
        np.testing.assert_allclose(w, u, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_written_inside_a_run_of_blocks_holds_its_own_step(tmp_path):
    """Blocks of 4 steps end at every checkpoint step (every 5): when training dies at step 17 (a callback raises,
    so no checkpoint is written on the way out), the run's last checkpoint is step 15's, and resuming from it ends
    with the weights of a run never interrupted."""
    config = RunConfig(**FAST | {"epochs": 3, "checkpoint_every": 5})
    blocks = []
    first = Trainer(config, callbacks=[RunRecorder(tmp_path / "run")], steps_per_call=4)
    original = first.compiled_step.block

    def counted(idx, seeds, betas):
        blocks.append(len(idx))
        return original(idx, seeds, betas)

    first.compiled_step.block = counted

    def crash(event):
        if event.kind == "step" and event.step == 17:
            raise RuntimeError("the machine went away")

    first.callbacks.append(crash)
    with pytest.raises(RuntimeError, match="went away"):
        first.train()
    assert blocks[:4] == [4, 1, 4, 1] and sum(blocks) >= 17  # 1-4, 5, 6-9, 10, ...
    resumed = Trainer.resume(tmp_path / "run", steps_per_call=3)
    assert resumed.step == 15 and int(resumed.optimizer.iterations.numpy()) == 15
    resumed.callbacks.append(RunRecorder(tmp_path / "run"))
    assert resumed.train().status == "completed"
    uninterrupted = Trainer(config, steps_per_call=1)
    uninterrupted.train()
    for w, u in zip(_weights(resumed), _weights(uninterrupted)):
        np.testing.assert_allclose(w, u, rtol=1e-5, atol=1e-6)


def test_blocks_of_any_size_train_the_same_run():
    """One step per call, seven, or as many as the trainer picks: the same step metrics and exactly the same
    weights (a step computes the same numbers in whichever block it runs)."""
    config = RunConfig(**FAST | {"epochs": 2})
    runs = []
    for steps_per_call in (1, 7, None):
        metrics = []
        trainer = Trainer(config, steps_per_call=steps_per_call,
                          callbacks=[lambda e, m=metrics: m.append(e.metrics) if e.kind == "step" else None])
        trainer.train(max_steps=5)
        trainer.train()
        runs.append((metrics, _weights(trainer)))
    (m1, w1), *others = runs
    assert len(m1) == 24
    for metrics, weights in others:
        assert metrics == m1
        for a, b in zip(weights, w1):
            np.testing.assert_array_equal(a, b)


def test_blocks_end_where_a_callback_wants_the_weights():
    """A callback with `next_weights_step(step)` sees, in the event of each step it asked for, the weights of that
    very step (those of a trainer run step by step)."""
    config = RunConfig(**FAST | {"epochs": 2})
    wanted = {3, 10, 11, 19}
    seen, reference = {}, {}

    class Watcher:
        def __init__(self, trainer, into):
            self.trainer, self.into = trainer, into

        def next_weights_step(self, step):
            return min((s for s in wanted if s > step), default=None)

        def __call__(self, event):
            if event.kind == "step" and event.step in wanted:
                self.into[event.step] = _weights(self.trainer)

    blocked = Trainer(config, steps_per_call=8)
    blocked.callbacks.append(Watcher(blocked, seen))
    blocked.train()
    single = Trainer(config, steps_per_call=1)
    single.callbacks.append(Watcher(single, reference))
    single.train()
    assert set(seen) == set(reference) == wanted
    for step in wanted:
        for a, b in zip(seen[step], reference[step]):
            np.testing.assert_array_equal(a, b)


def test_steps_per_call_must_be_a_positive_integer():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="steps_per_call"):
            Trainer(RunConfig(**FAST), steps_per_call=bad)


def test_a_fresh_trainer_does_not_write_into_an_existing_run(tmp_path):
    recorder = RunRecorder(tmp_path / "run")
    Trainer(RunConfig(**FAST | {"epochs": 1}), callbacks=[recorder]).train()
    history = (tmp_path / "run" / "history.jsonl").read_text()
    fresh = Trainer(RunConfig(**FAST | {"epochs": 1}), callbacks=[RunRecorder(tmp_path / "run")])
    with pytest.raises(ValueError, match="already holds a run.*Trainer.resume"):
        fresh.train()
    assert (tmp_path / "run" / "history.jsonl").read_text() == history


def test_warmup_raises_beta_linearly():
    betas = []
    trainer = Trainer(RunConfig(**FAST | {"epochs": 2, "warmup_epochs": 1.0, "beta": 2.0}),
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
    trainer = Trainer(RunConfig(**FAST | {"epochs": 1} | overrides))
    result = trainer.train()
    assert result.status == "completed"
    assert set(result.test_metrics) == {"elbo", "reconstruction", "kl"}
    assert all(np.isfinite(v) for v in result.test_metrics.values())


def test_each_epoch_visits_every_image_once_in_a_seeded_order():
    trainer = Trainer(RunConfig(**FAST))
    feed = trainer.feed
    n = len(trainer.data.x_train)
    p0, p1 = feed.order(0), feed.order(1)
    assert np.array_equal(np.sort(p0), np.arange(n)) and not np.array_equal(p0, p1)
    assert np.array_equal(p0, Trainer(RunConfig(**FAST)).feed.order(0))  # what resume relies on
    idx = np.concatenate([inputs[0] for inputs in trainer.epoch_inputs(0)])
    assert np.array_equal(idx, p0)
    skipped = list(trainer.epoch_inputs(0, skip=3))
    assert len(skipped) == trainer.steps_per_epoch - 3 and np.array_equal(skipped[0][0], p0[3 * 128:4 * 128])
    assert np.array_equal(skipped[0][1], feed.batch_seed(0, 3))
    assert [feed.images_in_batch(i) for i in range(trainer.steps_per_epoch)] == [128] * 11 + [n - 11 * 128]


def test_dynamic_binarization_draws_bernoulli_of_the_intensities():
    feed = Trainer(RunConfig(**FAST)).feed
    idx = feed.order(0)[:64]
    intensity = feed.x_train[idx]  # grey levels in [0, 1]
    assert np.mean((intensity > 0.2) & (intensity < 0.8)) > 0.05  # really grey, not already binary
    draws = np.stack([feed.batch(tf.constant(idx), feed.batch_seed(e, 0)).numpy() for e in range(400)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    # mean of 400 Bernoulli draws: standard error <= 0.025 per pixel
    assert np.max(np.abs(draws.mean(axis=0) - intensity)) < 0.13
    assert abs(float(np.mean(draws.mean(axis=0) - intensity))) < 0.005
    again = feed.batch(tf.constant(idx), feed.batch_seed(0, 0)).numpy()
    assert np.array_equal(again, draws[0])  # same (seed, epoch, batch): same images
    assert not np.array_equal(draws[0], draws[1])


def test_throughput_meter_counts_busy_time_for_speed_and_wall_time_for_the_eta(monkeypatch):
    from vae_tfp.training import meter

    clock = iter([10.0, 10.5, 11.5, 20.0, 20.2])
    monkeypatch.setattr(meter.time, "perf_counter", lambda: next(clock))
    m = meter.ThroughputMeter(window=2)
    assert m.tick(100, 0.25, steps_left=10) == pytest.approx((400.0, 10 * 0.25))  # first step: wall = busy
    assert m.tick(100, 0.25, steps_left=9) == pytest.approx((400.0, 9 * (0.25 + 0.5) / 2))  # 0.5 s end to end
    assert m.tick(50, 0.5, steps_left=8) == pytest.approx((150 / 0.75, 8 * (0.5 + 1.0) / 2))  # window: 2 steps
    m.restart()  # e.g. a test evaluation: the 8.5 s gap does not count
    assert m.tick(100, 0.1, steps_left=7) == pytest.approx((150 / 0.6, 7 * (1.0 + 0.1) / 2))
