"""View: the density lab. For 2-D point data, what a VAE's p(x) is, seen on the data plane:

1. p(x) over the plane (heatmap and contours, the training points over it) beside the data's true density where it
   is known, with the held-out mean log p(x) under both and their difference, an estimate of KL(p_true || p_model);
2. p(x) as a mixture: p_K(x) = (1/K) sum_k N(x; f(z_k), sigma^2), z_k ~ p(z), for K = 1 ... 1000, and how close it is;
3. sampling both ways: x ~ p(x) (z ~ p(z), then x ~ p(x|z)) and reconstructions (z ~ q(z|x), then x' ~ p(x|z));
4. one point x (clicked on the plane or typed): log p(x), the ELBO, the gap KL(q(z|x) || p(z|x)), p(z|x) beside
   q(z|x).
For other data the tab says in one line what it is for.

Live: while this session's training runs, a fragment redraws part 1's model side every LIVE_SECONDS from the
newest snapshot in the run directory (`vae_tfp.snapshots`), never from the trainer object; the truth beside it is
drawn once. Afterwards a step slider replays the
snapshots saved with the run, and every part shows the model at the chosen step. Results and figures are memoised
per (model snapshot, inputs) in the session (`state.memo` / `state.figure`), so a rerun that moves only the K slider
recomputes only p_K. The numbers come from `vae_tfp.explain.lab` and `vae_tfp.density`; nothing is computed here.
"""

import json

import numpy as np
import streamlit as st

from dashboard import figures, state

LIVE_SECONDS = 3.0  # the live density's refresh
K_KEY, STEP_KEY, LOG_KEY, X1_KEY, X2_KEY, PICK_KEY = "lab_k", "lab_step", "lab_log", "lab_x1", "lab_x2", "lab_pick"
SAMPLES_KEY, RECON_KEY = "lab_samples", "lab_recon"
N_SAMPLES, N_RECON = 1000, 300
# the names of part 1's numbers (the tests read them by these names)
MODEL_MEAN, TRUTH_MEAN = "held-out mean log p(x), model", "held-out mean log p(x), truth"
KL_ROW = "truth − model ≈ KL(p_true || p_model)"
MODEL_MASS, TRUTH_MASS = "model's mass on this plane (Σ p(x) × cell area)", "truth's mass on this plane"
PURPOSE = ("The density lab draws p(x) over the data plane, so it needs 2-D points with a gaussian likelihood "
           "(two_moons, rings, pinwheel, linear_gaussian_2d or a 2-column .npz). ")


def render() -> None:
    running, live_path = _live_job()
    if running:
        _live(live_path)
        return
    act = state.ready()
    if act is None:
        return
    why = _not_for(act.info, act.model.likelihood_name)
    if why:
        st.info(why)
        return
    lab = state.explain("lab")
    model, token = _replay(act)
    ctx = _context(act.data, lab, model, act.info.get("dataset") or act.run.config().dataset)
    st.caption(f"Model: **{act.run.name if act.run is not None else 'this session'}** on **{ctx['dataset']}** "
               f"({len(ctx['x_train'])} training and {len(ctx['x_test'])} test points).")
    plane = _plane_section(model, token, ctx, lab)
    _mixture_section(model, token, ctx, lab, plane)
    _sampling_section(model, token, ctx)
    _point_section(model, token, ctx, plane)


# --- which model, which data ----------------------------------------------------------------------------------------
def _not_for(info: dict, likelihood: str) -> str:
    """Why the lab cannot draw this run ('' when it can)."""
    shape = list(info.get("event_shape") or [])
    if info.get("kind") == "points" and shape == [2] and likelihood == "gaussian":
        return ""
    if info.get("kind") == "image":
        what = f"{'×'.join(map(str, shape))} images, whose p(x) is one number per image: see **What is p(x)?**"
    elif shape != [2]:
        what = f"{shape[0] if shape else '?'}-D points, which have no plane to draw on: see **What is p(x)?**"
    else:
        what = f"2-D points under a {likelihood} likelihood; train it with the gaussian one"
    return PURPOSE + f"This run's data are {what}."


