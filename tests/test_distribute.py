"""tf.distribute in one process: strategies from the environment (mirrored on this one-device machine,
multiworker without or with a malformed TF_CONFIG), TF_CONFIG's parsing and roles, the shards' loss against the
global batch's, the shard seeds, the recorder on a worker that is not the chief, and (in processes of their own,
with logical CPU devices) the replicated step against one process on uneven and empty shards. Several workers
training together: tests/test_distribute_workers.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vae_tfp import cli, distribute

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "digits", "--likelihood", "bernoulli", "--latent-dim", "2", "--hidden", "16", "--epochs", "2",
         "--seed", "5"]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def script(name: str, *args, timeout=900) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / name), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return last_json(proc.stdout)


# --- TF_CONFIG and roles ----------------------------------------------------------------------------------------
def test_tf_config_roles_and_names():
    text = json.dumps({"cluster": {"worker": ["10.0.0.2:2222", "10.0.0.3:2222"], "chief": ["10.0.0.1:2222"]},
                       "task": {"type": "worker", "index": 1}})
    c = distribute.parse_tf_config(text)
    assert c.workers == 3 and c.rank == 2 and not c.is_chief  # the chief first, then the workers in order
    assert c.name(0) == "the chief (10.0.0.1:2222)" and c.name(2) == "worker 1 (10.0.0.3:2222)"
    assert c.rank_of("chief", 0) == 0 and c.rank_of("worker", 0) == 1 and c.rank_of("ps", 0) is None
    c = distribute.parse_tf_config(json.dumps({"cluster": {"worker": ["h:1", "h:2"]},
                                               "task": {"type": "worker", "index": 0}}))
    assert c.is_chief and c.name(0) == "the chief (worker 0, h:1)" and c.name(1) == "worker 1 (h:2)"


@pytest.mark.parametrize("value, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', 'has no "cluster"'),
    ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "names the job 'ps'"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["h"]}, "task": {"type": "worker", "index": 0}}', "not a \"host:port\" address"),
    ('{"cluster": {"worker": ["h:70000"]}, "task": {"type": "worker", "index": 0}}', "not a \"host:port\" address"),
    ('{"cluster": {"worker": ["h:1", "h:1"]}, "task": {"type": "worker", "index": 0}}', "lists an address twice"),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}', 'more than one "chief"'),
    ('{"cluster": {"worker": ["h:1"]}}', 'has no "task"'),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "task type 'chief'"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}', "task index 1"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}', "task index '0'"),
])
def test_malformed_tf_config_names_what_is_wrong(value, words):
    with pytest.raises(distribute.DistributeError) as err:
        distribute.parse_tf_config(value)
    assert words in str(err.value) and '"cluster"' in str(err.value)  # the message shows what it should look like


def test_missing_tf_config_says_what_to_set():
    with pytest.raises(distribute.DistributeError, match="TF_CONFIG, which is not set.*launch --workers"):
        distribute.cluster_from_environment({})


def test_local_cluster_gives_each_worker_its_task():
    configs = distribute.local_cluster(3)
    addresses = configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert [distribute.parse_tf_config(json.dumps(c)).rank for c in configs] == [0, 1, 2]


# --- the CLI on this one-device machine ---------------------------------------------------------------------------
def test_multiworker_without_or_with_a_bad_tf_config_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = cli.main(["train", *SMALL, "--strategy", "multiworker", "--runs-root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "--strategy multiworker" in err and "TF_CONFIG" in err and "launch --workers" in err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker"}}')
    code = cli.main(["train", *SMALL, "--strategy", "multiworker", "--runs-root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and 'TF_CONFIG has no "task"' in err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_mirrored_on_one_device_trains_like_the_default(tmp_path, capsys):
    """One device: one replica through the replicated step (no merge_call inside a cond); same batches, same noise,
    so the same model as the default strategy up to float rounding (Keras' Adam update against the fused one)."""
    results = {}
    for strategy in ("default", "mirrored"):
        code = cli.main(["train", *SMALL, "--strategy", strategy, "--runs-root", str(tmp_path / strategy), "--json",
                         "--quiet"])
        out = capsys.readouterr().out
        assert code == 0
        results[strategy] = last_json(out)
    assert results["mirrored"]["replicas"] == 1 and results["mirrored"]["status"] == "completed"
    assert results["mirrored"]["steps"] == results["default"]["steps"]
    assert results["mirrored"]["test_elbo"] == pytest.approx(results["default"]["test_elbo"], abs=1e-3)


def test_launch_refuses_what_it_cannot_run(capsys):
    assert cli.main(["launch", "--workers", "2", "--", "evaluate", "runs/x"]) == 2
    assert "launch runs the train command" in capsys.readouterr().err
    assert cli.main(["launch", "--workers", "2", "--", "train", "--strategy", "default"]) == 2
    assert "sets --strategy multiworker itself" in capsys.readouterr().err


# --- the shards' loss ---------------------------------------------------------------------------------------------
def _model(latent=3):
    from vae_tfp.model import VAE

    return VAE((8, 8), latent_dim=latent, likelihood="bernoulli", hidden=(16,))


def _reference(model, shards, seeds, beta, free_bits, iwae_k):
    """The global batch's loss from per-example terms (TFP's log_prob, closed-form KL), plain numpy means."""
    import math

    from vae_tfp._tf import tf

    recon, kl_dims, bound = [], [], []
    for x, seed in zip(shards, seeds):
        if len(x) == 0:
            continue
        out = model(x, n_samples=iwae_k, seed=seed)
        log_lik = out.likelihood.log_prob(x).numpy()  # [k, b]
        mu, sd = out.posterior.mean().numpy(), out.posterior.stddev().numpy()
        recon.append(log_lik.mean(0))
        kl_dims.append(0.5 * (mu ** 2 + sd ** 2 - 1) - np.log(sd))
        log_w = log_lik + beta * (out.prior.log_prob(out.z) - out.posterior.log_prob(out.z)).numpy()
        bound.append((tf.reduce_logsumexp(log_w, 0) - math.log(iwae_k)).numpy())
    recon, kl_dims, bound = np.concatenate(recon), np.concatenate(kl_dims), np.concatenate(bound)
    if iwae_k > 1:
        return -bound.mean()
    if free_bits > 0:
        return -recon.mean() + beta * np.maximum(kl_dims.mean(0), free_bits).sum()
    return -recon.mean() + beta * kl_dims.sum(1).mean()


@pytest.mark.parametrize("free_bits, iwae_k", [(0.0, 1), (0.3, 1), (0.0, 4)])
def test_shard_losses_and_gradients_add_up_to_the_global_batch(free_bits, iwae_k):
    from vae_tfp._tf import tf
    from vae_tfp.objectives import shard_loss

    model = _model()
    rng = np.random.default_rng(1)
    x = (rng.random((11, 8, 8)) < 0.4).astype(np.float32)
    sizes = [5, 4, 2, 0]  # uneven, one empty: it holds one padding row of weight 0
    bounds = np.cumsum([0] + sizes)
    shards = [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    inputs = [s if len(s) else x[:1] for s in shards]
    weights = [np.ones(len(s), np.float32) if len(s) else np.zeros(1, np.float32) for s in shards]
    seeds = [tf.constant([7, g], tf.int32) for g in range(len(shards))]
    beta, n = 0.8, len(x)

    def losses(global_sum):
        return [shard_loss(model, xi, n_global=n, beta=beta, free_bits=free_bits, iwae_k=iwae_k, seed=s,
                           global_sum=global_sum, weights=w) for xi, s, w in zip(inputs, seeds, weights)]

    locals_ = []  # free bits: each shard's KL sums per dimension, added up as the all-reduce would
    losses(lambda t: locals_.append(t) or t)
    every = tf.add_n(locals_) if locals_ else None
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        parts = losses(lambda t: every)
        total = tf.add_n([loss for loss, _ in parts])
    reference = _reference(model, shards, seeds, beta, free_bits, iwae_k)
    assert float(total) == pytest.approx(reference, rel=1e-5)
    # the empty shard adds exactly nothing, and finite zeros to the gradient
    empty_loss, empty_sums = parts[-1]
    empty_grads = tape.gradient(empty_loss, variables)
    assert float(empty_loss) == 0.0 and all(float(v) == 0.0 for v in empty_sums.values())
    assert all(np.all(g.numpy() == 0) for g in empty_grads if g is not None)
    # the shards' gradients add up to the gradient of the loss over the whole batch computed in one piece
    summed = [tf.add_n([g for g in gs if g is not None]) for gs in
              zip(*[tape.gradient(loss, variables, unconnected_gradients="zero") for loss, _ in parts])]
    with tf.GradientTape() as tape2:
        whole = sum(shard_loss(model, xi, n_global=n, beta=beta, free_bits=free_bits, iwae_k=iwae_k, seed=s,
                               global_sum=lambda t: every, weights=w)[0]
                    for xi, s, w in zip(inputs, seeds, weights))
    for a, b in zip(summed, tape2.gradient(whole, variables)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    sums = {k: sum(float(p[1][k]) for p in parts) for k in parts[0][1]}
    assert set(sums) == ({"reconstruction", "kl", "iwae"} if iwae_k > 1 else {"reconstruction", "kl"})


@pytest.mark.parametrize("free_bits, iwae_k, kl", [(0.0, 1, "analytic"), (0.4, 1, "analytic"), (0.0, 3, "analytic"),
                                                   (0.0, 1, "mc")])
def test_one_shard_is_the_training_loss(free_bits, iwae_k, kl):
    """A batch as its own single shard: the same loss and the same terms as `training_loss` (the same z)."""
    from vae_tfp._tf import tf
    from vae_tfp.objectives import shard_loss, training_loss

    model = _model()
    x = (np.random.default_rng(2).random((9, 8, 8)) < 0.5).astype(np.float32)
    seed = tf.constant([3, 4], tf.int32)
    kwargs = dict(beta=0.6, kl=kl, free_bits=free_bits, iwae_k=iwae_k, seed=seed)
    loss, metrics = training_loss(model, x, **kwargs)
    part, sums = shard_loss(model, x, n_global=len(x), **kwargs)
    assert float(part) == pytest.approx(float(loss), rel=1e-6)
    assert float(sums["reconstruction"]) / len(x) == pytest.approx(float(metrics["reconstruction"]), rel=1e-6)
    assert float(sums["kl"]) / len(x) == pytest.approx(float(metrics["kl"]), rel=1e-6)


def test_each_shard_draws_its_own_noise():
    from vae_tfp._tf import tf
    from vae_tfp.training.seeds import batch_seed, shard_seed, z_seed

    seed = tf.constant(batch_seed(3, 1, 4))
    streams = [tuple(shard_seed(seed, g, 4).numpy()) for g in range(4)] + [tuple(z_seed(seed, g).numpy())
                                                                           for g in range(4)]
    assert len(set(streams)) == 8  # binarization and z: a stream per shard, none shared
    assert tuple(shard_seed(seed, 0, 1).numpy()) == tuple(seed.numpy())  # one shard: what one replica draws


# --- the recorder on a worker that is not the chief ---------------------------------------------------------------
def test_only_the_chief_writes_the_run(tmp_path):
    from vae_tfp.config import RunConfig
    from vae_tfp.training import RunRecorder, Trainer

    cluster = distribute.parse_tf_config(json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                                     "task": {"type": "worker", "index": 1}}))
    trainer = Trainer(RunConfig(dataset="digits", likelihood="bernoulli", latent_dim=2, hidden=(8,), epochs=1))
    trainer.cluster = distribute.WorkerInfo(1, 2, cluster)  # as worker 1 of 2 would see itself
    trainer._agreed = True  # one process here: no other worker to agree with
    recorder = RunRecorder(runs_root=tmp_path / "runs")
    trainer.callbacks.append(recorder)
    assert trainer.train(max_steps=3).status == "stopped"
    assert recorder.run is None and not (tmp_path / "runs").exists()


# --- several replicas in one process (logical CPU devices) --------------------------------------------------------
def test_mirrored_strategy_matches_one_device():
    out = script("mirrored_vs_single.py", "6")
    single, mirrored = out["single"], out["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert single["steps"] == mirrored["steps"] == 6 * 12
    # same initial weights, same first batch: the loss (batch mean) differs only by the z samples drawn
    assert abs(single["first_loss"] - mirrored["first_loss"]) < 0.5
    # gradients averaged (not summed) over replicas: the same learning curve, within run-to-run noise
    assert abs(single["test_elbo"] - mirrored["test_elbo"]) < 1.5, out


@pytest.mark.parametrize("flags", [[], ["--free-bits", "0.15"], ["--iwae-k", "3"]], ids=["elbo", "free-bits", "iwae"])
def test_uneven_and_empty_shards_give_the_global_batch_loss(flags):
    """Three replicas, global batches of 8, 8 and 1 images (shards 3/3/2, then 1/0/0): every step's loss and terms
    equal one process's computation on the same global batch, the update equals one Adam step on that loss's
    gradient, the replicas hold identical weights, and training through the empty shards does not diverge."""
    out = script("uneven_shards.py", *flags, "--epochs", "3")
    sizes = [s["sizes"] for s in out["steps"]]
    assert sizes == [[3, 3, 2], [3, 3, 2], [1, 0, 0]] * 2 and all(s["finite"] == 1.0 for s in out["steps"])
    assert out["worst_loss"] < 1e-5 and out["worst_terms"] < 1e-5, out
    assert out["worst_weights"] < 1e-5 and out["replicas_apart"] == 0.0, out
    assert out["status"] == "completed" and out["train_steps"] == 9 and np.isfinite(out["test_elbo"])
    if flags[:1] == ["--free-bits"]:  # the floor is active on some dimensions and not on others
        assert any(0 < s["dims_above_free_bits"] < 3 for s in out["steps"]), out["steps"]
