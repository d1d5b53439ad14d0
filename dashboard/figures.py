"""Plotly figure builders: image grids and mosaics, training curves, point clouds, latent scatters over contours,
histograms, bounds. They take numpy arrays (the dataclasses of `vae_tfp.explain`) and return `go.Figure`s; no math
beyond laying numbers out. Images are upscaled (an 8x8 digit is drawn >= 96 px wide) in greys without axes.
"""

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

NATS = "nats per example"
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
ELBO_C, RECON_C, KL_C, TRUE_C, TEXT_C = "#1f77b4", "#2ca02c", "#d62728", "#111111", "#1b1f24"
DATA_GREY = "rgba(120,120,120,0.35)"
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def plot_config(filename: str) -> dict:
    """st.plotly_chart(config=...): the modebar's camera button downloads a PNG named `filename`."""
    return {**PLOT_CONFIG, "toImageButtonOptions": {**PLOT_CONFIG["toImageButtonOptions"], "filename": filename}}


FONT = "Source Sans Pro, sans-serif"  # Streamlit's own font


def chart(fig: go.Figure, *, key: str, config: dict, width="stretch"):
    """Draw a figure with our own colours (Streamlit's chart theme would recolour the greys and the contours)."""
    import streamlit as st

    return st.plotly_chart(_styled(fig), theme=None, config=config, key=key, width=width)


def _styled(fig: go.Figure) -> go.Figure:
    if not getattr(fig, "_styled", False):  # once: a figure memoized by a view is drawn again on later reruns
        fig.update_layout(template="plotly_white", font=dict(family=FONT, color=TEXT_C, size=13))
        fig._styled = True
    return fig


# --- images ---------------------------------------------------------------------------------------------------
def value_range(info: dict) -> tuple[float, float]:
    """Display range of images of a data representation: levels 0..K-1, everything else [0, 1]."""
    if info.get("representation") == "levels" and info.get("levels"):
        return 0.0, float(info["levels"] - 1)
    return 0.0, 1.0


def _images(a) -> np.ndarray:
    a = np.asarray(a, np.float64)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    return a  # [n, H, W] or [n, H, W, 3]


def cell_pixels(shape, target: int = 112) -> int:
    """Pixels per image: at least 96 and an integer upscale of the image (8x8 -> 8 x 14 = 112)."""
    side = max(shape[:2])
    return max(96, side * max(1, round(target / side)))


