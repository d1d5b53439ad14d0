"""View 5, Latent space: for 2-D latents a grid of decodes over the latent plane; for any latent a traversal of one
dimension from a test image's posterior mean, and an interpolation between the posterior means of two test
images."""

import numpy as np
import streamlit as st

from dashboard import figures, state
from dashboard.tabs import image_index
from dashboard.views.reconstructions import noun

STEPS = 9


def render() -> None:
    act = state.ready()
    if act is None:
        return
    explain = state.explain("latent")

    model, token, x_test = act.model, act.token, act.data.x_test
    points = act.info.get("kind") == "points"
    word = noun(act)
    zmin, zmax = figures.value_range(act.info)
    px = figures.cell_pixels(x_test.shape[1:], 96) if not points else None

    if model.latent_dim == 2:
        st.subheader("The latent plane: E[x|z] over a grid of z")
        grid = state.memo(token, "latent_grid", (), lambda: explain.latent_grid(model, size=12 if not points else 15))
        if points:
            figures.chart(state.figure(token, "lat_grid", (), lambda: figures.grid_on_points(x_test[:1000], grid)),
                          config=figures.plot_config("latent-grid"), key="lat_grid")
        else:
            figures.chart(state.figure(token, "lat_grid", (),
                                       lambda: figures.image_mosaic(grid.means, grid.axes, zmin=zmin, zmax=zmax)),
                          width="content", config=figures.plot_config("latent-grid"), key="lat_grid")
        st.caption("z1 grows to the right and z2 upwards, ±2.5 prior standard deviations around the prior's mean; "
                   "each picture is what the decoder outputs for that z.")
    else:
        st.info(f"The grid over the latent plane needs a 2-D latent (this model has {model.latent_dim}); the "
                "traversal and the interpolation below work for any latent.")

    st.subheader("Traversal: change one latent dimension, keep the others")
    c1, c2, c3 = st.columns(3)
    with c1:
        i = image_index(len(x_test), f"Test {word} # (the start)")
    with c2:
        dim = st.selectbox("Dimension", list(range(model.latent_dim)), format_func=lambda d: f"z{d + 1}",
                           key="lat_dim")
    with c3:
        reach = st.slider("Range (±)", 0.5, 5.0, 3.0, 0.5, key="lat_reach")
    values = np.linspace(-reach, reach, STEPS)
    path = state.memo(token, "traversal", (i, dim, reach), lambda: explain.traversal(model, x_test[i], dim, values))
    _path(token, path, points, x_test, zmin, zmax, px, [f"z{dim + 1} = {v:.2g}" for v in values],
          f"Traversal of z{dim + 1} from test {word} #{i}", "traversal")

    st.subheader(f"Interpolation between two test {word}s")
    c1, c2 = st.columns(2)
    with c1:
        a = st.number_input(f"From test {word} #", 0, len(x_test) - 1, 0, key="lat_a")
    with c2:
        b = st.number_input(f"To test {word} #", 0, len(x_test) - 1, min(1, len(x_test) - 1), key="lat_b")
    path = state.memo(token, "interpolation", (a, b), lambda: explain.interpolation(model, x_test[a], x_test[b],
                                                                                  STEPS))
    _path(token, path, points, x_test, zmin, zmax, px, [f"t = {t:.2f}" for t in path.t],
          f"z_t = (1 − t) E_q[z|x_{a}] + t E_q[z|x_{b}]", "interpolation")


def _path(token, path, points, x_test, zmin, zmax, px, titles, title, key):
    """The traversal or interpolation `path`; its figure is built once per (model, title, titles): the title and
    the titles name every input of the path."""
    if points:
        fig = state.figure(token, f"lat_{key}", (title,), lambda: figures.path_on_points(x_test[:1000], path, title))
        figures.chart(fig, config=figures.plot_config(key), key=f"lat_{key}")
    else:
        fig = state.figure(token, f"lat_{key}", (title, tuple(titles)), lambda: figures.image_grid(
            path.means, cols=len(path.means), titles=titles, zmin=zmin, zmax=zmax, px=px, title=title))
        figures.chart(fig, width="content", config=figures.plot_config(key), key=f"lat_{key}")