def _context(data, lab, model, dataset: str) -> dict:
    """The plane (fixed by the training data, so every snapshot is drawn on the same axes) and the data."""
    extent = lab.data_extent(data.x_train)
    grid = lab.lab_grid(model)
    return {"x_train": data.x_train, "x_test": data.x_test, "extent": extent, "grid": grid,
            "axes": lab.plane_axes(extent, grid), "dataset": str(dataset)}


def _run_model(run):
    """A model of `run`'s architecture kept in this session to load snapshots into (never the views' model)."""
    from vae_tfp.snapshots import build_model

    cached = st.session_state.get("lab_model")
    if cached is None or cached["path"] != str(run.path):
        state.load_tensorflow()
        cached = st.session_state["lab_model"] = {"path": str(run.path), "model": build_model(run), "loaded": None}
    return cached


def _load(cached, snapshot) -> None:
    from vae_tfp.snapshots import load_snapshot

    key = (str(snapshot.path), snapshot.path.stat().st_mtime_ns)
    if cached["loaded"] != key:
        load_snapshot(cached["model"], snapshot)
        cached["loaded"] = key


def _replay(act):
    """(model, token) at the step the replay slider picks: the run's final model, or a snapshot loaded into the
    lab's own model. A run without snapshots shows its final model and says so."""
    from vae_tfp.snapshots import replay_snapshots

    run = act.run
    snaps = {s.step: s for s in replay_snapshots(run.path)} if run is not None else {}
    final = _final_step(run) if run is not None else 0
    if not snaps:
        if run is not None:
            st.caption("This run holds no snapshots to replay (written before they were recorded, or from a bundle "
                       "without them): the lab shows its final model.")
        return act.model, act.token
    steps = sorted(set(snaps) | {final}) if final else sorted(snaps)
    if st.session_state.get(STEP_KEY) not in steps:
        st.session_state[STEP_KEY] = steps[-1]
    step = st.select_slider("Replay: the model at training step", options=steps, key=STEP_KEY,
                            format_func=lambda s: f"{s} (final)" if s == steps[-1] else str(s),
                            help=f"{len(snaps)} snapshots saved with the run; every part of the lab below shows "
                                 "the model at this step.")
    if step == final or step not in snaps:
        return act.model, act.token
    cached = _run_model(run)
    _load(cached, snaps[step])
    return cached["model"], ("snapshot", str(run.path), step, snaps[step].path.stat().st_mtime_ns)


def _final_step(run) -> int:
    """The step of the run's weights.weights.h5: the metrics' steps (a finished call), else its checkpoint's."""
    steps = run.metrics().get("steps")
    if steps is None:
        checkpoint = run.checkpoint_state()
        steps = checkpoint["step"] if checkpoint else 0
    return int(steps)


# --- live ---------------------------------------------------------------------------------------------------------
def _live_job() -> tuple[bool, str | None]:
    """(training runs in this session and the views follow it, its run directory once it exists)."""
    status = state.job_status() if st.session_state.get("follow_job") else None
    if status is None or not status.active:
        return False, None
    return True, status.run_dir


@st.fragment(run_every=LIVE_SECONDS)
def _wait_for_snapshot(message: str) -> None:
    """While the job starts (a worker loading the data, the run directory not written yet): poll, and rerun the page
    once the run's first live snapshot exists (or the job has ended), so the live density is drawn."""
    from vae_tfp.snapshots import live_snapshot

    running, run_path = _live_job()
    if not running or (run_path is not None and live_snapshot(run_path) is not None):
        st.rerun()
    st.info(message)