def image_grid(images, *, cols: int, titles=None, row_labels=None, zmin=0.0, zmax=1.0, px: int | None = None,
               title: str | None = None) -> go.Figure:
    """Images [n, H, W] (grey) or [n, H, W, 3] (RGB in [zmin, zmax]) in a grid, row-major, each `px` wide: one
    picture (a single heatmap, or an RGB image, with blank gutters) under one pair of axes, titles and row labels as
    annotations. One trace, not one subplot per image: a browser draws it several times faster. `layout.meta`
    holds {"images": n, "cols": cols, "rows": rows} for whoever reads the figure."""
    images = _images(images)
    n, h, w = images.shape[:3]
    rows = max(1, math.ceil(n / cols))
    px = px or cell_pixels(images.shape[1:])
    scale = px / w  # screen pixels per image pixel
    titled_rows = {k // cols for k, t in enumerate(titles or []) if t}
    gap_x, gap_y = 10, (40 if titled_rows - {0} else 12)  # screen pixels between images
    sep_x, sep_y = gap_x / scale, gap_y / scale  # the same in image pixels
    left = 130 if row_labels else 10
    top = (44 if title else 8) + (40 if 0 in titled_rows else 0)
    width, height = cols * px + (cols - 1) * gap_x, rows * px * h / w + (rows - 1) * gap_y
    sx, sy = max(1, round(sep_x)), max(1, round(sep_y))  # gutters, whole image pixels
    step_x, step_y = w + sx, h + sy
    rgb = images.ndim == 4
    mosaic = np.full((rows * step_y - sy, cols * step_x - sx) + ((3,) if rgb else ()), 255 if rgb else np.nan)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        cell = np.clip((img - zmin) / (zmax - zmin) * 255, 0, 255) if rgb else img
        mosaic[r * step_y: r * step_y + h, c * step_x: c * step_x + w] = cell
    if rgb:
        trace = go.Image(z=mosaic.astype(np.uint8), hoverinfo="skip")
    else:
        trace = go.Heatmap(z=mosaic, coloraxis="coloraxis", hovertemplate="%{z:.3g}<extra></extra>")
    fig = go.Figure(trace)
    fig.update_xaxes(visible=False, range=[-0.5, mosaic.shape[1] - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[mosaic.shape[0] - 0.5, -0.5], scaleanchor="x", constrain="domain")
    notes = [dict(text=str(t), x=(k % cols) * step_x + (w - 1) / 2, y=(k // cols) * step_y - 0.5, xref="x", yref="y",
                  yanchor="bottom", showarrow=False, font=dict(size=13, color=TEXT_C))
             for k, t in enumerate(titles or []) if t]
    notes += [dict(text=label, xref="paper", yref="y", x=0, y=r * step_y + (h - 1) / 2, xanchor="right", xshift=-8,
                   showarrow=False, align="right", font=dict(size=13, color=TEXT_C))
              for r, label in enumerate(row_labels or [])]
    fig.update_layout(coloraxis=dict(colorscale="gray", cmin=zmin, cmax=zmax, showscale=False), annotations=notes,
                      width=round(width) + left + 10, height=round(height) + top + 10, title=title,
                      margin=dict(l=left, r=10, t=top, b=10), plot_bgcolor="white",
                      meta={"images": n, "cols": cols, "rows": rows})
    return fig


def image_mosaic(grid_images, axes, *, zmin=0.0, zmax=1.0, names=("z1", "z2"), title=None) -> go.Figure:
    """Decodes over a 2-D latent grid [G1, G2, H, W] (indexing "ij") as one picture: z1 grows to the right, z2 up."""
    g = np.asarray(grid_images, np.float64)
    if g.ndim == 5:  # [G1, G2, H, W, C]: greys by the channel mean
        g = g.mean(axis=-1)
    g1, g2, h, w = g.shape
    sep = 1
    mosaic = np.full((g2 * (h + sep) - sep, g1 * (w + sep) - sep), np.nan)
    for i in range(g1):
        for j in range(g2):
            r = g2 - 1 - j  # top row = largest z2
            mosaic[r * (h + sep): r * (h + sep) + h, i * (w + sep): i * (w + sep) + w] = g[i, j]
    scale = max(2, round(720 / mosaic.shape[1]))
    fig = go.Figure(go.Heatmap(z=mosaic, coloraxis="coloraxis", hoverinfo="skip"))
    fig.update_xaxes(title=names[0], tickvals=[i * (w + sep) + (w - 1) / 2 for i in range(g1)],
                     ticktext=[f"{v:.2g}" for v in axes[0]], constrain="domain", showgrid=False)
    fig.update_yaxes(title=names[1], tickvals=[(g2 - 1 - j) * (h + sep) + (h - 1) / 2 for j in range(g2)],
                     ticktext=[f"{v:.2g}" for v in axes[1]], autorange="reversed", scaleanchor="x",
                     constrain="domain", showgrid=False)
    fig.update_layout(coloraxis=dict(colorscale="gray", cmin=zmin, cmax=zmax, showscale=False), title=title,
                      width=mosaic.shape[1] * scale + 100, height=mosaic.shape[0] * scale + 110,
                      margin=dict(l=70, r=20, t=50 if title else 20, b=60), plot_bgcolor="white")
    return fig


# --- curves -----------------------------------------------------------------------------------------------------
def training_curves(curves, title: str | None = None) -> go.Figure:
    """ELBO and E_q[log p(x|z)] (top) and KL(q(z|x) || p(z)) (bottom), train solid, test dashed with markers."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.09,
                        subplot_titles=("ELBO = E_q[log p(x|z)] − KL", "KL(q(z|x) || p(z))"))
    lines = [("elbo", "ELBO", ELBO_C, 1), ("reconstruction", "E_q[log p(x|z)]", RECON_C, 1), ("kl", "KL", KL_C, 2)]
    for split, dash, mode in (("train", "solid", "lines"), ("test", "dash", "lines+markers")):
        c = getattr(curves, split)
        if len(c["step"]) == 0:
            continue
        for key, name, color, row in lines:
            fig.add_trace(go.Scatter(x=c["step"], y=c[key], name=f"{name} ({split})", mode=mode,
                                     line=dict(color=color, dash=dash, width=2 if split == "test" else 1.5),
                                     customdata=c["epoch"], legendgroup=split,
                                     hovertemplate=f"{name} {split}: %{{y:.3f}} nats<br>step %{{x}}, epoch "
                                     "%{customdata}<extra></extra>"), row, 1)
    fig.update_yaxes(title_text=NATS, row=1, col=1)
    fig.update_yaxes(title_text=NATS, row=2, col=1)
    fig.update_xaxes(title_text="training step", row=2, col=1)
    fig.update_layout(height=560, title=title, legend=dict(orientation="h", y=-0.14),
                      margin=dict(l=70, r=20, t=60 if title else 40, b=40), hovermode="x unified")
    return fig


def diagnostics_figure(d, title: str | None = None) -> go.Figure:
    """Posterior collapse over training (`explain.curves.Diagnostics`): KL(q(z_j|x) || p(z_j)) per latent dimension as
    a heatmap over epochs (left), active units and the mutual information I_q(x; z) (right)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.14,
                        subplot_titles=("KL(q(z_j|x) || p(z_j)) per latent dimension", "active units and I_q(x; z)"),
                        specs=[[{}, {"secondary_y": True}]])
    dims = np.arange(d.kl_per_dim.shape[1])
    fig.add_trace(go.Heatmap(x=d.epoch, y=dims, z=d.kl_per_dim.T, colorscale="Viridis", zmin=0,
                             colorbar=dict(title=dict(text="KL, nats", side="right"), orientation="h", x=0.29,
                                           xanchor="center", y=-0.45, len=0.5, thickness=10),
                             hovertemplate="epoch %{x}, z_%{y}: KL %{z:.3f} nats<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=d.epoch, y=d.active_units, name="active units", mode="lines+markers",
                             line=dict(color=RECON_C, shape="hv"),
                             hovertemplate="epoch %{x}: %{y} active units<extra></extra>"), 1, 2, secondary_y=False)
    fig.add_trace(go.Scatter(x=d.epoch, y=d.mutual_information, name="I_q(x; z)", mode="lines",
                             line=dict(color=KL_C), hovertemplate="epoch %{x}: I = %{y:.3f} nats<extra></extra>"),
                  1, 2, secondary_y=True)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="latent dimension j", dtick=1 if len(dims) <= 16 else None, row=1, col=1)
    fig.update_yaxes(title_text="active units", rangemode="tozero", range=[0, len(dims) + 0.5], row=1, col=2,
                     secondary_y=False)
    top = math.log(d.n) if d.n > 1 else float(np.max(d.mutual_information, initial=1.0))  # I_q(x; z) <= log N
    fig.update_yaxes(title_text=f"I_q(x; z) ({NATS})", range=[min(0.0, float(np.min(d.mutual_information))),
                                                             1.02 * top], tickformat=".1f", showgrid=False, row=1,
                     col=2, secondary_y=True)
    fig.update_layout(height=390, title=title, legend=dict(orientation="h", x=0.6, y=-0.3),
                      margin=dict(l=70, r=70, t=70 if title else 40, b=100))
    return fig


def compare_diagnostics(series) -> go.Figure:
    """series: [(run name, Diagnostics)]: the mutual information I_q(x; z) (left) and the active units (right) of
    several runs over epochs."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("I_q(x; z)", "active units"), horizontal_spacing=0.12)
    for i, (name, d) in enumerate(series):
        if not len(d):
            continue
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(x=d.epoch, y=d.mutual_information, mode="lines", name=name, legendgroup=name,
                                 line=dict(color=color)), 1, 1)
        fig.add_trace(go.Scatter(x=d.epoch, y=d.active_units, mode="lines", name=name, legendgroup=name,
                                 showlegend=False, line=dict(color=color, shape="hv")), 1, 2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=NATS, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="dimensions", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=340, title="Posterior collapse per run", legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=70, r=20, t=70, b=40))
    return fig


def compare_curves(series) -> go.Figure:
    """series: [(run name, Curves)]: test ELBO per epoch (markers) and train ELBO (thin) of several runs."""
    fig = go.Figure()
    for i, (name, c) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        if len(c.train["step"]):
            fig.add_trace(go.Scatter(x=c.train["epochs"], y=c.train["elbo"], mode="lines",
                                     line=dict(color=color, width=1), opacity=0.5, name=f"{name} (train)",
                                     legendgroup=name, showlegend=False))
        if len(c.test["step"]):
            fig.add_trace(go.Scatter(x=c.test["epoch"], y=c.test["elbo"], mode="lines+markers", name=name,
                                     line=dict(color=color, width=2), legendgroup=name))
    fig.update_layout(height=480, xaxis_title="epoch", yaxis_title=f"ELBO ({NATS})",
                      title="ELBO per run: test (markers) and train (thin)", legend=dict(orientation="h", y=-0.2),
                      margin=dict(l=70, r=20, t=50, b=40))
    return fig


# --- points -------------------------------------------------------------------------------------------------------
def points_figure(data, overlays=(), *, title=None, dims=(0, 1), names=None) -> go.Figure:
    """2-D points (the first two coordinates): data in grey, overlays [(name, points [n, D], color, mode)]."""
    names = names or (f"x{dims[0] + 1}", f"x{dims[1] + 1}")
    fig = go.Figure()
    if data is not None:
        fig.add_trace(go.Scatter(x=data[:, dims[0]], y=data[:, dims[1]], mode="markers", name="data (test)",
                                 marker=dict(color=DATA_GREY, size=5)))
    for name, pts, color, mode in overlays:
        fig.add_trace(go.Scatter(x=pts[:, dims[0]], y=pts[:, dims[1]], mode=mode, name=name,
                                 marker=dict(color=color, size=6), line=dict(color=color, width=1.5)))
    fig.update_xaxes(title=names[0])
    fig.update_yaxes(title=names[1], scaleanchor="x")
    fig.update_layout(height=520, title=title, legend=dict(orientation="h", y=-0.15),
                      margin=dict(l=60, r=20, t=50 if title else 20, b=40))
    return fig


def reconstruction_points(rec, n_links: int = 40) -> go.Figure:
    """Point data: inputs x, decoder means E[x|z] and samples x' ~ p(x|z); a segment links a few x to E[x|z]."""
    k = min(n_links, len(rec.x))
    seg_x = np.concatenate([np.stack([rec.x[:k, 0], rec.mean[:k, 0], np.full(k, np.nan)], 1).ravel()])
    seg_y = np.concatenate([np.stack([rec.x[:k, 1], rec.mean[:k, 1], np.full(k, np.nan)], 1).ravel()])
    fig = points_figure(rec.x, [("x' ~ p(x|z) (sample)", rec.sample, "#ff7f0e", "markers"),
                                ("E[x|z] (decoder output)", rec.mean, "#1f77b4", "markers")],
                        title="Test points x, the decoder's mean E[x|z] and a sample x' ~ p(x|z)")
    fig.add_trace(go.Scatter(x=seg_x, y=seg_y, mode="lines", line=dict(color="rgba(31,119,180,0.4)", width=1),
                             name="x → E[x|z]"))
    return fig


def grid_on_points(data, grid) -> go.Figure:
    """Point data: decodes of a 2-D latent grid [G, G, D] drawn as the mesh the decoder maps the plane to."""
    fig = points_figure(data, title="Where the decoder sends the latent plane: E[x|z] over a grid of z")
    g = grid.means
    for i in range(g.shape[0]):
        fig.add_trace(go.Scatter(x=g[i, :, 0], y=g[i, :, 1], mode="lines", line=dict(color="#1f77b4", width=1),
                                 showlegend=i == 0, name="z1 fixed", legendgroup="z1"))
    for j in range(g.shape[1]):
        fig.add_trace(go.Scatter(x=g[:, j, 0], y=g[:, j, 1], mode="lines", line=dict(color="#d62728", width=1),
                                 showlegend=j == 0, name="z2 fixed", legendgroup="z2"))
    return fig


def path_on_points(data, path, name: str) -> go.Figure:
    """Point data: decodes E[x|z] along a latent path, coloured by the path's parameter."""
    fig = points_figure(data, title=name)
    fig.add_trace(go.Scatter(x=path.means[:, 0], y=path.means[:, 1], mode="lines+markers", name="E[x|z] along "
                             "the path", marker=dict(color=path.t, colorscale="Viridis", size=9, showscale=True,
                                                     colorbar=dict(title="t", len=0.6)),
                             line=dict(color="#444", width=1)))
    return fig


# --- latent space ---------------------------------------------------------------------------------------------------
def latent_scatter(ls, which: str = "means", label_names=None, noun: str = "image") -> go.Figure:
    """Posterior means or samples of one or two latent dims, coloured by label, over the prior's density."""
    pts = ls.means if which == "means" else ls.samples
    what = "E_q[z|x]" if which == "means" else "z ~ q(z|x)"
    labels = ls.labels if ls.labels is not None else np.zeros(len(pts), int)
    fig = go.Figure()
    if len(ls.dims) == 2:
        top = float(np.max(ls.prior_density))
        fig.add_trace(go.Contour(x=ls.axes[0], y=ls.axes[1], z=ls.prior_density.T, showscale=False,
                                 colorscale=[[0, "#c6dbef"], [1, "#08519c"]], name="p(z) contours",
                                 showlegend=True, line=dict(width=1.5),
                                 contours=dict(coloring="lines", start=top / 10, end=top * 0.95, size=top / 5),
                                 hovertemplate="p(z) = %{z:.3g}<extra></extra>"))
    else:
        top = np.max(ls.prior_density)
        fig.add_trace(go.Scatter(x=ls.axes[0], y=ls.prior_density / top * 0.8 - 1.2, mode="lines",
                                 line=dict(color="#1f77b4"), name="p(z) (scaled)"))
    for i, lab in enumerate(np.unique(labels)):
        sel = labels == lab
        name = str(label_names[int(lab)]) if label_names is not None and int(lab) < len(label_names) else str(lab)
        name = name if ls.labels is not None else what
        y = pts[sel, 1] if len(ls.dims) == 2 else np.full(sel.sum(), float(i % 10) / 10)
        # no marker outlines: a browser strokes each of the 2000 markers, and the outline doubles the drawing time
        fig.add_trace(go.Scatter(x=pts[sel, 0], y=y, mode="markers", name=name,
                                 marker=dict(size=6, color=COLORS[i % len(COLORS)], opacity=0.85)))
    z = [f"z{d + 1}" for d in ls.dims]
    fig.update_xaxes(title=z[0])
    fig.update_yaxes(title=z[1] if len(z) == 2 else "label (spread)", scaleanchor="x" if len(z) == 2 else None)
    fig.update_layout(height=560, title=f"{what} of test {noun}s over the prior p(z) ({', '.join(z)})",
                      legend=dict(title="label"), margin=dict(l=60, r=20, t=50, b=40))
    return fig


def aggregate_histograms(agg, cols: int = 4) -> go.Figure:
    """Per latent dimension: histogram of the aggregate posterior q(z_j) against the prior's marginal p(z_j)."""
    d = len(agg.dims)
    cols = min(cols, d)
    rows = math.ceil(d / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"z{j + 1}" for j in agg.dims],
                        horizontal_spacing=0.06, vertical_spacing=0.5 / max(rows, 1) if rows > 1 else 0.1)
    for k in range(d):
        r, c = divmod(k, cols)
        centres = (agg.edges[k, 1:] + agg.edges[k, :-1]) / 2
        fig.add_trace(go.Bar(x=centres, y=agg.density[k], marker_color="#ff7f0e", opacity=0.75,
                             name="q(z_j): aggregate posterior", showlegend=k == 0, legendgroup="q",
                             width=centres[1] - centres[0]), r + 1, c + 1)
        fig.add_trace(go.Scatter(x=agg.grid[k], y=agg.prior_pdf[k], mode="lines", line=dict(color="#1f77b4"),
                                 name="p(z_j): prior", showlegend=k == 0, legendgroup="p"), r + 1, c + 1)
    fig.update_yaxes(title_text="density", col=1)
    fig.update_xaxes(title_text="z_j")
    fig.update_layout(height=240 * rows + 90, bargap=0, legend=dict(orientation="h", yanchor="bottom",
                                                                     y=1.0 + 60 / (240 * rows), x=0),
                      margin=dict(l=60, r=20, t=90, b=40))
    return fig


