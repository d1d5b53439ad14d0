"""vae-tfp side by side with its peers: the same reference VAE written in JAX + Flax + optax and in PyTorch.

    python -m vae_tfp bench --peers [--quick] [--json]      (or: python -m bench.peers.run ...)

The coordinator (`run.py`) runs every implementation in its own worker process (`worker.py`, protocol in
`protocol.py`) so that no two frameworks share a process or a thread pool, and interleaves their timed repeats.
Implementations: `vae_tfp_peer.py` (the project's Trainer, through the one adapter in `trainer_adapter.py`),
`jax_peer.py`, `torch_peer.py`. The shared weight and data files are described in `reference.py`. JAX, Flax, optax
and PyTorch come from the optional requirements-bench.txt; a peer that is missing is reported and skipped.
"""
