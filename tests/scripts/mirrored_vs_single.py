"""Train the same model with MirroredStrategy over two logical CPU devices and with one device; print JSON.

Logical devices must be configured before TensorFlow runs any op, hence a process of its own.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from vae_tfp.config import RunConfig  # noqa: E402
from vae_tfp.training import Trainer  # noqa: E402

config = RunConfig(dataset="digits", likelihood="bernoulli", epochs=int(sys.argv[1]), batch_size=128, latent_dim=2,
                   hidden=(64, 32))
out = {}
for name, strategy in (("single", None), ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    first = []

    def record(event, first=first):
        if event.kind == "step":
            first.append(event.metrics["loss"])

    trainer = Trainer(config, strategy=strategy, callbacks=[record])
    result = trainer.train()
    out[name] = {"replicas": trainer.strategy.num_replicas_in_sync, "steps": result.steps,
                 "first_loss": first[0], "test_elbo": result.test_metrics["elbo"]}
print(json.dumps(out))