def latent_usage(usage) -> go.Figure:
    """KL(q(z_j|x) || p(z_j)) per dimension (nats) and activity Cov_x(E_q[z_j]) with the active-unit threshold."""
    dims = [f"z{j + 1}" for j in range(len(usage.kl_per_dim))]
    colors = ["#2ca02c" if a else "#bbbbbb" for a in usage.active]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("KL(q(z_j|x) || p(z_j)), mean over test x",
                                        f"activity Cov_x(E_q[z_j]): {usage.n_active} of {len(dims)} active "
                                        f"(dashed: {usage.threshold})"))
    fig.add_trace(go.Bar(x=dims, y=usage.kl_per_dim, marker_color=colors, showlegend=False,
                         hovertemplate="%{x}: %{y:.3f} nats<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=dims, y=np.maximum(usage.activity, 1e-8), marker_color=colors, showlegend=False,
                         hovertemplate="%{x}: %{y:.3g}<extra></extra>"), 1, 2)
    fig.add_hline(y=usage.threshold, line_dash="dash", line_color="#d62728", line_width=2, row=1, col=2)
    low = min(usage.threshold / 10, max(float(np.min(usage.activity)), 1e-8) / 2)
    high = max(usage.threshold * 10, float(np.max(usage.activity)) * 2)
    fig.update_yaxes(title_text="nats", row=1, col=1)
    fig.update_yaxes(title_text="variance (log scale)", type="log", dtick=1, exponentformat="power", row=1, col=2,
                     range=[math.log10(low), math.log10(high)])  # a log axis takes log10 positions
    fig.update_layout(height=380, margin=dict(l=60, r=20, t=50, b=40))
    return fig


