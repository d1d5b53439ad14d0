"""Per-epoch diagnostics of posterior collapse: the mutual information I_q(x; z) against an independent numpy
computation and its two limits (0 when every posterior is the same, log N when none overlap), KL per dimension and
active units against their closed forms, the records the RunRecorder writes (when, and that they hold the model's
values), the CLI's JSON, Compare runs' summary, and the Training view."""

import json

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from vae_tfp import evaluation
from vae_tfp._tf import tf, tfd
from vae_tfp.config import RunConfig
from vae_tfp.training import RunRecorder, Trainer
from vae_tfp.training.diagnostics import DiagnosticsRecorder


class GaussianEncoder:
    """A stand-in model: q(z|x_n) = N(x_n, diag s^2), i.e. the example *is* its posterior mean."""

    def __init__(self, scale: float):
        self.scale = scale

    def encode(self, x):
        loc = tf.constant(x, tf.float32)
        return tfd.MultivariateNormalDiag(loc, tf.fill(tf.shape(loc), tf.constant(self.scale, tf.float32)))


def numpy_mutual_information(means, scale, n_samples, rng):
    """E_n E_{z ~ N(mu_n, s^2)} [log N(z; mu_n, s^2) - log (1/N) sum_m N(z; mu_m, s^2)], plain Monte Carlo."""
    z = means[None] + scale * rng.normal(size=(n_samples, *means.shape))  # [S, N, L]
    log_own = stats.norm.logpdf(z, means[None], scale).sum(-1)  # [S, N]
    log_all = stats.norm.logpdf(z[:, :, None, :], means[None, None], scale).sum(-1)  # [S, N, N]
    return float(np.mean(log_own - (logsumexp(log_all, axis=-1) - np.log(len(means)))))


def test_mutual_information_agrees_with_numpy_and_has_its_limits(rng):
    means = rng.normal(size=(40, 3)).astype(np.float32)
    got = evaluation.mutual_information(GaussianEncoder(0.8), means, n_samples=400)
    want = numpy_mutual_information(means.astype(np.float64), 0.8, 400, rng)
    assert got == pytest.approx(want, abs=0.03)
    assert 0.1 < got < np.log(40)
    same = np.zeros((40, 3), np.float32)  # every x gets the same posterior: z tells nothing about x
    assert evaluation.mutual_information(GaussianEncoder(0.8), same) == pytest.approx(0.0, abs=1e-6)
    apart = (np.arange(40, dtype=np.float32)[:, None] * 100.0) * np.ones((1, 3), np.float32)  # no overlap
    assert evaluation.mutual_information(GaussianEncoder(0.8), apart) == pytest.approx(np.log(40), abs=1e-3)


def brute_force_mutual_information(means, scales):
    """I_q(x; z) for a 1-D latent by quadrature, no sampling: (1/N) sum_n int q_n(z) [log q_n(z) - log q(z)] dz with
    q_n = N(mu_n, s_n^2) and q(z) = (1/N) sum_m q_m(z), on a grid far wider than every q_n."""
    grid = np.linspace(means.min() - 12 * scales.max(), means.max() + 12 * scales.max(), 40001)
    log_qn = stats.norm.logpdf(grid[None], means[:, None], scales[:, None])  # [N, G]
    log_q = logsumexp(log_qn, axis=0) - np.log(len(means))  # [G]
    integrand = np.exp(log_qn) * (log_qn - log_q[None])  # [N, G]
    return float(np.trapezoid(integrand, grid, axis=1).mean())


class ConstructedModel:
    """A stand-in model with a known encoder: q(z|x) = N(x A, diag s(x)^2), s(x) = 0.2 + 0.3 |x B|, p(z) = N(0, I);
    its families say "diagonal Gaussian" as the registries' entries do."""

    posterior_family = type("Family", (), {"diagonal": True})()
    prior_family = type("Family", (), {"diagonal_gaussian": True})()

    def __init__(self, A, B):
        self.A, self.B = (tf.constant(m, tf.float32) for m in (A, B))

    def moments(self, x):
        x = np.asarray(x, np.float64)
        A, B = self.A.numpy().astype(np.float64), self.B.numpy().astype(np.float64)
        return x @ A, 0.2 + 0.3 * np.abs(x @ B)

    def encode(self, x):
        x = tf.cast(x, tf.float32)
        return tfd.MultivariateNormalDiag(tf.matmul(x, self.A), 0.2 + 0.3 * tf.abs(tf.matmul(x, self.B)))

    def prior_distribution(self):
        return tfd.MultivariateNormalDiag(tf.zeros(self.A.shape[1]), tf.ones(self.A.shape[1]))


