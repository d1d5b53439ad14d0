"""The implementations the peer benchmark compares: one registry (TF-, JAX- and torch-free, so the coordinator and
the tests import it anywhere).

Each entry names the module that implements it (a class `Peer` with the worker commands, see worker.py), the
options that module's `Peer` takes, the Python packages it needs (for the missing-peer message), the group it is
compared as (`jax`, `torch`: a speedup against a group uses the group's fastest main implementation) and whether it
is only an info row (not part of any speedup).
"""

from dataclasses import dataclass, field

INSTALL_HINT = ("install the peers into a separate venv: python3 -m venv .venv-bench && "
                ".venv-bench/bin/pip install -r requirements.txt -r requirements-bench.txt, then run "
                ".venv-bench/bin/python -m vae_tfp bench --peers")


@dataclass(frozen=True)
class Impl:
    name: str
    label: str  # the row's words in the table
    module: str
    group: str  # "vae_tfp", "jax" or "torch"
    packages: tuple[str, ...]  # import names it needs
    options: dict = field(default_factory=dict)
    info: bool = False  # an info row: measured and shown, not used in any speedup


IMPLS = {i.name: i for i in (
    Impl("vae_tfp", "vae-tfp Trainer", "bench.peers.vae_tfp_peer", "vae_tfp", ("tensorflow", "tensorflow_probability")),
    Impl("jax", "JAX + Flax linen + optax, one jax.jit step", "bench.peers.jax_peer", "jax",
         ("jax", "flax", "optax"), {"steps_per_call": 1}),
    Impl("torch_eager", "PyTorch eager, fused Adam", "bench.peers.torch_peer", "torch", ("torch",),
         {"compiled": False}),
    Impl("torch_compile", "PyTorch torch.compile, fused Adam", "bench.peers.torch_peer", "torch", ("torch",),
         {"compiled": True}),
    Impl("jax_scan", "(info) JAX, 10 steps per call with lax.scan", "bench.peers.jax_peer", "jax",
         ("jax", "flax", "optax"), {"steps_per_call": 10}, info=True),
)}
REFERENCE = "vae_tfp"
PEER_GROUPS = ("jax", "torch")