# --- what is p(x)? ----------------------------------------------------------------------------------------------------
def bound_curve(w) -> go.Figure:
    """IWAE_k against k (log axis) with the ELBO and, where it exists, log p(x); the gap marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=w.ks, y=w.iwae, mode="lines+markers", name="IWAE_k ± 2 s.e. (importance-weighted bound)",
                             line=dict(color="#ff7f0e", width=2),
                             error_y=dict(type="data", array=2 * np.nan_to_num(w.iwae_sem), visible=True, width=4),
                             customdata=np.stack([w.iwae_sem, w.iwae_groups], -1),
                             hovertemplate="k=%{x}: %{y:.3f} ± %{customdata[0]:.3f} nats (s.e.), average of "
                             "%{customdata[1]} estimates<extra></extra>"))
    fig.add_hline(y=w.elbo, line_color=ELBO_C, line_dash="dash", annotation_text=f"ELBO {w.elbo:.2f}",
                  annotation_position="bottom right")
    if w.log_px is not None:
        label = "exact" if w.method == "exact" else "quadrature"
        fig.add_hline(y=w.log_px, line_color=TRUE_C, annotation_text=f"log p(x) ({label}) {w.log_px:.2f}",
                      annotation_position="top right")
        fig.add_annotation(x=0.98, xref="paper", y=(w.log_px + w.elbo) / 2, showarrow=False, xanchor="right",
                           text=f"gap = log p(x) − ELBO<br>= KL(q(z|x) || p(z|x)) = {w.gap:.3f} nats",
                           bgcolor="rgba(255,255,255,0.8)")
    fig.update_xaxes(type="log", title="k (samples of z ~ q(z|x))")
    fig.update_yaxes(title="nats (this image)")
    fig.update_layout(height=420, legend=dict(orientation="h", y=-0.22), margin=dict(l=70, r=20, t=30, b=40),
                      title=None)
    return fig


def posterior_picture(pic) -> go.Figure:
    """True posterior p(z|x) (shaded) with q(z|x)'s contours over it (2-D), or both densities (1-D)."""
    fig = go.Figure()
    if len(pic.axes) == 2:
        true, q = np.exp(pic.log_true).T, np.exp(pic.log_q).T  # [G2, G1] for plotly (rows = y)
        # shaded as a smoothed heatmap: a filled contour costs the browser 3x the drawing time for the same picture
        fig.add_trace(go.Heatmap(x=pic.axes[0], y=pic.axes[1], z=true.astype(np.float32), colorscale="Greys",
                                 zmin=0, zsmooth="best", name="p(z|x)", showlegend=False,
                                 colorbar=dict(title="p(z|x)", len=0.7), hovertemplate="p(z|x) = %{z:.3g}"
                                 "<extra></extra>"))
        fig.add_trace(go.Contour(x=pic.axes[0][::2], y=pic.axes[1][::2], z=q[::2, ::2].astype(np.float32),
                                 showscale=False, ncontours=6, name="q(z|x)",
                                 showlegend=False, colorscale=[[0, "#d62728"], [1, "#d62728"]],
                                 contours=dict(coloring="lines"), line=dict(width=2), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color="#d62728", width=2),
                                 name="q(z|x) contours"))
        fig.update_xaxes(title="z1")
        fig.update_yaxes(title="z2", scaleanchor="x")
        fig.update_layout(title="True p(z|x) (grey), q(z|x) (red)")
    else:
        fig.add_trace(go.Scatter(x=pic.axes[0], y=np.exp(pic.log_true), name="p(z|x) (true)",
                                 line=dict(color=TRUE_C)))
        fig.add_trace(go.Scatter(x=pic.axes[0], y=np.exp(pic.log_q), name="q(z|x)", line=dict(color="#d62728")))
        fig.update_xaxes(title="z1")
        fig.update_yaxes(title="density")
        fig.update_layout(title="True posterior p(z|x) and the encoder's q(z|x)")
    fig.update_layout(height=480, legend=dict(orientation="h", y=-0.2), margin=dict(l=60, r=20, t=50, b=40))
    return fig


