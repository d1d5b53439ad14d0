"""The peer benchmark's coordinator (bench/peers/run.py): its bookkeeping, checked with fake workers that speak the
real line protocol in real subprocesses, and the vae-tfp worker against today's Trainer on a tiny model.

No peer (JAX, PyTorch) needs to be installed: the fake workers report fixed figures, and a missing peer is exactly
what the coordinator must handle. No timing is asserted (the fakes' figures are made up; the real run's depend on
the machine).
"""

import json
import statistics
import sys
import textwrap

import numpy as np
import pytest

from bench.peers import run as peers_run
from bench.peers.impls import IMPLS, INSTALL_HINT, Impl

# images/s per window, consumed in order by each fake worker; jax_scan is an info row and must not enter any speedup
RATES = {"vae_tfp": {128: [30.0, 10.0, 20.0], 512: [50.0, 60.0, 40.0]},
         "jax": {128: [10.0, 12.0, 11.0], 512: [45.0, 41.0, 43.0]},
         "torch_eager": {128: [8.0, 9.0, 7.0], 512: [10.0, 10.0, 10.0]},
         "torch_compile": {128: [5.0, 6.0, 7.0], 512: [20.0, 22.0, 21.0]},
         "jax_scan": {128: [1000.0] * 3, 512: [1000.0] * 3}}
EVAL_SECONDS = {"vae_tfp": [2.0, 4.0, 3.0], "jax": [6.0, 6.0, 6.0], "torch_eager": [9.0, 9.0, 9.0],
                "torch_compile": [4.5, 4.5, 4.5], "jax_scan": [0.1] * 3}
PARITY = {"vae_tfp": -100.0, "jax": -100.4, "torch_eager": -99.9, "torch_compile": -101.5, "jax_scan": -100.2}

FAKE_WORKER = textwrap.dedent('''
    """A fake peer worker: fixed figures, the real protocol."""
    import json, os, sys
    from bench.peers.protocol import serve

    NAME = sys.argv[1]
    FIGURES = json.loads(os.environ["FAKE_PEERS_FIGURES"])
    MISSING = os.environ.get("FAKE_PEERS_MISSING", "").split(",")
    FAIL = os.environ.get("FAKE_PEERS_FAIL", "")

    class Fake:
        def __init__(self):
            self.calls = {}
            self.evals = 0

        def hello(self):
            if NAME in MISSING:
                return {"available": False, "missing": "fakelib", "error": "ModuleNotFoundError: fakelib",
                        "python": sys.executable}
            return {"available": True, "versions": {NAME + "_lib": "1." + str(len(NAME))}}

        def prepare(self, folder, dataset, **kw):
            assert NAME == "vae_tfp", "only the vae-tfp worker prepares the shared files"
            for f in ("x_train.npy", "x_test.npy", "init.npz"):
                open(os.path.join(folder, f), "w").close()
            return {"n_train": 10, "n_test": 5, "dataset": dataset}

        def setup(self, folder, hidden, latent, seed=0):
            assert os.path.exists(os.path.join(folder, "init.npz"))
            return {}

        def parity(self, weights, epochs, batch, out=None):
            assert os.path.exists(weights)
            assert (out is not None) == (NAME == "vae_tfp")
            if out:
                open(out, "w").close()
            return {"test_elbo": FIGURES["parity"][NAME], "steps": 1, "seconds": 0.0}

        def train_window(self, batch, steps, warmup, weights=None):
            if NAME == FAIL:
                raise ValueError("simulated failure")
            i = self.calls.get(batch, 0)
            self.calls[batch] = i + 1
            return {"images_per_second": FIGURES["rates"][NAME][str(batch)][i], "seconds": 1.0, "steps": steps}

        def eval_setup(self, weights, k, n, max_points):
            assert os.path.exists(weights) and weights.endswith("trained.npz")
            return {"seconds": 99.0, "mean_log_px": -90.0}

        def eval(self):
            self.evals += 1
            return {"seconds": FIGURES["eval"][NAME][self.evals - 1], "mean_log_px": -90.0 - 0.01 * len(NAME)}

    serve(Fake())
''')