def _live(run_path) -> None:
    """While this session's training runs: part 1 for the run's newest snapshot, the model's side refreshed by a
    fragment every LIVE_SECONDS (the truth beside it is drawn once)."""
    if run_path is None:
        _wait_for_snapshot("Training is starting: the live density appears with the first snapshot of the run.")
        return
    from vae_tfp.runs import open_run
    from vae_tfp.snapshots import live_snapshot

    run = open_run(run_path)
    info = run.data_info()
    why = _not_for(info, run.config().likelihood)
    if why:
        st.info(why + " Training is running; the views show the model when it ends.")
        return
    if live_snapshot(run.path) is None:
        _wait_for_snapshot("The live density appears with the run's first snapshot.")
        return
    lab = state.explain("lab")
    cached = _run_model(run)
    _, prepared = state.prepared(run.config(), run)
    ctx = _context(prepared, lab, cached["model"], info.get("dataset") or run.config().dataset)
    st.caption("The mixture, the sampling and the point picking open when training ends or you press Stop; a step "
               "slider then replays the run.")
    _plane_section(None, None, ctx, lab, live=run)


@st.fragment(run_every=LIVE_SECONDS)
def _live_model_side(run, ctx, lab, truth, log_scale: bool, zmax) -> None:
    from vae_tfp.snapshots import load_live

    cached = _run_model(run)
    snap = load_live(run.path, cached["model"])
    cached["loaded"] = None  # the live file is replaced as training goes on: load the next one afresh
    status = state.job_status()
    total = status.total_steps if status is not None and status.total_steps else "?"
    token = ("live", str(run.path), snap.step)
    held = st.session_state.get("lab_live")  # one slot: every refresh is a new step, nothing would be reused
    if held is None or held[0] != token:
        held = st.session_state["lab_live"] = (token, lab.model_plane(cached["model"], ctx["axes"], ctx["x_test"]))
    live_line = (f"**Live:** the model at step **{snap.step}** of {total}, from the run's newest snapshot "
                 f"(refreshed every {LIVE_SECONDS:g} s while it trains).")
    _model_side(held[1], token, ctx, lab, truth, log_scale, zmax, memoise=False, below_chart=live_line)


# --- 1. p(x) over the plane ---------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def _truth(dataset: str, extent: tuple, grid: int, x_test: np.ndarray):
    """The data's true density on the plane (shared by sessions: it depends on the data only)."""
    return state.explain("lab").truth_plane(dataset, state.explain("lab").plane_axes(extent, grid), x_test)


def _plane_section(model, token, ctx, lab, live=None):
    """Part 1: the model's p(x) (left) beside the truth (right) on one colour scale, each with its numbers below.
    `live`: the run being trained, whose model side a fragment redraws from its newest snapshot; else `model` at
    `token`. Returns the model's ModelPlane (None when live)."""
    truth = _truth(ctx["dataset"], ctx["extent"], ctx["grid"], ctx["x_test"])
    st.subheader("p(x) over the plane" + (" — the model beside the truth" if truth is not None else ""))
    if live is None:
        st.markdown("The VAE's density p(x) = ∫ p(x|z) p(z) dz at every point of the plane: bright where the model "
                    "puts its mass. The white dots are training points; a good model is bright where they are dense "
                    "and dark where there are none.")
    log_scale = st.toggle("Colour by log p(x) (shows the tails)", key=LOG_KEY)
    # one colour scale for every step of a run: the truth's peak where it is known (a sharper model saturates)
    zmax = float(np.exp(np.max(truth.log_density))) if truth is not None else None
    left, right = st.columns(2) if truth is not None else (st.container(), None)
    if right is not None:
        with right:
            _truth_side(truth, ctx, log_scale, zmax)
    with left:
        if live is not None:
            _live_model_side(live, ctx, lab, truth, log_scale, zmax)
            return None
        with st.spinner("Computing p(x) over the plane…"):
            plane = state.memo(token, "lab_plane", (ctx["extent"], ctx["grid"]),
                               lambda: lab.model_plane(model, ctx["axes"], ctx["x_test"]))
        _model_side(plane, token, ctx, lab, truth, log_scale, zmax)
    return plane