# --- the density lab (2-D point data) ----------------------------------------------------------------------------
LAB_COLORSCALE = "Viridis"
LAB_POINTS = "rgba(255,255,255,0.45)"  # training points over a density
SAMPLE_C, MEAN_C, RECON_C_LAB, TEST_C = "#ff7f0e", "#111111", "#2ca02c", "#d62728"
LOG_FLOOR = 12.0  # a log-scale picture shows log p(x) down to 12 nats below its largest value


def plane_height(extent, plot_width: int, extra: int = 140) -> int:
    """The figure height (px) that fits a plane drawn `plot_width` px wide with one unit as long on both axes, plus
    `extra` px of title, axis labels and legend."""
    ratio = (extent[1][1] - extent[1][0]) / max(extent[0][1] - extent[0][0], 1e-12)
    return int(min(800, max(300, round(plot_width * ratio) + extra)))


def _plane_axes_layout(fig, extent, plot_width: int, title: str | None, **layout) -> go.Figure:
    """x1 to the right, x2 up, one unit as long on both axes, over the plane's extent; tall enough for a plot
    about `plot_width` px wide."""
    fig.update_xaxes(title="x1", range=list(extent[0]), constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(title="x2", range=list(extent[1]), scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False, zeroline=False)
    fig.update_layout(height=plane_height(extent, plot_width), title=title,
                      margin=dict(l=60, r=20, t=50 if title else 20, b=50), plot_bgcolor="white", **layout)
    return fig


def _contour_lines(axes, log_density, *, name: str, width: float, dash: str = "solid",
                   showlegend: bool = False) -> go.Contour:
    """White contour lines of a density at 10 %, 30 %, 50 %, 70 % and 90 % of its peak (on every other grid point:
    lines need no more, and the figure stays small)."""
    p = np.exp(np.asarray(log_density, np.float64))[::2, ::2]
    peak = float(p.max())
    return go.Contour(x=axes[0][::2], y=axes[1][::2], z=p.T.astype(np.float32), showscale=False,
                      contours=dict(coloring="lines", start=0.1 * peak, end=0.9 * peak, size=0.2 * peak),
                      line=dict(width=width, color="rgba(255,255,255,0.75)", dash=dash),
                      colorscale=[[0, "white"], [1, "white"]], hoverinfo="skip", name=name, showlegend=showlegend)


def _extent(axes) -> tuple:
    return tuple((float(a[0]), float(a[-1])) for a in axes)


def lab_heat(axes, log_density, *, zmax: float | None = None, log_scale: bool = False, name: str = "p(x)",
             showscale: bool = True) -> go.Heatmap:
    """A density on the plane as a heatmap trace: p(x) from 0 to zmax (values above zmax saturate), or log p(x)
    down to LOG_FLOOR nats below zmax's log. log_density [G0, G1] (indexing "ij")."""
    log_density = np.asarray(log_density, np.float64)
    if log_scale:
        top = math.log(zmax) if zmax else float(np.max(log_density))
        z, zmin, zmax_shown, label = np.maximum(log_density, top - LOG_FLOOR), top - LOG_FLOOR, top, f"log {name}"
    else:
        z, zmin, zmax_shown, label = np.exp(log_density), 0.0, zmax or float(np.exp(np.max(log_density))), name
    return go.Heatmap(x=axes[0], y=axes[1], z=z.T.astype(np.float32), zmin=zmin, zmax=zmax_shown,
                      colorscale=LAB_COLORSCALE, showscale=showscale, name=name,
                      colorbar=dict(title=label, len=0.8, thickness=14),
                      hovertemplate=f"x = (%{{x:.2f}}, %{{y:.2f}})<br>{label} = %{{z:.3g}}<extra></extra>")


def lab_density(axes, log_density, *, title: str, points=None, zmax: float | None = None, log_scale: bool = False,
                name: str = "p(x)", plot_width: int = 330) -> go.Figure:
    """A density over the plane (heatmap, white contour lines at 10 %, 30 %, 50 %, 70 % and 90 % of its peak) with
    up to 1000 `points` [n, 2] (the training data) over it."""
    fig = go.Figure(lab_heat(axes, log_density, zmax=zmax, log_scale=log_scale, name=name))
    fig.add_trace(_contour_lines(axes, log_density, name=f"contours of {name}", width=0.8))
    if points is not None:
        pts = np.asarray(points)[:1000]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="training points",
                                 marker=dict(size=3, color=LAB_POINTS), hoverinfo="skip", showlegend=False))
    return _plane_axes_layout(fig, _extent(axes), plot_width, title)


