"""The reference VAE (see reference.py) as a strong JAX engineer writes it: Flax linen modules, optax Adam, and the
whole training step -- batch gather, dynamic binarization, forward, gradients, Adam -- in one `jax.jit` (buffers
donated); with `steps_per_call` > 1 a `lax.scan` runs that many steps per call.

Flax linen rather than nnx: the step is a pure function of a parameter pytree, so `jax.jit`, `lax.scan` and optax
compose with it directly and nothing but XLA runs per step (nnx's stateful modules need `nnx.jit` or a split/merge
around every call, which adds Python work per step and buys nothing for an MLP).

The host loop dispatches steps without waiting for them (JAX's asynchronous dispatch, as a JAX user's loop does) and
blocks only at the end of a timed window. Each epoch's order comes from numpy (seeded by (seed, epoch)); the last
partial batch of an epoch is dropped (a new shape would recompile the step).
"""

import math
import time

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench.peers.reference import ADAM, MIN_SCALE, eval_chunk, load_data, load_weights

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MLP(nn.Module):
    """Dense layers with ReLU between them; no activation after the last."""

    features: tuple

    @nn.compact
    def __call__(self, x):
        for i, units in enumerate(self.features):
            x = nn.Dense(units, name=f"dense{i}")(x)
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


def _net_params(layers) -> dict:
    return {f"dense{i}": {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)} for i, (k, b) in enumerate(layers)}


def _net_layers(params) -> list:
    return [(np.asarray(params[f"dense{i}"]["kernel"]), np.asarray(params[f"dense{i}"]["bias"]))
            for i in range(len(params))]


class Peer:
    def __init__(self, steps_per_call: int = 1):
        self.steps_per_call = int(steps_per_call)
        self._trainers = {}

    def versions(self) -> dict:
        return {"jax": jax.__version__, "jaxlib": jax.lib.__version__, "flax": flax.__version__,
                "optax": optax.__version__, "jax_backend": jax.default_backend()}

    def setup(self, folder: str, hidden, latent: int, seed: int = 0) -> dict:
        self.x_train_np, self.x_test_np = load_data(folder)
        self.x_train = jnp.asarray(self.x_train_np)  # [N, D] on the device once
        self.x_test = jnp.asarray(self.x_test_np)
        self.latent, self.seed = int(latent), int(seed)
        d = self.x_train_np.shape[1]
        self.encoder = MLP((*hidden, 2 * self.latent))
        self.decoder = MLP((*reversed(tuple(hidden)), d))
        self.tx = optax.adam(ADAM["lr"], b1=ADAM["b1"], b2=ADAM["b2"], eps=ADAM["eps"])
        self._test_terms = jax.jit(self._elbo_terms)
        self._log_px_chunk = jax.jit(self._log_px, static_argnums=2)
        return {"n_train": len(self.x_train_np), "n_test": len(self.x_test_np), "dim": d}

    # --- the model ------------------------------------------------------------------------------------------
    def _elbo_terms(self, params, x, key):
        """(reconstruction [B], kl [B]) with one z ~ q(z|x) per image."""
        raw = self.encoder.apply({"params": params["enc"]}, x)  # [B, 2L]
        loc, scale = raw[:, :self.latent], jax.nn.softplus(raw[:, self.latent:]) + MIN_SCALE
        z = loc + scale * jax.random.normal(key, loc.shape)  # [B, L]
        logits = self.decoder.apply({"params": params["dec"]}, z)  # [B, D]
        reconstruction = jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)
        kl = jnp.sum(0.5 * (loc**2 + scale**2 - 1.0) - jnp.log(scale), axis=-1)
        return reconstruction, kl

    def _loss(self, params, x, key):
        reconstruction, kl = self._elbo_terms(params, x, key)
        return -jnp.mean(reconstruction - kl)

    def _step(self, state, x_train, order, i):
        """One training step on batch i of the epoch's order [steps, B]; returns (state, mean ELBO)."""
        params, opt_state, key = state
        key, k_bin, k_z = jax.random.split(key, 3)
        intensities = jnp.take(x_train, order[i], axis=0)  # [B, D]
        x = jax.random.bernoulli(k_bin, intensities).astype(jnp.float32)
        loss, grads = jax.value_and_grad(self._loss)(params, x, k_z)
        updates, opt_state = self.tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), -loss

    def _steps(self, state, x_train, order, start):
        """`steps_per_call` steps from batch `start` in one call (lax.scan)."""
        body = lambda s, i: self._step(s, x_train, order, i)  # noqa: E731
        return jax.lax.scan(body, state, start + jnp.arange(self.steps_per_call))

    def _log_px(self, params, x, k, key):
        """log p(x) [b] by importance sampling with k samples of q(z|x) for the images x [b, D]."""
        raw = self.encoder.apply({"params": params["enc"]}, x)
        loc, scale = raw[:, :self.latent], jax.nn.softplus(raw[:, self.latent:]) + MIN_SCALE
        eps = jax.random.normal(key, (k, *loc.shape))  # [k, b, L]
        z = loc + scale * eps
        logits = self.decoder.apply({"params": params["dec"]}, z)  # [k, b, D]
        log_lik = jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)  # [k, b]
        log_pz = jnp.sum(-0.5 * z**2 - HALF_LOG_2PI, axis=-1)
        log_qz = jnp.sum(-0.5 * eps**2 - jnp.log(scale) - HALF_LOG_2PI, axis=-1)
        return jax.nn.logsumexp(log_lik + log_pz - log_qz, axis=0) - math.log(k)

    # --- training --------------------------------------------------------------------------------------------
    def _trainer(self, batch: int, weights: str | None = None):
        key = (batch, weights)
        if key not in self._trainers:
            self._trainers[key] = _Loop(self, batch, weights)
        return self._trainers[key]

    def parity(self, weights: str, epochs: int, batch: int, out: str | None = None) -> dict:
        loop = _Loop(self, batch, weights)
        t0 = time.perf_counter()
        loop.advance(epochs * loop.steps_per_epoch)
        jax.block_until_ready(loop.state)
        seconds = time.perf_counter() - t0
        return dict(self.test_elbo(loop.state[0]), steps=loop.step, seconds=seconds)

    def test_elbo(self, params) -> dict:
        """Test-set means of the ELBO and its terms, one z sample per image, 1000 images per call."""
        rec, kl = [], []
        key = jax.random.key(self.seed + 1)
        for i in range(0, len(self.x_test_np), 1000):
            r, k = self._test_terms(params, self.x_test[i:i + 1000], jax.random.fold_in(key, i))
            rec.append(np.asarray(r))
            kl.append(np.asarray(k))
        rec, kl = float(np.concatenate(rec).mean()), float(np.concatenate(kl).mean())
        return {"test_elbo": rec - kl, "test_reconstruction": rec, "test_kl": kl}

    def train_window(self, batch: int, steps: int, warmup: int, weights: str | None = None) -> dict:
        loop = self._trainer(batch, weights)
        loop.advance(warmup)
        jax.block_until_ready(loop.state)
        t0 = time.perf_counter()
        done = loop.advance(steps)
        jax.block_until_ready(loop.state)
        seconds = time.perf_counter() - t0
        return {"images_per_second": done * batch / seconds, "seconds": seconds, "steps": done}

    # --- evaluation ------------------------------------------------------------------------------------------
    def eval_setup(self, weights: str, k: int, n: int, max_points: int = 2**15) -> dict:
        encoder, decoder = load_weights(weights)
        self._eval = ({"enc": _net_params(encoder), "dec": _net_params(decoder)}, int(k), int(n),
                      eval_chunk(int(k), max_points))
        return self.eval()  # untimed by the coordinator: compiles both chunk shapes

    def eval(self) -> dict:
        params, k, n, chunk = self._eval
        key = jax.random.key(self.seed + 2)
        t0 = time.perf_counter()
        parts = [self._log_px_chunk(params, self.x_test[i:min(i + chunk, n)], k, jax.random.fold_in(key, i))
                 for i in range(0, n, chunk)]
        log_px = np.asarray(jnp.concatenate(parts))
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "mean_log_px": float(log_px.mean()), "n": int(n), "k": k}