def _numbers(rows) -> None:
    """Named numbers, one a line: `- name: **value** rest` (lines keep long names whole, where narrow metrics cut
    them)."""
    st.markdown("\n".join(f"- {name}: **{value.split(' ', 1)[0]}** {value.split(' ', 1)[1] if ' ' in value else ''}"
                           for name, value in rows))


def _model_side(plane, token, ctx, lab, truth, log_scale: bool, zmax, memoise: bool = True,
                below_chart: str | None = None) -> None:
    g = plane.grid
    step = f" at step {token[2]}" if token and token[0] in ("live", "snapshot") else ""

    def build():
        return figures.lab_density(ctx["axes"], g.log_density, points=ctx["x_train"], zmax=zmax,
                                   log_scale=log_scale, title=f"The model's p(x){step}")

    fig = state.figure(token, "lab_density", (ctx["extent"], ctx["grid"], log_scale, zmax), build) if memoise \
        else build()
    live = bool(token) and token[0] == "live"  # a new element per live step: the picture and its caption agree
    key = f"lab_model_px_{token[2]}" if live else "lab_model_px"
    figures.chart(fig, config=figures.plot_config("model-px"), key=key)
    if below_chart:
        st.markdown(below_chart)
    n = len(plane.test_log_px)
    rows = [(MODEL_MEAN, f"{plane.test_mean:.3f} ± {plane.test_stderr:.3f} nats")]
    if truth is not None:
        d = lab.distance(truth.test_log_px, plane.test_log_px)
        rows.append((KL_ROW, f"{d.kl:.3f} ± {d.stderr:.3f} nats"))
    rows.append((MODEL_MASS, f"{g.integral:.3f}"))
    _numbers(rows)
    about = f"Means over the {n} test points (± one standard error). "
    if truth is not None:
        about += ("The test points are draws of the true density, so the mean of log p_true(x) − log p_model(x) "
                  "over them estimates KL(p_true || p_model): 0 for a perfect model. ")
    else:
        about += ("The data's true p(x) is not known for your own data (it is for two_moons, rings, pinwheel and "
                  "linear_gaussian_2d). ")
    if g.method == "quadrature":
        about += (f"p(x) by quadrature: p(x) ≈ Σ_g p(x|z_g) p(z_g) Δz over a {g.latent_grid}"
                  f"{'×' + str(g.latent_grid) if len(g.latent_extent) == 2 else ''} grid of z (its prior mass "
                  f"{g.prior_mass:.6f}; the decoder's mean moves at most {g.latent_step:.2f} σ between neighbouring "
                  f"grid points), on a {g.grid}×{g.grid} grid of x, in {g.seconds:.2f} s.")
    else:
        about += (f"p(x) by importance sampling with q(z|x) (k = {g.k} per grid point, 1000 per test point: the "
                  f"latent has more than 2 dimensions), on a {g.grid}×{g.grid} grid of x, in {g.seconds:.2f} s.")
    st.caption(about)


def _truth_side(truth, ctx, log_scale: bool, zmax) -> None:
    fig = state.figure(("truth", ctx["dataset"]), "lab_truth", (ctx["extent"], ctx["grid"], log_scale, zmax),
                       lambda: figures.lab_density(ctx["axes"], truth.log_density, points=ctx["x_train"], zmax=zmax,
                                                   log_scale=log_scale, title="The data's true p(x)"))
    figures.chart(fig, config=figures.plot_config("true-px"), key="lab_true_px")
    _numbers([(TRUTH_MEAN, f"{truth.test_mean:.3f} ± {truth.test_stderr:.3f} nats"),
            (TRUTH_MASS, f"{truth.integral:.3f}")])
    st.caption(f"The same test points under the data's true density. The truth, {truth.method}. Both pictures share "
               "its colour scale; where the model is sharper than the truth its colour saturates.")