def ellipse_paths(means, sigmas, radius: float = 2.0, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned ellipses {m + radius sigma (cos t, sin t)} as one polyline each, separated by NaN (one trace
    for all): means, sigmas [K, 2] -> x, y [K (n + 1)]."""
    t = np.linspace(0, 2 * np.pi, n)
    means, sigmas = np.asarray(means, np.float64), np.asarray(sigmas, np.float64)
    xs = means[:, :1] + radius * sigmas[:, :1] * np.cos(t)  # [K, n]
    ys = means[:, 1:2] + radius * sigmas[:, 1:2] * np.sin(t)
    gap = np.full((len(means), 1), np.nan)
    return np.concatenate([xs, gap], 1).ravel(), np.concatenate([ys, gap], 1).ravel()


def lab_mixture(mix, log_px_grid, *, zmax: float, points=None, plot_width: int = 420) -> go.Figure:
    """p_K(x) as a heatmap on p(x)'s colour scale (values above it saturate), each component N(f(z_k), sigma^2)
    as its 2-sigma ellipse and centre f(z_k), and p(x)'s own contour lines (white) to compare."""
    axes = mix.axes
    fig = go.Figure(lab_heat(axes, mix.log_density, zmax=zmax, name="p_K(x)"))
    fig.add_trace(_contour_lines(axes, log_px_grid, name="p(x): its contours (dotted)", width=1.2, dash="dot",
                                 showlegend=True))
    ex, ey = ellipse_paths(mix.means, mix.sigmas)
    opacity = float(min(0.9, max(0.2, 4.0 / math.sqrt(mix.K))))
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=f"rgba(255,127,14,{opacity:.2f})", width=1),
                             name=f"p(x|z_k) = N(f(z_k), σ²): 2σ ellipses, weight 1/{mix.K} each",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=mix.means[:, 0], y=mix.means[:, 1], mode="markers", name="f(z_k), z_k ~ p(z)",
                             marker=dict(size=4 if mix.K > 100 else 6, color=SAMPLE_C, line=dict(width=0.5,
                                                                                                 color="black")),
                             hovertemplate="f(z_k) = (%{x:.2f}, %{y:.2f})<extra></extra>"))
    if points is not None:
        pts = np.asarray(points)[:1000]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="training points",
                                 marker=dict(size=2.5, color=LAB_POINTS), hoverinfo="skip", visible="legendonly"))
    return _plane_axes_layout(fig, _extent(axes), plot_width, f"p_K(x) = (1/{mix.K}) Σ_k N(x; f(z_k), σ²) with "
                              f"K = {mix.K}", legend=dict(orientation="h", y=-0.2, x=0))


