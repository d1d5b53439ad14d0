"""Where a training step's time goes, vae-tfp's Trainer against the JAX peer, on the reference model at one batch size.

    python -m bench.peers.anatomy [--batch-size 128] [--repeats 7] [--calls 50]

Each framework runs in its own process (`--one tf` / `--one jax`), the two alternating repeat by repeat; each part is
the median over repeats of `calls` back-to-back calls, in milliseconds per call, every call waited for:
    step       the whole training step as the benchmark runs it: vae-tfp's compiled step (in-graph gather and
               dynamic binarization, forward, gradients, NaN guard, fused Adam, stacked metrics, one host sync);
               JAX's jitted step (gather, binarization, forward, gradients, optax Adam), blocked on every call
    step_async JAX only: `calls` steps dispatched back to back, one wait at the end (how the benchmark's loop runs)
    fwd_bwd    forward + gradients on a fixed binary batch (no data work, no optimizer)
    matmuls    just the 17 matmuls of forward + backward (6 forward, 6 weight gradients, 5 input gradients) with
               the step's shapes, each output summed so none is skipped
    adam       the optimizer update alone on fixed gradients (vae-tfp: its fused ResourceApplyAdam per variable;
               JAX: optax.adam's update + apply_updates, jitted)
    data       gather of the batch rows + Bernoulli binarization alone
    dispatch   a trivial compiled call (a scalar + 1) with its host round trip
Derived: elementwise = fwd_bwd - matmuls (activations, softplus, the likelihood and KL, their gradients, bias adds);
rest = step - fwd_bwd - adam - data (guard, metrics, per-op dispatch, ...). The ops in vae-tfp's step graph and the
kernels (fusions) in JAX's compiled step are counted too.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HIDDEN, LATENT = (512, 256), 16


def _layer_shapes(d: int):
    enc = [d, *HIDDEN, 2 * LATENT]
    dec = [LATENT, *reversed(HIDDEN), d]
    return [(a, b) for net in (enc, dec) for a, b in zip(net, net[1:])]


def _time(parts: dict, calls: int) -> dict:
    out = {}
    for name, f in parts.items():
        t0 = time.perf_counter()
        f(calls)
        out[name] = (time.perf_counter() - t0) / calls * 1e3
    return out


def tf_parts(batch: int) -> tuple[dict, dict]:
    from bench.peers.trainer_adapter import trainer_session
    from vae_tfp._tf import tf
    from vae_tfp.config import RunConfig
    from vae_tfp.data import load
    from vae_tfp.objectives import training_loss
    from vae_tfp.training import _fused_adam

    config = RunConfig(dataset="fashion_mnist", likelihood="bernoulli", latent_dim=LATENT, hidden=HIDDEN,
                       batch_size=batch, epochs=1000, eval_every=100_000)
    trainer, _ = trainer_session(config, load("fashion_mnist"))
    model, variables = trainer.model, trainer.model.trainable_variables
    idx, seed, beta = trainer._permutation(0)[:batch], trainer._batch_seed(0, 0), np.float32(1.0)
    x = trainer._batch(tf.constant(idx), seed)
    d = int(np.prod(x.shape[1:]))

    @tf.function
    def fwd_bwd(x):
        with tf.GradientTape() as tape:
            loss, _ = training_loss(model, x)
        return tf.add_n([tf.reduce_sum(g[:1]) for g in tape.gradient(loss, variables)])

    ws = [tf.Variable(tf.random.normal(s) * 0.01) for s in _layer_shapes(d)]
    acts = [tf.random.normal((batch, a)) for a, _ in _layer_shapes(d)]
    grads_out = [tf.random.normal((batch, b)) for _, b in _layer_shapes(d)]

    @tf.function
    def matmuls():
        total = []
        for i, (w, a, g) in enumerate(zip(ws, acts, grads_out)):
            total.append(tf.reduce_sum(tf.matmul(a, w)))  # forward
            total.append(tf.reduce_sum(tf.matmul(a, g, transpose_a=True)))  # weight gradient
            if i != 0:  # no input gradient for the encoder's first layer (the data)
                total.append(tf.reduce_sum(tf.matmul(g, w, transpose_b=True)))
        return tf.add_n(total)

    fixed_grads = [tf.random.normal(v.shape) * 1e-3 for v in variables]
    fused = _fused_adam(trainer.optimizer)
    adam = tf.function(lambda: fused(fixed_grads, variables))
    data = tf.function(lambda i, s: tf.reduce_sum(trainer._batch(i, s)[:1]))
    one = tf.constant(1.0)
    dispatch = tf.function(lambda a: a + 1.0)
    idx_t = tf.constant(idx)

    def loop(f):
        def run(n):
            for _ in range(n):
                f()
        return run

    parts = {"step": loop(lambda: trainer._train_step(idx, seed, beta).numpy()),
             "fwd_bwd": loop(lambda: fwd_bwd(x).numpy()), "matmuls": loop(lambda: matmuls().numpy()),
             "adam": loop(lambda: adam().numpy()), "data": loop(lambda: data(idx_t, seed).numpy()),
             "dispatch": loop(lambda: dispatch(one).numpy())}
    graph_def = trainer._train_step.get_concrete_function(idx, seed, beta).graph.as_graph_def()
    types = [n.op for n in graph_def.node] + [n.op for f in graph_def.library.function for n in f.node_def]
    counts = {"graph_ops": len(types), "MatMul": types.count("MatMul"),  # (nested functions included)
              "ResourceApplyAdam": types.count("ResourceApplyAdam")}
    return parts, counts


def jax_parts(batch: int) -> tuple[dict, dict]:
    import jax
    import jax.numpy as jnp

    from bench.peers.jax_peer import Peer, _Loop
    from vae_tfp.data import load, prepare  # (TF-free: the data only)

    data = prepare(load("fashion_mnist"), "binary")
    folder = os.environ.get("TMPDIR", "/tmp") + f"/anatomy-{os.getpid()}"
    os.makedirs(folder, exist_ok=True)
    np.save(f"{folder}/x_train.npy", data.x_train.reshape(len(data.x_train), -1))
    np.save(f"{folder}/x_test.npy", data.x_test.reshape(len(data.x_test), -1)[:1000])
    peer = Peer()
    peer.setup(folder, HIDDEN, LATENT)
    loop = _Loop(peer, batch, None)
    loop.advance(1)
    jax.block_until_ready(loop.state)
    params, opt_state = jax.tree_util.tree_map(jnp.copy, (loop.state[0], loop.state[1]))  # (the step donates)
    d = peer.x_train_np.shape[1]
    x = (jax.random.uniform(jax.random.key(1), (batch, d)) < jnp.asarray(peer.x_train_np[:batch])).astype(jnp.float32)
    key = jax.random.key(2)

    fwd_bwd = jax.jit(lambda p, x, k: jax.tree_util.tree_reduce(
        lambda a, g: a + jnp.sum(g[:1]), jax.grad(peer._loss)(p, x, k), 0.0))
    shapes = _layer_shapes(d)
    ws = [jax.random.normal(jax.random.key(i), s) * 0.01 for i, s in enumerate(shapes)]
    acts = [jax.random.normal(jax.random.key(100 + i), (batch, a)) for i, (a, _) in enumerate(shapes)]
    gouts = [jax.random.normal(jax.random.key(200 + i), (batch, b)) for i, (_, b) in enumerate(shapes)]

    @jax.jit
    def matmuls(ws, acts, gouts):
        total = 0.0
        for i, (w, a, g) in enumerate(zip(ws, acts, gouts)):
            total += jnp.sum(a @ w) + jnp.sum(a.T @ g)
            if i != 0:
                total += jnp.sum(g @ w.T)
        return total

    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 1e-3), params)

    @jax.jit
    def adam(params, opt_state, grads):
        updates, opt_state = peer.tx.update(grads, opt_state, params)
        return jax.tree_util.tree_map(lambda p, u: p + u, params, updates), opt_state

    @jax.jit
    def data_fn(x_train, order, i, key):
        return jnp.sum(jax.random.bernoulli(key, jnp.take(x_train, order[i], axis=0))[:1])

    dispatch = jax.jit(lambda a: a + 1.0)
    one = jnp.float32(1.0)
    state = {"s": loop.state, "p": (params, opt_state)}

    def step_sync(n):
        for _ in range(n):
            state["s"], _ = loop.step_fn(state["s"], peer.x_train, loop.order, 0)
            jax.block_until_ready(state["s"])

    def step_async(n):
        for _ in range(n):
            state["s"], _ = loop.step_fn(state["s"], peer.x_train, loop.order, 0)
        jax.block_until_ready(state["s"])

    def adam_loop(n):
        p = state["p"]
        for _ in range(n):
            p = jax.block_until_ready(adam(p[0], p[1], grads))
        state["p"] = p

    def loop_of(f):
        def run(n):
            for _ in range(n):
                jax.block_until_ready(f())
        return run

    parts = {"step": step_sync, "step_async": step_async,
             "fwd_bwd": loop_of(lambda: fwd_bwd(params, x, key)), "matmuls": loop_of(lambda: matmuls(ws, acts, gouts)),
             "adam": adam_loop, "data": loop_of(lambda: data_fn(peer.x_train, loop.order, 0, key)),
             "dispatch": loop_of(lambda: dispatch(one))}
    hlo = jax.jit(peer._step).lower(loop.state, peer.x_train, loop.order, 0).compile().as_text()
    counts = {"hlo_fusions": hlo.count(" fusion("), "hlo_dots": hlo.count(" dot("),
              "hlo_custom_calls": hlo.count(" custom-call(")}
    return parts, counts


def one(framework: str, batch: int, repeats: int, calls: int) -> None:
    """Child process: build the parts, then on each line from stdin time every part once and print the ms."""
    parts, counts = (tf_parts if framework == "tf" else jax_parts)(batch)
    for f in parts.values():  # compile and warm
        f(5)
    print(json.dumps({"counts": counts}), flush=True)
    for _ in sys.stdin:
        print(json.dumps(_time(parts, calls)), flush=True)


def anatomy(batch: int = 128, repeats: int = 7, calls: int = 50) -> dict:
    procs = {fw: subprocess.Popen([sys.executable, "-m", "bench.peers.anatomy", "--one", fw, "--batch-size",
                                   str(batch), "--calls", str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1) for fw in ("tf", "jax")}
    counts = {fw: json.loads(p.stdout.readline())["counts"] for fw, p in procs.items()}
    runs = {fw: [] for fw in procs}
    for _ in range(repeats):
        for fw, p in procs.items():
            p.stdin.write("go\n")
            p.stdin.flush()
            runs[fw].append(json.loads(p.stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait(timeout=60)
    out = {"batch_size": batch, "repeats": repeats, "calls": calls, "counts": counts, "ms": {}}
    for fw, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        med["elementwise"] = med["fwd_bwd"] - med["matmuls"]
        med["rest"] = med["step"] - med["fwd_bwd"] - med["adam"] - med["data"]
        out["ms"][fw] = med
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--one", choices=["tf", "jax"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        return one(a.one, a.batch_size, a.repeats, a.calls)
    r = anatomy(a.batch_size, a.repeats, a.calls)
    names = ["step", "step_async", "fwd_bwd", "matmuls", "elementwise", "adam", "data", "rest", "dispatch"]
    print(f"batch {r['batch_size']}, ms per call, medians of {r['repeats']} x {r['calls']} calls")
    print(f"{'part':<12}{'vae-tfp':>10}{'JAX':>10}")
    for n in names:
        cells = [f"{r['ms'][fw][n]:.3f}" if n in r["ms"][fw] else "-" for fw in ("tf", "jax")]
        print(f"{n:<12}{cells[0]:>10}{cells[1]:>10}")
    print("counts:", json.dumps(r["counts"]))
    print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