# --- 2. p(x) as a mixture -----------------------------------------------------------------------------------------
def _mixture_section(model, token, ctx, lab, plane) -> None:
    from vae_tfp import density

    st.subheader("p(x) as a mixture of Gaussians")
    st.markdown("p(x) = ∫ p(x|z) p(z) dz is an average of Gaussians **p(x|z) = N(f(z), σ²)** over z ~ p(z), f the "
                "decoder. Draw K codes z_k ~ p(z) and average their Gaussians: **p_K(x) = (1/K) Σ_k N(x; f(z_k), "
                "σ²)** estimates p(x) (without bias), and approaches it as K grows. Each orange ellipse is one "
                "component (its 2σ outline; weight 1/K); the dotted white lines are p(x)'s contours.")
    K = st.select_slider("K: components z_k ~ p(z)", options=list(lab.MIXTURE_KS), value=100, key=K_KEY)
    axes, x_test = ctx["axes"], ctx["x_test"]
    mix = state.memo(token, "lab_mixture", (K, ctx["extent"], ctx["grid"]),
                     lambda: density.mixture_density(model, K, axes=axes, x=x_test, log_px=plane.test_log_px,
                                                     seed=lab.MIXTURE_SEED))
    curve = state.memo(token, "lab_mixture_curve", (), lambda: lab.mixture_curve(model, x_test, plane.test_log_px))
    zmax = float(np.exp(np.max(plane.grid.log_density)))
    left, right = st.columns([3, 2])
    with left:
        fig = state.figure(token, "lab_mixture", (K, ctx["extent"], ctx["grid"]),
                           lambda: figures.lab_mixture(mix, plane.grid.log_density, zmax=zmax, points=ctx["x_train"]))
        figures.chart(fig, config=figures.plot_config(f"mixture-K{K}"), key="lab_mixture")
    with right:
        st.metric(f"mean |log p_K(x) − log p(x)| over the {len(x_test)} test points, K = {K}",
                  f"{mix.mean_abs_error:.3f} nats")
        height = fig.layout.height - 70  # level with the mixture's plot (the metric above takes the rest)
        figures.chart(state.figure(token, "lab_curve", (K, height),
                                   lambda: figures.lab_mixture_curve(curve, K, height=height)),
                      config=figures.plot_config("mixture-curve"), key="lab_curve")
    st.caption("p_K is drawn on p(x)'s colour scale (brighter values saturate). The z_k are the first K of one "
               "draw of 1000, so moving the slider adds components to the same mixture.")


# --- 3. sampling both ways ----------------------------------------------------------------------------------------
def _sampling_section(model, token, ctx) -> None:
    from vae_tfp import density

    st.subheader("Sampling, both ways")
    left, right = st.columns([1, 2])
    with left:
        samples = st.toggle("x ~ p(x): samples of the model", value=True, key=SAMPLES_KEY)
        st.caption(f"**Orange:** {N_SAMPLES} draws of the model's p(x), in two steps: z ~ p(z) from the prior, "
                   "then x ~ p(x|z) = N(f(z), σ²). No data is used; the black dots are the decoder's means f(z), "
                   "the orange ones add the noise σ.")
        recon = st.toggle("x' ~ p(x|z), z ~ q(z|x): reconstructions", value=False, key=RECON_KEY)
        st.caption(f"**Green:** for {N_RECON} test points x (red crosses), z ~ q(z|x) from the encoder, then "
                   "x' ~ p(x|z). A reconstruction starts from a data point, so it is not a draw of p(x).")
    both = state.memo(token, "lab_both", (N_SAMPLES, N_RECON),
                      lambda: density.sampling_both_ways(model, ctx["x_test"][:N_RECON], n=N_SAMPLES))
    fig = state.figure(token, "lab_both", (samples, recon, ctx["extent"]),
                       lambda: figures.lab_sampling(both, ctx["extent"], points=ctx["x_train"], samples=samples,
                                                    reconstructions=recon))
    with right:
        figures.chart(fig, config=figures.plot_config("sampling-both-ways"), key="lab_sampling")


