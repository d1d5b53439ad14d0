"""Three replicas (MirroredStrategy over three logical CPU devices) on global batches that do not split evenly, and
a last batch of one image (two empty replicas), checked step by step against one process doing the same arithmetic
by other means: the step's loss and ELBO terms are those of the whole global batch (per-example terms from TFP's own
log_prob and a closed-form KL, then plain means; free bits as sum_j max(lambda, mean KL_j)); the update is one Keras
Adam step on the gradient of that loss; every replica keeps the same weights; nothing diverges. Prints one JSON.

    python tests/scripts/uneven_shards.py [--free-bits X] [--iwae-k K]

Logical devices must be configured before TensorFlow runs any op, hence a process of its own.
"""

import argparse
import json
import math

import numpy as np
import tensorflow as tf

SHARDS = 3
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * SHARDS)

from vae_tfp.config import RunConfig  # noqa: E402
from vae_tfp.data import load  # noqa: E402
from vae_tfp.datasets import Dataset  # noqa: E402
from vae_tfp.training import Trainer  # noqa: E402
from vae_tfp.training.seeds import shard_seed, z_seed  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--free-bits", type=float, default=0.0)
p.add_argument("--iwae-k", type=int, default=1)
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()

BATCH = 8
full = load("digits", seed=0)
# 2 full batches and one of a single image: shards of 3, 3, 2 rows, then 1, 0, 0
subset = Dataset(full.name, full.description, full.kind, full.x_train[:2 * BATCH + 1], None, full.x_test[:50], None,
                 full.levels)
config = RunConfig(dataset="digits", likelihood="bernoulli", latent_dim=3, hidden=(16,), batch_size=BATCH,
                   epochs=args.epochs, lr=3e-3, beta=0.7, free_bits=args.free_bits, iwae_k=args.iwae_k)
devices = [f"/cpu:{i}" for i in range(SHARDS)]
replicated = Trainer(config, dataset=subset, strategy=tf.distribute.MirroredStrategy(devices))
one = Trainer(config, dataset=subset)  # no strategy: the reference's model and Keras Adam


def weights(trainer):
    return [v.numpy() for v in trainer.model.trainable_variables]


def per_example(model, x, seed):
    """(per-example objective pieces) by other means: TFP's log_prob, closed-form Gaussian KL."""
    k = max(1, config.iwae_k)
    out = model(x, n_samples=k, seed=seed)
    log_lik = out.likelihood.log_prob(x)  # [k, b]
    mu, sd = out.posterior.mean(), out.posterior.stddev()  # [b, latent]
    kl_dims = 0.5 * (mu ** 2 + sd ** 2 - 1.0) - tf.math.log(sd)  # KL(N(mu, sd^2) || N(0, 1)) per dimension
    log_w = log_lik + config.beta * (out.prior.log_prob(out.z) - out.posterior.log_prob(out.z))  # [k, b]
    iwae = tf.reduce_logsumexp(log_w, axis=0) - math.log(k)
    return tf.reduce_mean(log_lik, axis=0), kl_dims, iwae


def reference(trainer, epoch, i):
    """(loss, terms, gradients) of global batch i computed in one process from the shards' rows and seeds."""
    feed = trainer.feed
    rows = feed.order(epoch)[i * BATCH:(i + 1) * BATCH]
    seed = feed.batch_seed(epoch, i)
    variables = trainer.model.trainable_variables
    with tf.GradientTape() as tape:
        parts = [per_example(trainer.model, feed.batch(rows[g::SHARDS], shard_seed(tf.constant(seed), g, SHARDS)),
                             z_seed(tf.constant(seed), g)) for g in range(SHARDS)]
        recon, kl_dims, iwae = (tf.concat([part[j] for part in parts], 0) for j in range(3))
        kl = tf.reduce_sum(kl_dims, axis=1)
        if config.iwae_k > 1:
            loss = -tf.reduce_mean(iwae)
        elif config.free_bits > 0:
            loss = -tf.reduce_mean(recon) + config.beta * tf.reduce_sum(
                tf.maximum(tf.reduce_mean(kl_dims, axis=0), config.free_bits))
        else:
            loss = -tf.reduce_mean(recon) + config.beta * tf.reduce_mean(kl)
    grads = tape.gradient(loss, variables)
    terms = {"reconstruction": float(tf.reduce_mean(recon)), "kl": float(tf.reduce_mean(kl))}
    above = int(tf.reduce_sum(tf.cast(tf.reduce_mean(kl_dims, axis=0) > config.free_bits, tf.int32)))
    return float(loss), terms, grads, [len(rows[g::SHARDS]) for g in range(SHARDS)], above


assert all(np.array_equal(a, b) for a, b in zip(weights(replicated), weights(one))), "initial weights differ"
steps, worst_loss, worst_terms, worst_weights, replicas_apart = [], 0.0, 0.0, 0.0, 0.0
for epoch in range(2):
    for i, (batch, stop) in enumerate(replicated.epoch_inputs(epoch)):
        loss, terms, grads, sizes, above = reference(one, epoch, i)
        values = replicated.compiled_step(batch, stop, np.float32(config.beta)).numpy()
        out = dict(zip(replicated.metric_keys, values.tolist()))
        one.optimizer.apply_gradients(zip(grads, one.model.trainable_variables))
        worst_loss = max(worst_loss, abs(out["loss"] - loss) / max(1.0, abs(loss)))
        worst_terms = max(worst_terms, *(abs(out[k] - v) / max(1.0, abs(v)) for k, v in terms.items()))
        worst_weights = max(worst_weights, *(float(np.max(np.abs(a - b)))
                                             for a, b in zip(weights(replicated), weights(one))))
        for v in replicated.model.trainable_variables:
            copies = [c.numpy() for c in v.value.values]
            replicas_apart = max(replicas_apart, *(float(np.max(np.abs(c - copies[0]))) for c in copies))
        steps.append({"sizes": sizes, "loss": out["loss"], "reference": loss, "finite": out["finite"],
                      "dims_above_free_bits": above})

result = replicated.train()  # the rest of the epochs through the trainer's own loop
print(json.dumps({"steps": steps, "worst_loss": worst_loss, "worst_terms": worst_terms,
                  "worst_weights": worst_weights, "replicas_apart": replicas_apart, "status": result.status,
                  "train_steps": result.steps, "test_elbo": result.test_metrics.get("elbo"),
                  "replicas": replicated.strategy.num_replicas_in_sync}))
