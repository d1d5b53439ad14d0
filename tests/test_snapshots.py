"""Snapshots (vae_tfp.snapshots, vae_tfp.training.snapshots): written by the run recorder at a bounded rate and
count (driven by a fake clock: nothing here depends on how fast the machine is), atomically, dropped on resume
after the checkpoint; a snapshot loads into a model that gives the density the weights had at that step; bundles
carry them and refuse snapshots that do not belong to the model."""

import io
import zipfile

import numpy as np
import pytest

from vae_tfp import density, sharing
from vae_tfp import snapshots as snap
from vae_tfp.config import RunConfig
from vae_tfp.data import Dataset
from vae_tfp.runs import open_run
from vae_tfp.snapshots import SnapshotPolicy
from vae_tfp.training import RunRecorder, Trainer
from vae_tfp.training.snapshots import SnapshotRecorder


def _points(n: int = 64) -> Dataset:
    x = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    return Dataset("pts", "toy points", "points", x, None, x[:16].copy(), None, None)


CONFIG = RunConfig(dataset="pts", likelihood="gaussian", latent_dim=2, hidden=(8,), batch_size=16, epochs=15,
                   eval_every=100, checkpoint_every=10_000)  # 4 steps per epoch, 60 steps


class FakeClock:
    """A clock that moves only when told: `tick` seconds per training step (a callback after the recorder)."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        return self.now

    def on_event(self, event) -> None:
        if event.kind == "step":
            self.now += self.tick


def _train(path, clock, policy=None, *, max_steps=None, resume=False, extra=()):
    recorder = RunRecorder(path, snapshots=SnapshotRecorder(policy, clock=clock))
    if resume:
        trainer = Trainer.resume(path, dataset=_points(), callbacks=[recorder, clock.on_event, *extra])
    else:
        trainer = Trainer(CONFIG, dataset=_points(), callbacks=[recorder, clock.on_event, *extra])
    result = trainer.train(max_steps=max_steps)
    return trainer, recorder, result


def _steps(items):
    return [s.step for s in items]


# --- the schedule --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("total, count", [(60, 39), (800, 39), (100_000, 39), (7, 2), (1, 5), (5, 40), (120, 1)])
def test_replay_steps_are_few_sorted_and_end_at_the_last_step(total, count):
    steps = snap.replay_steps(total, count)
    assert steps == sorted(set(steps)) and 1 <= len(steps) <= count
    assert steps[-1] == total and steps[0] >= 1
    if count >= total:
        assert steps == list(range(1, total + 1))
    if count >= 10 and total > 1000:  # half of them on a log scale: dense early, where training changes fastest
        assert sum(s <= total / 100 for s in steps) >= count // 4


def test_the_policy_bounds_count_and_bytes():
    policy = SnapshotPolicy()
    assert policy.replay_slots(300_000) == 40  # a small point model: 40 (12 MB)
    assert policy.replay_slots(4_300_000) == 7  # the reference Fashion-MNIST MLP: 7 x 4.3 MB <= 32 MiB
    assert policy.replay_slots(20 * 2**20) == 0  # one would not fit twice: none
    assert not policy.writes(65 * 2**20) and policy.replay_slots(65 * 2**20) == 0
    for size in (1, 10**4, 10**6, 10**7, 3 * 10**7):
        assert policy.replay_slots(size) * size <= policy.replay_bytes


# --- the recorder ------------------------------------------------------------------------------------------------
def test_live_snapshots_follow_the_clock_and_replay_ones_the_schedule(tmp_path):
    clock = FakeClock(tick=0.7)  # 2 s pass every 3 steps
    trainer, recorder, result = _train(tmp_path / "run", clock)
    assert result.status == "completed" and trainer.step == 60
    writer = recorder.snapshots
    # live: step 1, then every 3 steps (>= 2 s of fake time), then once more at the end
    live_steps = [1] + list(range(4, 61, 3))
    assert writer.written["live"] == len(live_steps) + 1
    live = snap._listing(tmp_path / "run", "live")
    assert _steps(live) == [58, 60]  # the newest two are kept
    assert snap.live_snapshot(tmp_path / "run").step == 60
    # replay: exactly the schedule (which ends at the last step), within the policy's count
    slots = SnapshotPolicy().replay_slots(snap.weight_bytes(trainer.model))
    assert slots == 40
    assert _steps(snap.replay_snapshots(tmp_path / "run")) == snap.replay_steps(60, slots - 1)
    assert len(snap.replay_snapshots(tmp_path / "run")) <= slots
    assert not [p for p in snap.folder(tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temporaries


def test_a_frozen_clock_writes_one_live_snapshot_per_train_call_and_a_slow_write_backs_off(tmp_path):
    clock = FakeClock(tick=0.0)
    _, recorder, _ = _train(tmp_path / "frozen", clock)
    assert recorder.snapshots.written["live"] == 2  # the first step and the end

    class SlowWrites(FakeClock):  # every reading after a write's start says 1 s passed: writing takes 1 s
        def __call__(self):
            self.now += 0.5
            return self.now

    slow = SlowWrites(tick=0.0)
    _, recorder, _ = _train(tmp_path / "slow", slow)
    # each write "costs" 0.5 s, so the next waits for max(2 s, 0.5 / 0.05 = 10 s): far fewer than one per 2 s
    assert 2 <= recorder.snapshots.written["live"] <= 60 * 0.5 / 10 + 2


def test_a_small_budget_means_fewer_snapshots_and_a_large_model_none(tmp_path):
    clock = FakeClock(tick=1.0)
    trainer, recorder, _ = _train(tmp_path / "few", clock, SnapshotPolicy(replay_bytes=1))
    assert recorder.snapshots.slots == 0 and snap.replay_snapshots(tmp_path / "few") == []
    assert snap.live_snapshot(tmp_path / "few").step == 60  # live still works
    size = snap.weight_bytes(trainer.model)
    _, recorder, _ = _train(tmp_path / "five", clock, SnapshotPolicy(replay_bytes=5 * size))
    assert recorder.snapshots.slots == 5
    assert _steps(snap.replay_snapshots(tmp_path / "five")) == snap.replay_steps(60, 4) == [1, 8, 30, 60]
    _, recorder, _ = _train(tmp_path / "none", clock, SnapshotPolicy(max_bytes=size - 1))
    assert not snap.folder(tmp_path / "none").exists()
    trainer = Trainer(CONFIG, dataset=_points(), callbacks=[RunRecorder(tmp_path / "off", snapshots=None)])
    trainer.train(max_steps=5)
    assert not snap.folder(tmp_path / "off").exists()


def test_stop_and_resume_keep_the_count_bounded_and_drop_lost_work(tmp_path):
    from vae_tfp.model import build_vae

    clock = FakeClock(tick=1.0)
    path = tmp_path / "run"
    six = SnapshotPolicy(replay_bytes=6 * snap.weight_bytes(build_vae(CONFIG, (2,))))
    trainer, recorder, result = _train(path, clock, six, max_steps=7)
    assert result.status == "stopped" and trainer.step == 7
    slots = recorder.snapshots.slots
    schedule = snap.replay_steps(60, slots - 1)
    assert slots == 6 and schedule == [1, 8, 20, 40, 60]
    assert _steps(snap.replay_snapshots(path)) == [1, 7]  # the schedule so far, and where the call stopped
    # lost work: snapshots of steps after the checkpoint (step 7), as a crash would leave them
    (snap.folder(path) / snap.file_name("replay", 30)).write_bytes(b"lost")
    (snap.folder(path) / snap.file_name("live", 9)).write_bytes(b"lost")
    trainer, recorder, result = _train(path, clock, six, max_steps=20, resume=True)
    assert trainer.step == 27 and 30 not in _steps(snap.replay_snapshots(path))
    assert 9 not in _steps(snap._listing(path, "live"))
    assert _steps(snap.replay_snapshots(path)) == [1, 8, 20, 27]  # the earlier stop (7) dropped, this one kept
    trainer, recorder, result = _train(path, clock, six, resume=True)
    assert result.status == "completed"
    assert _steps(snap.replay_snapshots(path)) == schedule and len(schedule) <= slots


def test_a_snapshot_gives_the_density_the_weights_had_at_its_step(tmp_path):
    """At two scheduled steps a callback (after the recorder) computes log p(x) with the trainer's own model; after
    training, the snapshots of those steps loaded into a fresh model give the same numbers, and differ from the
    final model's."""
    clock = FakeClock(tick=1.0)
    x = _points().x_test
    at_step = {}
    schedule = None

    def measure(event):
        if event.kind == "step" and event.step in schedule:
            at_step[event.step] = density.log_px_at(event.trainer.model, x, latent_grid=60)

    schedule = set(snap.replay_steps(60, 39)[::9])
    trainer, recorder, _ = _train(tmp_path / "run", clock, extra=(measure,))
    assert set(at_step) == schedule
    run = open_run(tmp_path / "run")
    model = snap.build_model(run)
    replay = {s.step: s for s in snap.replay_snapshots(run.path)}
    final = density.log_px_at(trainer.model, x, latent_grid=60)
    for step, expected in at_step.items():
        snap.load_snapshot(model, replay[step])
        np.testing.assert_allclose(density.log_px_at(model, x, latent_grid=60), expected, rtol=0, atol=1e-9)
        if step != 60:
            assert np.max(np.abs(expected - final)) > 1e-3
    assert snap.load_live(run.path, model).step == 60
    np.testing.assert_allclose(density.log_px_at(model, x, latent_grid=60), final, rtol=0, atol=1e-9)
    with pytest.raises(FileNotFoundError):
        snap.load_snapshot(model, snap.Snapshot(99, snap.folder(run.path) / snap.file_name("replay", 99), "replay"))


