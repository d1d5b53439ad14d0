"""View 2, Reconstructions: for test images, the input x, the decoder's mean E[x|z] (what the network outputs)
and a sample x' ~ p(x|z) (a draw from the distribution it parameterises), side by side, with log p(x|z)."""

import numpy as np
import streamlit as st

from dashboard import figures, state
from dashboard.tabs import image_index

N_IMAGES = 6  # at 112 px each they fit a 1400 px wide window beside the sidebar
N_POINTS = 300


def noun(act) -> str:
    """What one example of the data on screen is called: "point" (2-D and other point data) or "image"."""
    return "point" if act.info.get("kind") == "points" else "image"


def render() -> None:
    act = state.ready()
    if act is None:
        return
    explain = state.explain("reconstructions")

    x_test = act.data.x_test
    c1, c2 = st.columns(2)
    with c1:
        start = image_index(len(x_test), f"Test {noun(act)} # (the first shown)")
    with c2:
        seed = int(st.number_input("Sample seed", 0, 10_000, 0, key="rec_seed",
                                   help="Draw other z ~ q(z|x) and x' ~ p(x|z)."))
    points = act.info.get("kind") == "points"
    n = N_POINTS if points else N_IMAGES
    x = x_test[start:start + n]
    rec = state.memo(act.token, "reconstructions", (start, n, seed),
                     lambda: explain.reconstructions(act.model, x, seed=seed))
    likelihood = act.model.likelihood_name
    sample_words = act.model.likelihood_family.sample  # how a sample x' ~ p(x|z) looks, from the registry entry
    if points:
        figures.chart(state.figure(act.token, "rec_points", (start, n, seed),
                                   lambda: figures.reconstruction_points(rec)),
                      config=figures.plot_config("reconstructions"), key="rec_points")
    else:
        zmin, zmax = figures.value_range(act.info)
        images = np.concatenate([rec.x, rec.mean, rec.sample])  # [3 n, H, W] rows: x, E[x|z], x' ~ p(x|z)
        titles = [f"<b>#{start + i}</b><br>log p(x|z) {v:.1f}" for i, v in enumerate(rec.log_px_given_z)]
        fig = state.figure(act.token, "rec_images", (start, n, seed), lambda: figures.image_grid(
            images, cols=len(x), titles=titles + [""] * (2 * len(x)),
            row_labels=["x<br>(input)", "E[x|z]<br>(decoder output)", "x' ~ p(x|z)<br>(sample)"], zmin=zmin, zmax=zmax))
        figures.chart(fig, width="content", config=figures.plot_config("reconstructions"), key="rec_images")
    st.markdown(
        f"**Top row**: test inputs x. **Middle**: E[x|z], the mean of p(x|z), for one z ~ q(z|x) — this is what "
        f"the decoder network outputs. **Bottom**: a sample x' ~ p(x|z) from the {likelihood} likelihood: "
        f"{sample_words}. The numbers are log p(x|z) of the input, in nats (the reconstruction term "
        "of the ELBO, for this one z)." if not points else
        f"Grey: test points x. Blue: E[x|z], what the decoder outputs for z ~ q(z|x). Orange: samples "
        f"x' ~ p(x|z) ({sample_words}). Mean log p(x|z) over these points: "
        f"{np.mean(rec.log_px_given_z):.2f} nats.")
    rows = "index,log_px_given_z\n" + "".join(f"{start + i},{v:.6f}\n" for i, v in enumerate(rec.log_px_given_z))
    st.download_button("Download log p(x|z) (CSV)", rows, file_name="reconstructions.csv", mime="text/csv",
                       key="dl_rec")
