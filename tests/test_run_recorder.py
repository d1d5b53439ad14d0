"""The run recorder: the run directory appears with the first applied step, and the history grows at a bounded rate."""

import numpy as np

from vae_tfp.config import RunConfig
from vae_tfp.data import Dataset
from vae_tfp.training import RunRecorder, Trainer, history_every


def _points(n: int, scale: float = 1.0) -> Dataset:
    x = (np.random.default_rng(0).normal(size=(n, 2)) * scale).astype(np.float32)
    return Dataset("pts", "toy points", "points", x, None, x.copy(), None, None)


def test_history_is_bounded_per_epoch_and_per_run(tmp_path):
    # a small data set over many epochs (one step per epoch): one record per step before, now at most ~2000
    config = RunConfig(dataset="pts", likelihood="gaussian", latent_dim=1, hidden=(4,), batch_size=16, epochs=2600,
                       eval_every=100_000, checkpoint_every=100_000)
    recorder = RunRecorder(tmp_path / "many")
    trainer = Trainer(config, dataset=_points(16), callbacks=[recorder])
    assert trainer.total_steps == 2600 and history_every(1, 2600) == 2
    assert trainer.train().status == "completed"
    train = [r for r in recorder.run.history() if r["kind"] == "train"]
    assert len(train) == 1300 <= 2000
    assert [r["step"] for r in train] == list(range(2, 2601, 2))
    assert (tmp_path / "many" / "history.jsonl").stat().st_size < 2000 * 400  # bytes
    # each record is the mean of its steps: the loss of steps 1 and 2 averaged
    losses = []
    again = Trainer(config, dataset=_points(16), callbacks=[lambda e: losses.append(e.metrics["loss"])
                                                            if e.kind == "step" else None])
    again.train(max_steps=2)
    assert train[0]["loss"] == np.mean(losses)


def test_history_has_at_most_ten_train_records_per_epoch(tmp_path):
    recorder = RunRecorder(tmp_path / "digits")
    trainer = Trainer(RunConfig(dataset="digits", hidden=(8,), epochs=2), callbacks=[recorder])  # 12 steps / epoch
    trainer.train()
    train = [r for r in recorder.run.history() if r["kind"] == "train"]
    per_epoch = [sum(1 for r in train if (r["step"] - 1) // 12 == e) for e in range(2)]
    assert per_epoch == [6, 6] and history_every(12, 24) == 2


def test_no_run_directory_before_the_first_step(tmp_path):
    stopped = Trainer(RunConfig(dataset="digits", hidden=(8,), epochs=1),
                      callbacks=[RunRecorder(runs_root=tmp_path / "a"), RunRecorder(tmp_path / "b")])
    stopped.stop()  # e.g. Stop pressed while the model was being built
    assert stopped.train().steps == 0
    # x ~ 1e30: the gaussian log-likelihood overflows on the first step, which is not applied
    config = RunConfig(dataset="pts", likelihood="gaussian", latent_dim=1, hidden=(4,), batch_size=16, epochs=1)
    diverged = Trainer(config, dataset=_points(32, 1e30), callbacks=[RunRecorder(tmp_path / "c")])
    result = diverged.train()
    assert result.status == "diverged" and result.steps == 0 and "step 1" in result.message
    assert list(tmp_path.iterdir()) == []
