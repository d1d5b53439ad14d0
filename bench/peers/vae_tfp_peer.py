"""The vae-tfp side of the peer benchmark: the project's own Trainer (through `trainer_adapter.trainer_session`) and
`vae_tfp.evaluation.log_px_importance`, on the reference model (see reference.py).

It also writes the shared files: the training intensities and the binarized test set exactly as its Trainer
prepared them, and the model's initial (Keras Glorot-uniform) weights, so every implementation starts from the same
weights on the same data. The weights it reaches after the parity run are what every implementation's log p(x) is
measured on.

Timed windows as in bench/trainer_speed.py: images/s between the first and the last step event of the window (each
step ends in the trainer's one host sync). Test-set evaluations inside the window are switched off (`eval_every`
beyond the run), as the peers do none.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from bench.peers.reference import eval_chunk, load_weights, save_weights  # noqa: E402
from bench.peers.trainer_adapter import trainer_session  # noqa: E402


def _dense_layers(net):
    import keras

    return [layer for layer in net.layers if isinstance(layer, keras.layers.Dense)]


def export_weights(model, path) -> None:
    save_weights(path, *[[tuple(layer.get_weights()) for layer in _dense_layers(net)]
                         for net in (model.encoder, model.decoder)])


def import_weights(model, path) -> None:
    encoder, decoder = load_weights(path)
    for net, layers in ((model.encoder, encoder), (model.decoder, decoder)):
        for layer, (kernel, bias) in zip(_dense_layers(net), layers, strict=True):
            layer.set_weights([kernel, bias])


class Peer:
    def __init__(self):
        self._sessions = {}

    def versions(self) -> dict:
        import keras

        return {"tensorflow": tf.__version__, "tensorflow_probability": tfp.__version__, "keras": keras.__version__}

    def _config(self, **overrides):
        from vae_tfp.config import RunConfig

        return RunConfig(**(dict(dataset=self.dataset.name, likelihood="bernoulli", latent_dim=self.latent,
                                 hidden=self.hidden, binarization="dynamic", seed=self.seed) | overrides))

    def prepare(self, folder: str, dataset: str, hidden, latent: int, seed: int, parity_epochs: int,
                parity_batch: int) -> dict:
        """Load the data, build the parity trainer, write x_train.npy, x_test.npy and init.npz into `folder`."""
        from vae_tfp.data import load

        self.dataset, self.hidden, self.latent, self.seed = load(dataset, seed=seed), tuple(hidden), int(latent), seed
        config = self._config(batch_size=parity_batch, epochs=parity_epochs)
        self._parity = trainer_session(config, self.dataset)
        trainer = self._parity[0]
        x_train, x_test = trainer.data.x_train, trainer.data.x_test
        np.save(os.path.join(folder, "x_train.npy"), x_train.reshape(len(x_train), -1).astype(np.float32))
        np.save(os.path.join(folder, "x_test.npy"), x_test.reshape(len(x_test), -1).astype(np.float32))
        export_weights(trainer.model, os.path.join(folder, "init.npz"))
        self.x_test = x_test  # [M, *event]
        return {"n_train": int(len(x_train)), "n_test": int(len(x_test)), "event_shape": list(x_train.shape[1:]),
                "data_note": trainer.data.note}

    def setup(self, folder: str, hidden, latent: int, seed: int = 0) -> dict:
        if (tuple(hidden), int(latent), int(seed)) != (self.hidden, self.latent, self.seed):
            raise ValueError("setup's model differs from prepare's")
        return {"n_test": int(len(self.x_test))}

    def parity(self, weights: str, epochs: int, batch: int, out: str | None = None) -> dict:
        trainer, advance = self._parity
        if (trainer.config.epochs, trainer.config.batch_size) != (epochs, batch):
            raise ValueError(f"parity run was prepared for {trainer.config.epochs} epochs at batch "
                             f"{trainer.config.batch_size}, asked for {epochs} at {batch}")
        import_weights(trainer.model, weights)
        t0 = time.perf_counter()
        _, result = advance(trainer.total_steps)
        seconds = time.perf_counter() - t0
        if out:
            export_weights(trainer.model, out)
        test = result.test_metrics
        rec = test.get("reconstruction", -test["distortion"] if "distortion" in test else None)
        return {"test_elbo": float(test["elbo"]), "test_reconstruction": rec,
                "test_kl": test.get("kl", test.get("rate")), "steps": int(trainer.step), "seconds": seconds,
                "status": result.status}

    def train_window(self, batch: int, steps: int, warmup: int, weights: str | None = None) -> dict:
        key = (batch, weights)
        if key not in self._sessions:
            session = trainer_session(self._config(batch_size=batch, epochs=100_000, eval_every=100_000),
                                      self.dataset)
            if weights is not None:
                import_weights(session[0].model, weights)
            self._sessions[key] = session
        _, advance = self._sessions[key]
        times, _ = advance(warmup + steps)
        times = times[warmup:]
        seconds = times[-1] - times[0]
        return {"images_per_second": (len(times) - 1) * batch / seconds, "seconds": seconds,
                "steps": len(times) - 1}

    def eval_setup(self, weights: str, k: int, n: int, max_points: int = 2**15) -> dict:
        from vae_tfp.model import build_vae

        config = self._config()
        model = build_vae(config, self.x_test.shape[1:])
        import_weights(model, weights)
        self._eval = (model, int(k), int(n), int(max_points))
        return self.eval()

    def eval(self) -> dict:
        from vae_tfp.evaluation import log_px_importance

        model, k, n, max_points = self._eval
        t0 = time.perf_counter()
        log_px = log_px_importance(model, self.x_test[:n], k=k, max_points=max_points)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "mean_log_px": float(np.mean(log_px)), "n": int(n), "k": k,
                "images_per_chunk": eval_chunk(k, max_points)}