def test_mutual_information_converges_to_the_integral_with_unequal_posteriors(rng):
    """Posteriors of different widths (the estimator must weigh each q(z|x_m) by its own normaliser): with many
    samples per example the Monte Carlo value approaches the quadrature of the definition."""
    x = rng.normal(size=(30, 2))
    model = ConstructedModel(np.array([[1.0], [0.5]]), np.array([[0.7], [-0.4]]))
    mu, s = model.moments(x)
    want = brute_force_mutual_information(mu[:, 0], s[:, 0])
    assert 0.3 < want < np.log(30) - 0.3  # neither limit: the test tells a wrong weighting apart
    assert evaluation.mutual_information(model, x, n_samples=4000, seed=3) == pytest.approx(want, abs=0.02)
    assert evaluation.diagnostics(model, x, seed=3)["mutual_information"] == pytest.approx(want, abs=0.25)


def test_pairwise_log_densities_of_a_diagonal_gaussian_match_scipy(rng):
    z = rng.normal(size=(3, 5, 4)) * 3  # [S, N, latent]
    loc, scale = rng.normal(size=(7, 4)), rng.uniform(0.05, 2.0, size=(7, 4))  # [M, latent]
    got = evaluation._diagonal_log_prob_pairs(tf.constant(z), tf.constant(loc), tf.constant(scale)).numpy()
    want = stats.norm.logpdf(z[:, :, None, :], loc[None, None], scale[None, None]).sum(-1)  # [S, N, M]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-8)


