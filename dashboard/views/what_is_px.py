"""View 4, What is p(x)? For one test x: the ELBO, the importance-weighted bound IWAE_k as k grows towards
log p(x), the exact (linear-Gaussian) or quadrature (latent <= 2) log p(x) where it exists, the gap
log p(x) - ELBO = KL(q(z|x) || p(z|x)), and for 2-D latents the true posterior with q(z|x)'s contours over it."""

import json

import streamlit as st

from dashboard import figures, state
from dashboard.tabs import image_index
from dashboard.views.reconstructions import noun

METHOD_WORDS = {
    "exact": "exact: the model is linear-Gaussian, so p(x) = N(b, W^T W + diag(sigma^2)) in closed form",
    "quadrature": "by quadrature: log p(x) = log sum_g p(x|z_g) p(z_g) x cell area on a fine grid over the latent "
                  "plane, which the grid zooms in on",
}


def render() -> None:
    act = state.ready()
    if act is None:
        return
    explain = state.explain("what_is_px")

    x_test = act.data.x_test
    c1, c2 = st.columns([1, 3])
    with c1:
        i = image_index(len(x_test), f"Test {noun(act)} #")
        x1 = x_test[i]
        if act.info.get("kind") == "image":
            zmin, zmax = figures.value_range(act.info)
            fig = state.figure(act.token, "px_image", (i,), lambda: figures.image_grid(
                x1[None], cols=1, zmin=zmin, zmax=zmax, px=160, title=f"x = test image #{i}"))
            figures.chart(fig, width="content", config=figures.plot_config(f"test-image-{i}"), key="px_image")
        else:
            st.write(f"x = test point #{i}: {', '.join(f'{v:.3f}' for v in x1)}")
    with st.spinner("Computing the bounds (5000 samples of z ~ q(z|x)) and the posterior on a grid…"):
        w = state.memo(act.token, "what_is_px", (i,), lambda: explain.what_is_px(act.model, x1))
    with c2:
        cols = st.columns(4)
        cols[0].metric("ELBO", f"{w.elbo:.3f}", help="E_q[log p(x|z)] − KL(q(z|x) || p(z)), nats")
        cols[1].metric(f"IWAE (k={w.ks[-1]})", f"{w.iwae[-1]:.3f}", help="The tightest importance-weighted bound.")
        if w.log_px is not None:
            cols[2].metric(f"log p(x) ({w.method})", f"{w.log_px:.3f}")
            cols[3].metric("gap = log p(x) − ELBO", f"{w.gap:.3f}", help="= KL(q(z|x) || p(z|x)), nats")
        else:
            cols[2].metric("log p(x)", "not computable",
                           help="Neither linear-Gaussian nor a latent of dimension <= 2: only bounds exist.")
            cols[3].metric(f"IWAE_{w.ks[-1]} − ELBO", f"{w.iwae[-1] - w.elbo:.3f}",
                           help="A lower bound on KL(q(z|x) || p(z|x))")
        st.markdown(_story(w))
        _truth(act, i, x_test, w)
    left, right = st.columns(2)
    with left:
        figures.chart(state.figure(act.token, "px_bounds", (i,), lambda: figures.bound_curve(w)),
                      config=figures.plot_config(f"bounds-image-{i}"), key="px_bounds")
    with right:
        if w.picture is not None:
            figures.chart(state.figure(act.token, "px_posterior", (i,), lambda: figures.posterior_picture(w.picture)),
                          config=figures.plot_config(f"posterior-{i}"), key="px_posterior")
        else:
            st.info(f"The true posterior p(z|x) can be drawn on a grid only for latents of dimension <= 2; "
                    f"this model has {act.model.latent_dim}.")
    st.subheader("Which density is which")
    table = "| density | what it is | can we compute it? | can we sample it? |\n|---|---|---|---|\n"
    table += "".join("| " + " | ".join(cell.replace("|", "\\|") for cell in (f"**{d}**", what, compute, sample))
                     + " |\n" for d, what, compute, sample in explain.log_px_definitions())
    st.markdown(table)
    numbers = {"image": i, "elbo": w.elbo, "reconstruction": w.reconstruction, "kl": w.kl,
               "ks": w.ks.tolist(), "iwae": w.iwae.tolist(), "iwae_sem": w.iwae_sem.tolist(),
               "iwae_groups": w.iwae_groups.tolist(), "log_px": w.log_px, "method": w.method,
               "gap": w.gap, "kl_true_posterior": w.kl_true_posterior}
    st.download_button("Download these numbers (JSON)", json.dumps(numbers, indent=2), file_name=f"what-is-px-{i}.json",
                       mime="application/json", key="dl_px")


def _truth(act, i: int, x_test, w) -> None:
    """The data's own density beside the model's, where it is known (the synthetic point sets)."""
    dataset = act.info.get("dataset", "")
    truth = state.memo(act.token, "data_truth", (i,),
                       lambda: state.explain("what_is_px").data_truth(act.model, dataset, x_test[i], x_test))
    if truth is None:
        return
    text = (f"**The data's truth** ({truth.method}): this point has log p_true(x) = {truth.log_px:.3f} nats"
            + (f", the model's log p(x) = {w.log_px:.3f}" if w.log_px is not None else "")
            + f". Over the {len(x_test)} test points the mean log p_true(x) is {truth.test_mean:.3f} nats")
    if truth.model_test_mean is not None:
        text += (f" and the model's exact mean log p(x) is {truth.model_test_mean:.3f}: the difference "
                 f"{truth.test_gap:.3f} nats estimates KL(p_true || p_model), 0 when the model has found the truth.")
    else:
        text += "." + (" The Density lab puts the model's held-out log p(x) beside it." if x_test.shape[1] == 2 else "")
    st.info(text)


def _story(w) -> str:
    text = (f"**ELBO = E_q[log p(x|z)] − KL(q(z|x) || p(z)) = {w.reconstruction:.2f} − {w.kl:.2f} = "
            f"{w.elbo:.2f} nats.** Both terms use only things we can compute: p(x|z) and p(z) in closed form, "
            f"q(z|x) from the encoder. **IWAE_k** averages k importance weights p(x, z_k) / q(z_k|x) inside the log; "
            f"its expectation rises with k (from {w.iwae[0]:.2f} at k = 1 to {w.iwae[-1]:.2f} at k = {w.ks[-1]}) "
            f"towards log p(x). Each point is an average of independent estimates (at least {min(w.iwae_groups)}) "
            "with ± 2 standard errors: one estimate is noisy, and because exp of a noisy log weight can be large, "
            "a single IWAE_k can land above log p(x) even though its expectation never does; where two points' "
            "error bars overlap, the curve need not rise between them. ")
    if w.log_px is not None:
        text += (f"Here **log p(x) = {w.log_px:.2f}** is known {METHOD_WORDS[w.method]}. The gap "
                 f"log p(x) − ELBO = {w.gap:.3f} nats is exactly **KL(q(z|x) || p(z|x))**, how far the encoder's "
                 f"q(z|x) is from the true posterior p(z|x) = p(x|z) p(z) / p(x)")
        if w.kl_true_posterior is not None:
            text += f"; computed on its own it is {w.kl_true_posterior:.3f} nats."
        else:
            text += "."
    else:
        text += ("For this model log p(x) has no closed form and the latent is too large for a grid: the bounds are "
                 "all we have, and IWAE_k for large k is the best estimate.")
    return text