@pytest.fixture
def fake_peers(tmp_path, monkeypatch):
    """run(**env) -> (result, stderr lines) of the coordinator with fake workers, 3 training and 3 eval rounds."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    figures = {"rates": {n: {str(b): v for b, v in r.items()} for n, r in RATES.items()}, "eval": EVAL_SECONDS,
               "parity": PARITY}
    monkeypatch.setenv("FAKE_PEERS_FIGURES", json.dumps(figures))

    def run(missing: str = "", fail: str = ""):
        monkeypatch.setenv("FAKE_PEERS_MISSING", missing)
        monkeypatch.setenv("FAKE_PEERS_FAIL", fail)
        lines = []
        result = peers_run.run_peers(quick=True, print_table=False, settings={"repeats": 3, "eval_repeats": 3},
                                     command=lambda name: [sys.executable, str(script), name], log=lines.append)
        return result, lines

    return run


def test_medians_min_max_and_speedups(fake_peers):
    r, _ = fake_peers()
    json.dumps(r)  # the CLI's last line
    impls = r["implementations"]
    for name, rates in RATES.items():
        for bs, values in rates.items():
            st = impls[name]["train_images_per_second"][str(bs)]
            assert sorted(st["all"]) == sorted(values)
            assert (st["median"], st["min"], st["max"]) == (statistics.median(values), min(values), max(values))
        assert impls[name]["status"] == "measured"
    # vae-tfp medians 20 / 50; JAX 11 / 43 (the lax.scan info row's 1000 never counts); PyTorch: the faster of eager
    # (8 / 10) and compiled (6 / 21) at each batch size
    assert r["train_speedup_vs_jax_b128"] == pytest.approx(20 / 11)
    assert r["train_speedup_vs_jax_b512"] == pytest.approx(50 / 43)
    assert r["train_speedup_vs_torch_b128"] == pytest.approx(20 / 8) and r["train_torch_best_b128"] == "torch_eager"
    assert r["train_speedup_vs_torch_b512"] == pytest.approx(50 / 21)
    assert r["train_torch_best_b512"] == "torch_compile"
    # evaluation: peer seconds over vae-tfp's (median 3.0); info rows are not evaluated at all
    assert impls["vae_tfp"]["eval_seconds"]["median"] == 3.0 and impls["vae_tfp"]["eval_seconds"]["max"] == 4.0
    assert r["eval_speedup_vs_jax"] == pytest.approx(6.0 / 3.0)
    assert r["eval_speedup_vs_torch"] == pytest.approx(4.5 / 3.0) and r["eval_torch_best"] == "torch_compile"
    assert impls["jax_scan"]["eval_seconds"]["all"] == []
    assert r["versions"]["jax_lib"] == "1.3" and r["versions"]["torch_compile_lib"] == "1.13"
    assert r["cpu_model"] and r["missing"] == {} and r["failed"] == {}


def test_elbo_parity_names_the_implementation_outside_the_tolerance(fake_peers):
    r, _ = fake_peers()
    p = r["elbo_parity"]
    assert p["test_elbo"] == PARITY
    assert p["diff_vs_vae_tfp"]["jax"] == pytest.approx(-0.4)
    assert p["max_abs_diff"] == pytest.approx(1.5) and p["tolerance_nats"] == 1.0
    assert p["passed"] is False and p["outside"] == ["torch_compile"]
    agreement = r["log_px_agreement"]
    assert agreement["max_abs_diff_vs_vae_tfp"] == pytest.approx(0.01 * (len("torch_compile") - len("vae_tfp")))
    table = peers_run.format_table(r)
    assert "FAILED for torch_compile" in table and "PyTorch eager" in table and "2.50x" in table


def test_missing_peer_is_named_with_how_to_install_it_and_the_rest_is_measured(fake_peers):
    r, lines = fake_peers(missing="jax,jax_scan")
    assert set(r["missing"]) == {"jax", "jax_scan"}
    for name in ("jax", "jax_scan"):
        text = r["missing"][name]
        assert IMPLS[name].label in text and "fakelib" in text and "requirements-bench.txt" in text
        assert any(text in line for line in lines)  # said on stderr during the run, not only in the JSON
        assert r["implementations"][name]["status"] == "missing"
    assert r["train_speedup_vs_jax_b128"] is None and r["eval_speedup_vs_jax"] is None
    assert r["train_speedup_vs_torch_b128"] == pytest.approx(20 / 8)
    assert "missing: peer jax" in peers_run.format_table(r)


def test_a_failing_peer_is_left_out_and_reported(fake_peers):
    r, lines = fake_peers(fail="torch_eager")
    assert r["implementations"]["torch_eager"]["status"] == "failed"
    assert "simulated failure" in r["failed"]["torch_eager"]
    assert r["train_speedup_vs_torch_b128"] == pytest.approx(20 / 6)  # compiled torch alone now
    assert r["implementations"]["jax"]["train_images_per_second"]["128"]["median"] == 11.0


def test_worker_says_which_package_is_missing():
    from bench.peers.worker import Worker

    w = Worker("jax")
    w.impl = Impl("x", "an implementation", "bench.peers.jax_peer", "jax", ("no_such_package_for_vae_tfp",))
    hello = w.hello()
    assert hello["available"] is False and hello["missing"] == "no_such_package_for_vae_tfp"
    with pytest.raises(AttributeError):
        w.train_window  # noqa: B018 - no peer behind a missing package
    assert "requirements-bench.txt" in INSTALL_HINT


def test_stats_and_rotation():
    assert peers_run.stats([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "all": [3.0, 1.0, 2.0]}
    assert peers_run.stats([])["median"] is None
    assert [peers_run._rotated(["a", "b", "c"], r) for r in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_weights_round_trip_and_bad_shapes_are_refused(tmp_path):
    from bench.peers.reference import load_weights, save_weights

    rng = np.random.default_rng(0)
    enc = [(rng.normal(size=(6, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]
    dec = [(rng.normal(size=(1, 6)), rng.normal(size=6))]
    save_weights(tmp_path / "w.npz", enc, dec)
    enc2, dec2 = load_weights(tmp_path / "w.npz")
    for a, b in zip(enc + dec, enc2 + dec2):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
        assert b[0].dtype == np.float32
    save_weights(tmp_path / "bad.npz", [enc[0], (rng.normal(size=(3, 2)), rng.normal(size=2))], dec)
    with pytest.raises(ValueError, match="do not chain"):
        load_weights(tmp_path / "bad.npz")


def test_cli_bench_peers_runs_the_coordinator(monkeypatch, capsys):
    from vae_tfp import cli

    seen = {}

    def fake_run_peers(quick, print_table):
        seen.update(quick=quick, print_table=print_table)
        return {"train_speedup_vs_jax_b128": 1.5}

    monkeypatch.setattr(peers_run, "run_peers", fake_run_peers)
    assert cli.main(["bench", "--peers", "--quick", "--json"]) == 0
    assert seen == {"quick": True, "print_table": False}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"train_speedup_vs_jax_b128": 1.5}


def test_real_vae_tfp_worker_on_a_tiny_model():
    """The vae-tfp worker against today's Trainer (through bench/peers/trainer_adapter.py), quick settings: shared
    files written, parity run, speed windows and log p(x) measured. JAX is missing in the test environment (then its
    message is checked) or installed (then it is measured too)."""
    r = peers_run.run_peers(quick=True, print_table=False, log=lambda _: None,
                            settings={"impls": ("vae_tfp", "jax"), "repeats": 1, "train_steps": {128: 3, 512: 2},
                                      "train_warmup": {128: 2, 512: 1}})
    ours = r["implementations"]["vae_tfp"]
    assert ours["status"] == "measured"
    assert ours["train_images_per_second"]["128"]["median"] > 0 and ours["eval_seconds"]["median"] > 0
    assert np.isfinite(ours["parity"]["test_elbo"]) and ours["parity"]["status"] == "completed"
    assert np.isfinite(ours["eval_mean_log_px"])
    assert r["data"]["n_test"] == 297 and "tensorflow" in r["versions"]
    if r["implementations"]["jax"]["status"] == "missing":
        assert "requirements-bench.txt" in r["missing"]["jax"] and r["train_speedup_vs_jax_b128"] is None
    else:
        assert r["train_speedup_vs_jax_b128"] > 0