def lab_mixture_curve(curve, K: int, height: int = 420) -> go.Figure:
    """mean |log p_K(x) - log p(x)| over the test points against K (log axes), the chosen K marked."""
    fig = go.Figure(go.Scatter(x=curve.ks, y=curve.mean_abs_error, mode="lines+markers", name="mean |log p_K − "
                               "log p|", line=dict(color=SAMPLE_C, width=2),
                               hovertemplate="K = %{x}: %{y:.3g} nats<extra></extra>"))
    chosen = np.flatnonzero(curve.ks == K)
    if len(chosen):
        fig.add_trace(go.Scatter(x=[K], y=[curve.mean_abs_error[chosen[0]]], mode="markers", name=f"K = {K}",
                                 marker=dict(size=13, color="white", line=dict(width=2.5, color=TEST_C))))
    fig.update_xaxes(type="log", title="K (components z_k ~ p(z))", dtick=1)  # ticks at 1, 10, 100, 1000
    fig.update_yaxes(type="log", title="test mean |log p_K − log p|, nats", dtick=1)
    fig.update_layout(height=height, title="p_K approaches p(x) as K grows", showlegend=False,
                      margin=dict(l=70, r=20, t=50, b=50))
    return fig


def lab_sampling(both, extent, *, points=None, samples: bool = True, reconstructions: bool = True,
                 n_links: int = 300, plot_width: int = 640) -> go.Figure:
    """On one plane: draws x ~ p(x) (z ~ p(z), then x ~ p(x|z)) with their decoder means f(z), and test points x
    with their reconstructions x' (z ~ q(z|x), then x' ~ p(x|z)) joined to them by a segment."""
    fig = go.Figure()
    if points is not None:
        pts = np.asarray(points)[:1000]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="training points",
                                 marker=dict(size=3, color=DATA_GREY), hoverinfo="skip"))
    if samples:
        fig.add_trace(go.Scatter(x=both.prior_means[:, 0], y=both.prior_means[:, 1], mode="markers",
                                 name="f(z) = E[x|z], z ~ p(z)", marker=dict(size=3, color=MEAN_C), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=both.samples[:, 0], y=both.samples[:, 1], mode="markers",
                                 name="x ~ p(x): z ~ p(z), then x ~ p(x|z)", marker=dict(size=5, color=SAMPLE_C,
                                                                                        opacity=0.8),
                                 hoverinfo="skip"))
    if reconstructions:
        k = min(n_links, len(both.x))
        seg_x = np.stack([both.x[:k, 0], both.reconstructions[:k, 0], np.full(k, np.nan)], 1).ravel()
        seg_y = np.stack([both.x[:k, 1], both.reconstructions[:k, 1], np.full(k, np.nan)], 1).ravel()
        fig.add_trace(go.Scatter(x=seg_x, y=seg_y, mode="lines", line=dict(color="rgba(44,160,44,0.35)", width=1),
                                 name="x → x'", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=both.x[:k, 0], y=both.x[:k, 1], mode="markers", name="test points x",
                                 marker=dict(size=5, color=TEST_C, symbol="x-thin", line=dict(width=1.5,
                                                                                              color=TEST_C)),
                                 hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=both.reconstructions[:k, 0], y=both.reconstructions[:k, 1], mode="markers",
                                 name="x' ~ p(x|z), z ~ q(z|x): reconstructions", marker=dict(size=5,
                                                                                               color=RECON_C_LAB),
                                 hoverinfo="skip"))
    return _plane_axes_layout(fig, extent, plot_width, None, legend=dict(orientation="h", y=-0.14, x=0))


