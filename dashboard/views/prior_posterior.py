"""View 3, Prior vs posterior: decodes of z ~ p(z) beside decodes of z ~ q(z|x); the latent scatter of posterior
means or samples coloured by label over the prior's density; the aggregate posterior per dimension against the
prior; KL per dimension and active units."""

import numpy as np
import streamlit as st

from dashboard import figures, state
from dashboard.views.reconstructions import noun

N_DECODES = 16
N_DECODE_POINTS = 500
N_SCATTER = 2000


def render() -> None:
    act = state.ready()
    if act is None:
        return
    explain = state.explain("prior_posterior")

    model, token = act.model, act.token
    x_test = act.data.x_test
    y_test = act.dataset.y_test
    points = act.info.get("kind") == "points"
    latent = model.latent_dim

    st.subheader("Decodes of z ~ p(z) and of z ~ q(z|x)")
    show = st.radio("Show", ["E[x|z] (decoder output)", "x ~ p(x|z) (sample)"], horizontal=True, key="pp_show")
    use_sample = show.startswith("x ~")
    n_dec = N_DECODE_POINTS if points else N_DECODES
    prior = state.memo(token, "prior_decodes", (n_dec,), lambda: explain.prior_decodes(model, n_dec, seed=1))
    post = state.memo(token, "posterior_decodes", (n_dec,), lambda: explain.posterior_decodes(model, x_test[:n_dec],
                                                                                            seed=2))
    if points:
        fig = figures.points_figure(x_test[:1000], [
            ("from z ~ p(z)", prior.sample if use_sample else prior.mean, "#d62728", "markers"),
            ("from z ~ q(z|x)", post.sample if use_sample else post.mean, "#1f77b4", "markers")],
            title="Model output over the test points: " + ("samples x ~ p(x) = ∫ p(x|z) p(z) dz (red)"
                                                           if use_sample else "decoder means E[x|z] (red: prior z)"))
        figures.chart(fig, config=figures.plot_config("prior-vs-posterior"), key="pp_points")
    else:
        zmin, zmax = figures.value_range(act.info)
        c1, c2 = st.columns(2)
        for col, dec, name in ((c1, prior, "z ~ p(z): the prior"), (c2, post, "z ~ q(z|x): test images")):
            with col:
                def grid(dec=dec, name=name):
                    return figures.image_grid(dec.sample if use_sample else dec.mean, cols=4, zmin=zmin, zmax=zmax,
                                              px=figures.cell_pixels(x_test.shape[1:], 96), title=name)

                fig = state.figure(token, "pp_decodes", (name, n_dec, use_sample), grid)
                figures.chart(fig, width="content", config=figures.plot_config("decodes"), key=f"pp_{name[:5]}")
        st.caption("Left: codes drawn from the prior — what the model generates. Right: codes drawn from the "
                   "encoder's q(z|x) for test images — what the model reconstructs. Where the prior puts mass that "
                   "no q(z|x) covers, the left side looks worse than the right.")

    st.subheader(f"Where q(z|x) puts the test {noun(act)}s in the latent space")
    c1, c2 = st.columns(2) if latent > 2 else (None, st.container())
    dims = (0, 1) if latent >= 2 else (0,)
    if latent > 2:
        with c1:
            a = st.selectbox("Horizontal latent dim", list(range(latent)), index=0, format_func=lambda d: f"z{d + 1}",
                             key="pp_dim_a")
            b = st.selectbox("Vertical latent dim", [d for d in range(latent) if d != a], index=0,
                             format_func=lambda d: f"z{d + 1}", key="pp_dim_b")
            dims = (a, b)
    with c2:
        which = st.radio("Points", ["means", "samples"], horizontal=True, key="pp_which",
                         format_func={"means": "posterior means E_q[z|x]", "samples": "samples z ~ q(z|x)"}.get)
    n = min(N_SCATTER, len(x_test))
    scatter = state.memo(token, "latent_scatter", (dims, n), lambda: explain.latent_scatter(
        model, x_test[:n], None if y_test is None else y_test[:n], dims=dims))
    figures.chart(state.figure(token, "pp_scatter", (dims, n, which),
                               lambda: figures.latent_scatter(scatter, which, act.info.get("label_names"),
                                                                            noun(act))),
                  config=figures.plot_config("latent-scatter"), key="pp_scatter")

    st.subheader("Aggregate posterior q(z) = mean over x of q(z|x), per dimension, against p(z)")
    agg = state.memo(token, "aggregate", (n,), lambda: explain.aggregate_posterior(model, x_test[:n]))
    figures.chart(state.figure(token, "pp_agg", (n,), lambda: figures.aggregate_histograms(agg)),
                  config=figures.plot_config("aggregate-posterior"), key="pp_agg")
    if latent > len(agg.dims):
        st.caption(f"The first {len(agg.dims)} of {latent} dimensions.")

    st.subheader("KL per dimension and active units")
    usage = state.memo(token, "usage", (n,), lambda: explain.latent_usage(model, x_test[:n]))
    figures.chart(state.figure(token, "pp_usage", (n,), lambda: figures.latent_usage(usage)),
                  config=figures.plot_config("latent-usage"), key="pp_usage")
    st.caption(f"{usage.n_active} of {latent} latent dimensions are active (their posterior mean varies with x: "
               f"Cov_x(E_q[z_j]) > {usage.threshold}). An inactive dimension has q(z_j|x) ≈ p(z_j) for every x and "
               f"a KL near 0: it carries no information. Total KL: {np.sum(usage.kl_per_dim):.2f} nats.")
    csv = "dim,kl_nats,activity,active\n" + "".join(
        f"z{j + 1},{k:.6f},{a:.6g},{int(u)}\n" for j, (k, a, u) in
        enumerate(zip(usage.kl_per_dim, usage.activity, usage.active)))
    st.download_button("Download KL per dimension (CSV)", csv, file_name="kl-per-dimension.csv", mime="text/csv",
                       key="dl_usage")