# --- 4. one point -------------------------------------------------------------------------------------------------
def _picked() -> None:
    """on_select of the pick chart: the clicked point's coordinates go into the two number inputs."""
    event = st.session_state.get(PICK_KEY)
    points = (event or {}).get("selection", {}).get("points") or []
    if points:
        st.session_state[X1_KEY] = round(float(points[0]["x"]), 3)
        st.session_state[X2_KEY] = round(float(points[0]["y"]), 3)


def _point_section(model, token, ctx, plane) -> None:
    from vae_tfp import density

    st.subheader("One point, all four densities")
    st.markdown("Pick a point x: on the plane, or type it. For that x the page shows **log p(x)**, the **ELBO** "
                "(what training maximises, a lower bound), their **gap**, which is exactly **KL(q(z|x) || p(z|x))**, "
                "and the two posteriors behind it: the true p(z|x) = p(x|z) p(z) / p(x) and the encoder's q(z|x).")
    x_test = ctx["x_test"]
    if st.session_state.get("lab_point_data") != ctx["dataset"]:  # a new data set starts at its first test point
        st.session_state["lab_point_data"] = ctx["dataset"]
        st.session_state[X1_KEY], st.session_state[X2_KEY] = (round(float(v), 3) for v in x_test[0])
    cols = st.columns(6)
    x1 = cols[0].number_input("x1", step=0.05, format="%.3f", key=X1_KEY)
    x2 = cols[1].number_input("x2", step=0.05, format="%.3f", key=X2_KEY)
    with st.spinner("log p(x), the ELBO (20 000 samples of z ~ q(z|x)) and the posteriors on a grid…"):
        one = state.memo(token, "lab_one", (x1, x2), lambda: density.one_point(model, np.array([x1, x2])))
    cols[2].metric(f"log p(x) ({one.method})", f"{one.log_px:.3f}")
    cols[3].metric("ELBO", f"{one.elbo:.3f}", help=f"E_q[log p(x|z)] − KL(q(z|x) || p(z)) = "
                                                    f"{one.reconstruction:.3f} − {one.kl:.3f} nats")
    cols[4].metric("gap log p(x) − ELBO", f"{one.gap:.3f}", help="= KL(q(z|x) || p(z|x)), nats")
    if one.kl_true_posterior is not None:
        cols[5].metric("KL(q(z|x) || p(z|x))", f"{one.kl_true_posterior:.3f}",
                       help="Computed on its own, on the latent grid: it matches the gap up to the ELBO's "
                            "Monte-Carlo error.")
    left, right = st.columns([2, 3])
    with left:
        fig = state.figure(token, "lab_pick", (ctx["extent"], ctx["grid"], x1, x2),
                           lambda: figures.lab_pick(ctx["axes"], plane.grid.log_density, x_test, (x1, x2)))
        figures.chart_selectable(fig, config=figures.plot_config("pick-x"), key=PICK_KEY, on_select=_picked)
        st.caption("Click anywhere on the plane (or on a test point) to pick x; the star marks it.")
    with right:
        if one.posterior is not None:
            fig = state.figure(token, "lab_posteriors", (x1, x2), lambda: figures.lab_posteriors(one.posterior))
            figures.chart(fig, config=figures.plot_config("posteriors"), key="lab_posteriors")
        else:
            st.info(f"p(z|x) can be drawn on a grid only for a latent of dimension ≤ 2; this model's has "
                    f"{model.latent_dim}, and log p(x) is importance-sampled.")
    numbers = {"x": [x1, x2], "log_px": one.log_px, "method": one.method, "elbo": one.elbo,
               "reconstruction": one.reconstruction, "kl": one.kl, "gap": one.gap,
               "kl_true_posterior": one.kl_true_posterior, "test_log_px_mean": plane.test_mean,
               "integral": plane.grid.integral}
    st.download_button("Download these numbers (JSON)", json.dumps(numbers, indent=2), file_name="lab-point.json",
                       mime="application/json", key="lab_download")