# --- bundles -------------------------------------------------------------------------------------------------------
@pytest.fixture
def moons_run(tmp_path):
    """A tiny run on a built-in 2-D data set (bundles name built-in data sets only), with snapshots."""
    config = RunConfig(dataset="two_moons", likelihood="gaussian", latent_dim=2, hidden=(8,), batch_size=1000,
                       epochs=3, checkpoint_every=10_000)
    recorder = RunRecorder(tmp_path / "src" / "moons", snapshots=SnapshotRecorder(clock=FakeClock(1.0)))
    Trainer(config, callbacks=[recorder]).train()
    return recorder.run


def _members(bundle: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_bundles_round_trip_the_replay_snapshots(moons_run, tmp_path):
    replay = snap.replay_snapshots(moons_run.path)
    assert _steps(replay) == list(range(1, 16))  # 15 steps, fewer than 40: every step
    bundle = sharing.export_bundle(moons_run)
    names = sorted(_members(bundle))
    assert [n for n in names if n.startswith("snapshots/")] == [f"snapshots/step-{s:08d}.weights.h5"
                                                                for s in range(1, 16)]
    assert "live" not in " ".join(names)  # the live snapshot stays home: the final weights travel anyway
    imported = sharing.import_bundle(bundle, tmp_path / "dst", name="shared")
    got = snap.replay_snapshots(imported.path)
    assert _steps(got) == _steps(replay)
    for a, b in zip(replay, got):
        assert a.path.read_bytes() == b.path.read_bytes()
    model = snap.build_model(imported)
    x = np.array([[0.5, 0.25], [1.0, 0.0]])
    snap.load_snapshot(model, got[4])
    reference = snap.load_snapshot(snap.build_model(moons_run), replay[4])
    np.testing.assert_allclose(density.log_px_at(model, x), density.log_px_at(reference, x), atol=1e-12)


def test_bundles_thin_their_snapshots_to_a_budget(moons_run, monkeypatch):
    size = snap.replay_snapshots(moons_run.path)[0].path.stat().st_size
    monkeypatch.setattr(sharing, "BUNDLE_SNAPSHOT_BYTES", 4 * size)
    names = [n for n in _members(sharing.export_bundle(moons_run)) if n.startswith("snapshots/")]
    assert names == [f"snapshots/step-{s:08d}.weights.h5" for s in (1, 6, 10, 15)]  # evenly, first and last kept


def test_bundles_without_snapshots_still_open(moons_run, tmp_path):
    members = {n: d for n, d in _members(sharing.export_bundle(moons_run)).items() if not n.startswith("snap")}
    run = sharing.import_bundle(_zip(members), tmp_path / "dst")
    assert snap.replay_snapshots(run.path) == [] and not snap.folder(run.path).exists()


@pytest.mark.parametrize("change, message", [
    (lambda m: {**m, "snapshots/step-1.weights.h5": b"x"}, "unexpected member(s) 'snapshots/step-1.weights.h5'"),
    (lambda m: {**m, "snapshots/../step-00000001.weights.h5": b"x"}, "unexpected member(s)"),
    (lambda m: {**m, "snapshots/": b""}, "unexpected member(s) 'snapshots/'"),
    (lambda m: {**m, "snapshots/step-00000099.weights.h5": b"\x80\x04pickle"}, "is not an HDF5 file"),
    (lambda m: {**m, "snapshots/step-00000099.weights.h5": m["weights.weights.h5"][:2000]},
     "snapshots/step-00000099.weights.h5 is not a readable HDF5 file"),
    (lambda m: {**m, **{f"snapshots/step-{i:08d}.weights.h5": m["weights.weights.h5"] for i in range(100, 165)}},
     "at most 64 are allowed"),
])
def test_bad_snapshots_in_a_bundle_are_refused_and_leave_nothing(moons_run, tmp_path, change, message):
    members = change(_members(sharing.export_bundle(moons_run)))
    root = tmp_path / "dst"
    with pytest.raises(sharing.BundleError) as err:
        sharing.import_bundle(_zip(members), root)
    assert message in str(err.value)
    assert not root.exists() or not any(root.iterdir())


def test_a_snapshot_of_another_model_is_refused(moons_run, tmp_path):
    other = RunConfig(dataset="two_moons", likelihood="gaussian", latent_dim=2, hidden=(16,))
    from vae_tfp.model import build_vae

    path = tmp_path / "other.weights.h5"
    build_vae(other, (2,)).save_weights(str(path))
    members = {**_members(sharing.export_bundle(moons_run)), "snapshots/step-00000002.weights.h5": path.read_bytes()}
    with pytest.raises(sharing.BundleError, match="does not hold the arrays of weights.weights.h5"):
        sharing.import_bundle(_zip(members), tmp_path / "dst")
