"""Does training with bf16 matmuls cost ELBO? The reference MLP VAE trained with the same seed, data order and
number of steps in float32 and in bfloat16 (`Trainer(..., precision="bfloat16")`); test ELBO (all 10 000 test
images, one z each) and the seconds each took.

    .venv/bin/python -m bench.precision_parity [--epochs 20] [--batch-size 128] [--out bench/results/parity.json]
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parity(epochs: int = 20, batch_size: int = 128, seeds=(0, 1)) -> dict:
    from bench.trainer_speed import REFERENCE
    from vae_tfp.config import RunConfig
    from vae_tfp.data import load
    from vae_tfp.training import Trainer

    dataset = load("fashion_mnist")
    rows = []
    for seed in seeds:
        for precision in ("float32", "bfloat16"):
            config = RunConfig(**(REFERENCE | {"batch_size": batch_size, "epochs": epochs, "seed": seed,
                                               "eval_every": epochs}))
            trainer = Trainer(config, dataset=dataset, precision=precision)
            t0 = time.perf_counter()
            r = trainer.train()
            seconds = time.perf_counter() - t0
            rows.append({"seed": seed, "precision": precision, "epochs": epochs, "steps": r.steps, "seconds": seconds,
                         "test_elbo": r.test_metrics["elbo"], "train_elbo": r.train_metrics["elbo"],
                         "test_elbo_float32_eval": _float32_test_elbo(trainer)})
            print(json.dumps(rows[-1]), flush=True)
    return {"batch_size": batch_size, "rows": rows}


def _float32_test_elbo(trainer) -> float:
    """The trained weights scored with every matmul in float32 (what a bf16-trained model is worth in fp32)."""
    from vae_tfp._tf import keras, tf
    from vae_tfp.objectives import elbo_terms

    for net in (trainer.model.encoder, trainer.model.decoder):
        for layer in net.layers:
            if isinstance(layer, keras.layers.Dense):
                layer.dtype_policy = "float32"
    fn = tf.function(lambda x: tf.reduce_sum(elbo_terms(trainer.model, x).elbo))
    x = trainer.data.x_test
    return sum(float(fn(tf.constant(x[i:i + 1000]))) for i in range(0, len(x), 1000)) / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", default="bench/results/parity.json")
    a = p.parse_args(argv)
    result = parity(a.epochs, a.batch_size)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