def test_active_units_kl_and_mi_of_a_constructed_encoder(rng):
    """Four latent dimensions whose posterior means vary across x by variances ~1, ~0.25, ~0.0025 and 0: two are
    active (Cov_x(E_q[z_u]) > 0.01), the others are not; KL per dimension is the closed form of each q_j against
    N(0, 1), and the compiled `diagnostics` agrees with the one-quantity functions."""
    x = rng.normal(size=(400, 3))
    A = np.array([[1.0, 0.0, 0.05, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    B = np.array([[0.1, 0.0, 0.0, 0.0], [0.0, 0.2, 0.0, 0.3], [0.0, 0.0, 0.1, 0.0]])
    model = ConstructedModel(A, B)
    mu, s = model.moments(x)
    count, variances = evaluation.active_units(model, x)
    np.testing.assert_allclose(variances, mu.var(0), rtol=1e-5, atol=1e-9)
    assert count == 2 and list(np.flatnonzero(variances > 0.01)) == [0, 1]
    want_kl = (0.5 * (mu**2 + s**2 - 1) - np.log(s)).mean(0)
    np.testing.assert_allclose(evaluation.kl_per_dimension(model, x), want_kl, rtol=1e-4, atol=1e-6)
    d = evaluation.diagnostics(model, x, seed=5)
    assert d["active_units"] == 2 and d["n"] == 400
    np.testing.assert_allclose(d["kl_per_dim"], want_kl, rtol=1e-4, atol=1e-6)
    assert d["mutual_information"] == pytest.approx(evaluation.mutual_information(model, x, seed=5), abs=1e-6)


def test_kl_per_dimension_under_a_mixture_prior_matches_quadrature(rng):
    """A mixture prior does not factorize: KL(q(z_j|x) || p(z_j)) against each one-dimensional marginal mixture, by
    Monte Carlo, agrees with a quadrature of the integral (scipy) for every dimension."""
    from vae_tfp.model import build_vae

    model = build_vae(RunConfig(latent_dim=2, hidden=(16,), prior="mixture", prior_components=3), (8, 8), None)
    x = (rng.uniform(size=(40, 8, 8)) > 0.5).astype(np.float32)
    q = model.encode(x)
    mu, s = q.mean().numpy().astype(np.float64), q.stddev().numpy().astype(np.float64)  # [N, latent]
    marg = model.prior.marginals()
    locs = marg.components_distribution.loc.numpy()  # [latent, K]
    scales = marg.components_distribution.scale.numpy()
    weights = tf.nn.softmax(marg.mixture_distribution.logits).numpy()  # [latent, K]
    want = np.zeros(2)
    for j in range(2):
        grid = np.linspace(-15, 15, 30001)
        log_p = logsumexp(np.log(weights[j])[:, None] + stats.norm.logpdf(grid[None], locs[j][:, None],
                                                                            scales[j][:, None]), axis=0)
        log_q = stats.norm.logpdf(grid[None], mu[:, j:j + 1], s[:, j:j + 1])  # [N, G]
        want[j] = np.trapezoid(np.exp(log_q) * (log_q - log_p[None]), grid, axis=1).mean()
    np.testing.assert_allclose(evaluation.kl_per_dimension(model, x, n_samples=4000), want, atol=0.01)
    np.testing.assert_allclose(evaluation.diagnostics(model, x)["kl_per_dim"], want, atol=0.05)


def test_diagnostics_of_a_model_match_the_closed_forms(rng):
    from vae_tfp.model import build_vae

    model = build_vae(RunConfig(latent_dim=3, hidden=(16,)), (8, 8), None)
    x = (rng.uniform(size=(50, 8, 8)) > 0.5).astype(np.float32)
    d = evaluation.diagnostics(model, x)
    q = model.encode(x)
    mu, s = q.mean().numpy().astype(np.float64), q.stddev().numpy().astype(np.float64)
    kl = (0.5 * (mu**2 + s**2 - 1) - np.log(s)).mean(0)  # KL(N(mu, s^2) || N(0, 1)) per dimension
    np.testing.assert_allclose(d["kl_per_dim"], kl, rtol=1e-4, atol=1e-6)
    assert d["active_units"] == int(np.sum(mu.var(0) > 0.01)) and d["n"] == 50
    assert 0 <= d["mutual_information"] <= np.log(50) + 0.05


def test_the_recorder_writes_diagnostics_at_spread_epochs_and_at_the_end(tmp_path):
    policy = DiagnosticsRecorder(subset=100, records_per_run=2)
    assert [policy.every(e) for e in (1, 2, 3, 1000)] == [1, 1, 2, 500]
    config = RunConfig(dataset="digits", latent_dim=3, hidden=(16,), epochs=3, batch_size=256)
    trainer = Trainer(config, callbacks=[RunRecorder(tmp_path / "run", diagnostics=policy)])
    trainer.train(max_steps=trainer.steps_per_epoch + 2)  # stops inside epoch 2: one more record at the end
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    diag = [r for r in records if r["kind"] == "diagnostics"]
    assert [(r["epoch"], r["step"] - trainer.steps_per_epoch * r["epoch"]) for r in diag] == [(1, 2), (2, 0), (3, 0)]
    last = evaluation.diagnostics(trainer.model, trainer.data.x_test[:100], seed=config.seed)
    assert diag[-1]["kl_per_dim"] == pytest.approx(last["kl_per_dim"], rel=1e-5)
    assert diag[-1]["active_units"] == last["active_units"] and diag[-1]["n"] == 100
    assert diag[-1]["mutual_information"] == pytest.approx(last["mutual_information"], rel=1e-5)

    from vae_tfp.explain import compare, curves
    from vae_tfp.runs import open_run

    d = curves.diagnostics(records)
    assert d.kl_per_dim.shape == (3, 3) and list(d.epoch) == [1, 2, 3]
    summary = compare.run_summary(open_run(tmp_path / "run"))
    assert summary["active_units"] == last["active_units"]
    assert summary["mutual_information"] == pytest.approx(last["mutual_information"], rel=1e-5)


def test_the_cli_reports_the_last_diagnostics(tmp_path, capsys):
    from vae_tfp import cli

    assert cli.main(["train", "--dataset", "digits", "--latent-dim", "2", "--hidden", "16", "--epochs", "2",
                     "--run-dir", str(tmp_path / "r"), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["kl_per_dim"]) == 2 and 0 <= out["active_units"] <= 2 and out["mutual_information"] >= -0.05


def test_the_training_view_shows_collapse_after_training(tmp_path, monkeypatch):
    from test_dashboard_apptest import app, charts, show, texts, train

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = show(train(app(), epochs=2), "Training")
    assert not at.exception
    assert "Is the code used?" in texts(at.markdown)
    titles = [a["text"] for spec in charts(at) for a in spec["layout"].get("annotations", [])]
    assert "KL(q(z_j|x) || p(z_j)) per latent dimension" in titles
    assert "latent dimensions active" in texts(at.caption)


def test_training_warnings_name_a_runaway_sigma_and_a_blow_up():
    from vae_tfp.explain.advice import training_warnings

    config = RunConfig(lr=10.0)
    assert training_warnings(config, np.array([0.3, 0.2]), [-90.0, -60.0, -50.0], 64) == []
    [sigma] = training_warnings(config, np.array([0.3, 2e-5]), [-10.0, 50.0, 118.0], 64)
    assert "sigma fell to 2e-05" in sigma and "unbounded" in sigma
    [blown] = training_warnings(config, None, [-300.0, -3.7e9], 64)
    assert "blew up" in blown and "-3.7e+09" in blown and "learning rate of 10" in blown
    [astray] = training_warnings(config, None, [-80.0, -90.0, -400.0], 64)
    assert "got much worse" in astray and "-80 at its best" in astray
    # the history of `--lr 10` on digits: a blow-up in the first steps, then a "recovery" to -8903, worse than a
    # model that ignores z (-44.4 nats on 64 binary pixels)
    elbos = [-9.1e15, -6.5e12, -2220.0, -4876.0, -8903.0]
    [wrong] = training_warnings(config, None, elbos, 64, baseline=-64 * np.log(2))
    assert "went wrong" in wrong and "-8903" in wrong and "-44.36" in wrong
    assert training_warnings(config, None, [-44.0, -40.0, -30.0, -25.0], 64, baseline=-64 * np.log(2)) == []
    [nothing] = training_warnings(config, None, [-50.0, -47.0, -46.39], 64, baseline=-64 * np.log(2))  # --lr 1
    assert "learned nothing useful yet" in nothing and "-46.39" in nothing
    assert training_warnings(config, None, [float("nan")], 64)[0].startswith("Training blew up")


@pytest.mark.parametrize("kind, levels", [("bernoulli", None), ("categorical", 17), ("continuous_bernoulli", None)])
def test_the_uniform_baseline_is_the_likelihood_of_a_decoder_that_outputs_zeros(kind, levels, rng):
    """The baseline the warnings compare with is log p(x|z) of the family member that gives every value the same
    probability (Bernoulli(1/2), a softmax of equal logits, a continuous Bernoulli(1/2) = Uniform(0, 1)), which
    decoder outputs of 0 select; with KL = 0 it is that model's ELBO."""
    from vae_tfp import families
    from vae_tfp.explain.advice import uniform_baseline
    from vae_tfp.likelihoods import make_likelihood

    family = families.likelihoods.get(kind)
    x = {"binary": (rng.uniform(size=(5, 8, 8)) > 0.5).astype(np.float32),
         "levels": rng.integers(0, 17, size=(5, 8, 8)).astype(np.float32),
         "unit": rng.uniform(0.01, 0.99, size=(5, 8, 8)).astype(np.float32)}[family.representation]
    params = np.zeros((5, 8, 8, family.params_per_dim(levels)), np.float32)
    log_px = make_likelihood(kind, params, (8, 8), levels=levels).log_prob(x).numpy()  # [5]
    np.testing.assert_allclose(log_px, uniform_baseline(family.representation, 64, levels), rtol=1e-5, atol=1e-4)
    assert uniform_baseline("real", 64) is None


def test_the_cli_says_when_a_learning_rate_of_10_ruins_the_run(tmp_path, capsys):
    from vae_tfp import cli

    code = cli.main(["train", "--dataset", "digits", "--lr", "10", "--epochs", "20", "--run-dir", str(tmp_path / "r"),
                     "--json", "--quiet"])
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    if out["status"] == "diverged":  # a NaN (possible on another machine's arithmetic): the exit status says it
        assert code == 1
        return
    assert out["status"] == "completed" and out["warnings"], out
    assert any("went wrong" in w or "blew up" in w for w in out["warnings"])
    assert "warning: Training" in captured.err


def test_the_cli_warns_when_a_learned_sigma_runs_away_on_constant_data(tmp_path, capsys):
    """2-D points whose second coordinate is constant: a learned sigma shrinks towards 0 and the ELBO climbs without
    limit; the run completes, and the CLI says why its numbers mean nothing (stderr and the JSON's warnings)."""
    from vae_tfp import cli

    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(size=300), np.full(300, 0.5)], -1).astype(np.float32)
    np.savez(tmp_path / "flat.npz", x_train=x[:250], x_test=x[250:])
    assert cli.main(["train", "--dataset", str(tmp_path / "flat.npz"), "--likelihood", "gaussian", "--sigma-mode",
                     "per_dim", "--latent-dim", "1", "--hidden", "16", "--epochs", "300", "--batch-size", "50",
                     "--lr", "0.05", "--run-dir", str(tmp_path / "r"), "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["status"] == "completed" and any("learned sigma fell" in w for w in out["warnings"])
    assert "warning: The learned sigma fell" in captured.err


def test_the_page_says_when_a_run_has_learned_nothing(tmp_path, monkeypatch):
    """One epoch at a learning rate of 1e-6 leaves the decoder's random start, which is worse than the uniform model
    (its outputs are uncorrelated with x): the run completes and the Training view says it learned nothing yet."""
    from test_dashboard_apptest import app, show, texts, train

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app()
    at.sidebar.number_input(key="w_lr").set_value(1e-6)
    at = show(train(at, epochs=1), "Training")
    assert not at.exception
    assert "learned nothing useful yet" in texts(at.warning) and "below -44.36" in texts(at.warning)