class _Loop:
    """The training loop of one model at one batch size: state (params, opt_state, key), epoch and batch index."""

    def __init__(self, peer: Peer, batch: int, weights: str | None):
        self.peer, self.batch = peer, int(batch)
        n = len(peer.x_train_np)
        self.steps_per_epoch = n // self.batch
        if weights is None:  # speed only: any start will do; Flax's own initialisation
            d = peer.x_train_np.shape[1]
            k0, k1 = jax.random.split(jax.random.key(peer.seed))
            params = {"enc": peer.encoder.init(k0, jnp.zeros((1, d)))["params"],
                      "dec": peer.decoder.init(k1, jnp.zeros((1, peer.latent)))["params"]}
        else:
            encoder, decoder = load_weights(weights)
            params = {"enc": _net_params(encoder), "dec": _net_params(decoder)}
        self.state = (params, peer.tx.init(params), jax.random.key(peer.seed))
        self.step_fn = jax.jit(peer._step, donate_argnums=0)
        self.steps_fn = jax.jit(peer._steps, donate_argnums=0) if peer.steps_per_call > 1 else None
        self.step, self.epoch, self.i = 0, -1, self.steps_per_epoch
        self.order = None

    def _new_epoch(self) -> None:
        self.epoch += 1
        perm = np.random.default_rng([self.peer.seed, self.epoch]).permutation(len(self.peer.x_train_np))
        self.order = jnp.asarray(perm[:self.steps_per_epoch * self.batch].reshape(self.steps_per_epoch, self.batch)
                                 .astype(np.int32))
        self.i = 0

    def advance(self, steps: int) -> int:
        """Dispatch `steps` more steps (not waiting for them); returns how many."""
        done, n = 0, self.peer.steps_per_call
        while done < steps:
            if self.i >= self.steps_per_epoch:
                self._new_epoch()
            if self.steps_fn is not None and self.i + n <= self.steps_per_epoch and done + n <= steps:
                self.state, _ = self.steps_fn(self.state, self.peer.x_train, self.order, self.i)
                self.i, done = self.i + n, done + n
            else:
                self.state, _ = self.step_fn(self.state, self.peer.x_train, self.order, self.i)
                self.i, done = self.i + 1, done + 1
        self.step += done
        return done

