"""A worker process: one implementation of the peer benchmark, answering the coordinator over the line protocol.

    python -m bench.peers.worker IMPL          (IMPL: a name in bench/peers/impls.py)

Commands (methods of the implementation's `Peer`; `hello` and `exit` are the worker's own):
    hello                                   -> {"available": true, "versions": {...}}  or, when a package the
                                               implementation needs does not import, {"available": false,
                                               "missing": "<package>", "error": "<text>"} (the worker stays up)
    prepare(folder, dataset, ...)           (vae_tfp only) writes x_train.npy, x_test.npy, init.npz
    setup(folder, hidden, latent, seed)     loads the shared data
    parity(weights, epochs, batch, out)     trains from `weights` for `epochs` epochs -> test ELBO and its terms
    train_window(batch, steps, warmup)      trains warmup + steps more steps -> images/s over the last `steps`
    eval_setup(weights, k, n, max_points)   loads the weights, runs log p(x) once (compiles) -> as eval
    eval()                                  importance-sampled log p(x) of the first n test images -> seconds, mean
"""

import importlib
import sys

from bench.peers.impls import IMPLS
from bench.peers.protocol import serve


class Worker:
    def __init__(self, name: str):
        self.impl = IMPLS[name]
        self.peer = None

    def hello(self) -> dict:
        try:
            for package in self.impl.packages:
                importlib.import_module(package)
            module = importlib.import_module(self.impl.module)
        except ImportError as err:
            missing = getattr(err, "name", None) or str(err)
            return {"available": False, "missing": missing, "error": f"{type(err).__name__}: {err}",
                    "python": sys.executable}
        self.peer = module.Peer(**self.impl.options)
        return {"available": True, "versions": self.peer.versions(), "python": sys.executable}

    def __getattr__(self, name):
        if name.startswith("_") or self.__dict__.get("peer") is None:
            raise AttributeError(name)
        return getattr(self.peer, name)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in IMPLS:
        sys.exit(f"usage: python -m bench.peers.worker IMPL  (IMPL one of: {', '.join(IMPLS)})")
    serve(Worker(argv[0]))


if __name__ == "__main__":
    main()