def lab_pick(axes, log_density, x_test, point, *, pick: int = 41, plot_width: int = 380) -> go.Figure:
    """The plane to pick x on: p(x) as filled contours, the test points, a grid of invisible pickable points
    (clicking anywhere selects the nearest), and the chosen x as a star."""
    p = np.exp(np.asarray(log_density, np.float64))[::2, ::2]  # every other grid point is enough for the fill
    fig = go.Figure(go.Contour(x=axes[0][::2], y=axes[1][::2], z=p.T.astype(np.float32),
                               colorscale=LAB_COLORSCALE, ncontours=12, showscale=False, hoverinfo="skip",
                               contours=dict(coloring="fill", showlines=False), name="p(x)"))
    gx, gy = np.meshgrid(np.linspace(axes[0][0], axes[0][-1], pick), np.linspace(axes[1][0], axes[1][-1], pick))
    fig.add_trace(go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", name="pick here",
                             marker=dict(size=14, color="rgba(0,0,0,0)"), showlegend=False,
                             selected=dict(marker=dict(color="rgba(0,0,0,0)")),
                             unselected=dict(marker=dict(opacity=0)),
                             hovertemplate="click to pick x = (%{x:.2f}, %{y:.2f})<extra></extra>"))
    pts = np.asarray(x_test)[:500]
    fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="test points (click one)",
                             marker=dict(size=5, color=LAB_POINTS, line=dict(width=0.5, color="black")),
                             unselected=dict(marker=dict(opacity=1)),
                             hovertemplate="test point (%{x:.3f}, %{y:.3f})<extra></extra>"))
    fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name="x (chosen)",
                             marker=dict(size=18, symbol="star", color=TEST_C, line=dict(width=1.5, color="white")),
                             unselected=dict(marker=dict(opacity=1)), hoverinfo="skip"))
    return _plane_axes_layout(fig, _extent(axes), plot_width, None, legend=dict(orientation="h", y=-0.2, x=0),
                              clickmode="event+select", dragmode="pan")


def lab_posteriors(pic) -> go.Figure:
    """The true posterior p(z|x) beside the encoder's q(z|x) on the same latent grid (2-D: two panels on one
    colour scale; 1-D: two curves on one axis)."""
    if len(pic.axes) == 1:
        return posterior_picture(pic)
    true, q = np.exp(pic.log_true).T, np.exp(pic.log_q).T  # [G2, G1] (rows = z2)
    top = float(max(true.max(), q.max()))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("true p(z|x) = p(x|z) p(z) / p(x)", "the encoder's q(z|x)"))
    for col, (z, name) in enumerate(((true, "p(z|x)"), (q, "q(z|x)")), 1):
        fig.add_trace(go.Heatmap(x=pic.axes[0], y=pic.axes[1], z=z.astype(np.float32), zmin=0, zmax=top,
                                 colorscale="Greys", showscale=col == 2, colorbar=dict(title="density", len=0.8),
                                 hovertemplate=f"z = (%{{x:.2f}}, %{{y:.2f}})<br>{name} = %{{z:.3g}}<extra></extra>"),
                      1, col)
    for col, z in ((1, q), (2, true)):  # the other one's contours, to compare shapes
        fig.add_trace(go.Contour(x=pic.axes[0], y=pic.axes[1], z=z, showscale=False, ncontours=4,
                                 contours=dict(coloring="lines"), line=dict(width=1.2, dash="dot"),
                                 colorscale=[[0, TEST_C], [1, TEST_C]], hoverinfo="skip"), 1, col)
    fig.update_xaxes(title="z1", constrain="domain")
    fig.update_yaxes(title="z2", row=1, col=1)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    fig.update_layout(height=440, margin=dict(l=60, r=20, t=50, b=80), plot_bgcolor="white")
    fig.add_annotation(text="red dotted lines: the other panel's contours", xref="paper", yref="paper", x=1, y=-0.22,
                       showarrow=False, xanchor="right", font=dict(size=12))
    return fig


def chart_selectable(fig: go.Figure, *, key: str, config: dict, on_select, width="stretch"):
    """`chart` whose points can be clicked: a click selects the nearest point of a scatter trace and calls
    `on_select` (Streamlit's plotly selection event, read from st.session_state[key])."""
    import streamlit as st

    return st.plotly_chart(_styled(fig), theme=None, config=config, key=key, width=width, on_select=on_select,
                           selection_mode="points")
