"""The reference VAE (see reference.py) as a strong PyTorch engineer writes it for the CPU: `nn.Sequential` MLPs,
`torch.optim.Adam(fused=True)` (one fused kernel over all parameters; supported on the CPU since torch 2.4),
`torch.set_num_threads(os.cpu_count())`, evaluation under `torch.no_grad()`.

    compiled=False   eager: gather + `torch.bernoulli` binarization, forward, `loss.backward()`, `opt.step()`
    compiled=True    the same with `torch.compile` (inductor, static shapes) over gather + binarization + forward
                     + loss, so forward and backward run as generated fused kernels; the log p(x) chunk compiled too

Each epoch's order comes from numpy (seeded by (seed, epoch)); the last partial batch of an epoch is dropped. CPU
ops are synchronous, so a timed window needs no extra synchronisation.
"""

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.peers.reference import ADAM, MIN_SCALE, eval_chunk, load_data, load_weights

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _mlp(sizes) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, dim: int, hidden, latent: int):
        super().__init__()
        self.latent = latent
        self.encoder = _mlp([dim, *hidden, 2 * latent])
        self.decoder = _mlp([latent, *reversed(tuple(hidden)), dim])

    def posterior(self, x):
        """(loc, scale) of q(z|x), each [B, L]."""
        raw = self.encoder(x)
        return raw[:, :self.latent], F.softplus(raw[:, self.latent:]) + MIN_SCALE

    def elbo_terms(self, x):
        """(reconstruction [B], kl [B]) with one z ~ q(z|x) per image."""
        loc, scale = self.posterior(x)
        z = loc + scale * torch.randn_like(loc)
        logits = self.decoder(z)
        reconstruction = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = (0.5 * (loc.square() + scale.square() - 1.0) - scale.log()).sum(-1)
        return reconstruction, kl

    def loss(self, x):
        """-mean ELBO: summed Bernoulli cross-entropy per image plus the analytic KL, averaged over the batch."""
        loc, scale = self.posterior(x)
        z = loc + scale * torch.randn_like(loc)
        logits = self.decoder(z)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = (0.5 * (loc.square() + scale.square() - 1.0) - scale.log()).sum()
        return (bce + kl) / x.shape[0]

    def log_px(self, x, k: int):
        """log p(x) [b] by importance sampling with k samples of q(z|x), x [b, D]."""
        loc, scale = self.posterior(x)
        eps = torch.randn(k, *loc.shape)  # [k, b, L]
        z = loc + scale * eps
        logits = self.decoder(z)  # [k, b, D]
        log_lik = (x * logits - F.softplus(logits)).sum(-1)  # [k, b]
        log_pz = (-0.5 * z.square() - HALF_LOG_2PI).sum(-1)
        log_qz = (-0.5 * eps.square() - scale.log() - HALF_LOG_2PI).sum(-1)
        return torch.logsumexp(log_lik + log_pz - log_qz, dim=0) - math.log(k)

    def load(self, weights: str) -> None:
        """Keras-layout weights (kernel [in, out]) into the Linear layers (weight [out, in])."""
        encoder, decoder = load_weights(weights)
        for net, layers in ((self.encoder, encoder), (self.decoder, decoder)):
            linears = [m for m in net if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for lin, (kernel, bias) in zip(linears, layers, strict=True):
                    lin.weight.copy_(torch.from_numpy(kernel.T.copy()))
                    lin.bias.copy_(torch.from_numpy(bias))


def _gather_binarize_loss(model, x_train, idx):
    return model.loss(torch.bernoulli(x_train.index_select(0, idx)))


class Peer:
    def __init__(self, compiled: bool = False):
        self.compiled = bool(compiled)
        torch.set_num_threads(os.cpu_count() or 1)
        self._loops = {}

    def versions(self) -> dict:
        return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "torch_blas": "mkl" if torch.backends.mkl.is_available() else "other"}

    def setup(self, folder: str, hidden, latent: int, seed: int = 0) -> dict:
        x_train, x_test = load_data(folder)
        self.x_train, self.x_test = torch.from_numpy(x_train), torch.from_numpy(x_test)
        self.hidden, self.latent, self.seed = tuple(hidden), int(latent), int(seed)
        torch.manual_seed(self.seed)
        return {"n_train": len(x_train), "n_test": len(x_test), "dim": x_train.shape[1]}

    def _model(self, weights: str | None) -> VAE:
        model = VAE(self.x_train.shape[1], self.hidden, self.latent)
        if weights is not None:
            model.load(weights)
        return model

    def parity(self, weights: str, epochs: int, batch: int, out: str | None = None) -> dict:
        loop = _Loop(self, batch, weights)
        t0 = time.perf_counter()
        loop.advance(epochs * loop.steps_per_epoch)
        seconds = time.perf_counter() - t0
        return dict(self.test_elbo(loop.model), steps=loop.step, seconds=seconds)

    def test_elbo(self, model) -> dict:
        rec, kl = [], []
        with torch.no_grad():
            for i in range(0, len(self.x_test), 1000):
                r, k = model.elbo_terms(self.x_test[i:i + 1000])
                rec.append(r)
                kl.append(k)
        rec, kl = float(torch.cat(rec).mean()), float(torch.cat(kl).mean())
        return {"test_elbo": rec - kl, "test_reconstruction": rec, "test_kl": kl}

    def train_window(self, batch: int, steps: int, warmup: int, weights: str | None = None) -> dict:
        key = (batch, weights)
        if key not in self._loops:
            self._loops[key] = _Loop(self, batch, weights)
        loop = self._loops[key]
        loop.advance(warmup)
        t0 = time.perf_counter()
        done = loop.advance(steps)
        seconds = time.perf_counter() - t0
        return {"images_per_second": done * batch / seconds, "seconds": seconds, "steps": done}

    def eval_setup(self, weights: str, k: int, n: int, max_points: int = 2**15) -> dict:
        model = self._model(weights).eval()
        fn = model.log_px
        if self.compiled:
            fn = torch.compile(fn, dynamic=False)
        self._eval = (fn, int(k), int(n), eval_chunk(int(k), max_points))
        return self.eval()  # untimed by the coordinator: compiles both chunk shapes

    def eval(self) -> dict:
        fn, k, n, chunk = self._eval
        torch.manual_seed(self.seed + 2)
        t0 = time.perf_counter()
        with torch.no_grad():
            log_px = torch.cat([fn(self.x_test[i:min(i + chunk, n)], k) for i in range(0, n, chunk)])
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "mean_log_px": float(log_px.mean()), "n": int(n), "k": k}


class _Loop:
    """The training loop of one model at one batch size."""

    def __init__(self, peer: Peer, batch: int, weights: str | None):
        self.peer, self.batch = peer, int(batch)
        self.model = peer._model(weights)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=ADAM["lr"], betas=(ADAM["b1"], ADAM["b2"]),
                                    eps=ADAM["eps"], fused=True)
        self.loss_fn = _gather_binarize_loss
        if peer.compiled:
            self.loss_fn = torch.compile(_gather_binarize_loss, dynamic=False)
        self.steps_per_epoch = len(peer.x_train) // self.batch
        self.step, self.epoch, self.i, self.order = 0, -1, self.steps_per_epoch, None

    def advance(self, steps: int) -> int:
        for _ in range(steps):
            if self.i >= self.steps_per_epoch:
                self.epoch += 1
                perm = np.random.default_rng([self.peer.seed, self.epoch]).permutation(len(self.peer.x_train))
                self.order = torch.from_numpy(perm.astype(np.int64))
                self.i = 0
            idx = self.order[self.i * self.batch:(self.i + 1) * self.batch]
            loss = self.loss_fn(self.model, self.peer.x_train, idx)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.i += 1
        self.step += steps
        return steps
