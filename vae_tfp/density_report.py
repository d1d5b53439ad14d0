"""What `python -m vae_tfp density RUN_DIR` reports and draws for a run on 2-D point data: the model's p(x) on a
grid over the plane (`vae_tfp.density`), its mean log p(x) on the test set, and where the data's true density is
known (`vae_tfp.datasets.truth`) the same under the truth; plus a PNG of the density (model, and truth beside it)
with the training points over it, written into the run directory as density.png.
"""

import math
import time

import numpy as np

from vae_tfp import density
from vae_tfp.datasets.truth import true_density
from vae_tfp.gaussian_mixture import grid_integral
from vae_tfp.runs import Run, load_model

PANEL = 360  # pixels on the longer side of one panel
MAX_DRAWN_POINTS = 1000
# viridis at 0, 1/4, 1/2, 3/4, 1 (matplotlib's colour map), interpolated linearly
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)


def density_report(run: Run, *, grid: int = 200, latent_grid: int | None = None, k: int | None = None,
                   grid_k: int | None = None, n: int | None = None, data_dir=None, image: bool = True) -> dict:
    """The density report of a saved run (see the module docstring); ValueError if the run is not on 2-D points.
    k / grid_k: importance samples per test / grid point for latent_dim > 2 (default density.TEST_K / GRID_K)."""
    k = density.TEST_K if k is None else k
    grid_k = density.GRID_K if grid_k is None else grid_k
    from vae_tfp.explain.data import prepared_data

    event_shape = tuple(run.data_info().get("event_shape", ()))
    if event_shape != (2,):
        raise ValueError(f"density needs a run on 2-D point data (event shape (2,)); {run.path.name} was trained on "
                         f"data of event shape {event_shape}")
    started = time.perf_counter()
    config = run.config()
    model = load_model(run)
    _, prepared = prepared_data(config, data_dir)
    x_train, x_test = prepared.x_train, prepared.x_test[:n] if n else prepared.x_test
    plane = density.density_grid(model, grid, points=x_train, latent_grid=latent_grid, k=grid_k)
    log_px = density.log_px_at(model, x_test, quadrature=plane.quadrature, k=k)  # the same latent grid
    report = {
        "run_dir": str(run.path), "dataset": config.dataset, "latent_dim": model.latent_dim,
        "method": plane.method, "grid": plane.grid, "extent": [list(e) for e in plane.extent],
        "latent_grid": plane.latent_grid, "latent_points": plane.latent_points, "latent_extent": plane.latent_extent,
        "prior_mass": plane.prior_mass, "latent_step": plane.latent_step, "k": plane.k,
        "integral": plane.integral, "seconds": plane.seconds,
        "test_n": int(len(x_test)), "test_log_px_mean": float(np.mean(log_px)),
        "test_log_px_stderr": float(np.std(log_px) / math.sqrt(len(log_px))),
        "test_k": k if plane.method == "importance" else None,
        "true_method": None, "true_test_log_px_mean": None, "true_integral": None,
    }
    truth = true_density(config.dataset)
    true_grid = None
    if truth is not None and truth.dim == 2:
        report["true_method"] = truth.method
        report["true_test_log_px_mean"] = float(np.mean(truth.log_prob(x_test)))
        true_grid = truth.log_density_grid(plane.axes)
        report["true_integral"] = grid_integral(plane.axes, true_grid)
    if image:
        panels = [("model p(x)", plane.log_density)] + ([("true p(x)", true_grid)] if true_grid is not None else [])
        path = run.path / "density.png"
        write_density_png(path, plane.axes, panels, x_train)
        report["png"] = str(path)
    report["total_seconds"] = time.perf_counter() - started
    return report


def _colour(values) -> np.ndarray:
    """values in [0, 1] [...] -> RGB uint8 [..., 3] through viridis."""
    t = np.clip(values, 0, 1) * (len(VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(VIRIDIS) - 2)
    frac = (t - i)[..., None]
    return np.round(VIRIDIS[i] * (1 - frac) + VIRIDIS[i + 1] * frac).astype(np.uint8)


def write_density_png(path, axes, panels, points=None) -> None:
    """Panels (title, log density [G0, G1] on `axes`) side by side on one colour scale (p(x) from 0 to the largest
    value of any panel), x_1 upwards, with up to 1000 of `points` [n, 2] drawn over each."""
    from PIL import Image, ImageDraw

    span = [float(a[-1] - a[0]) for a in axes]
    width, height = (PANEL, max(40, round(PANEL * span[1] / span[0]))) if span[0] >= span[1] else (
        max(40, round(PANEL * span[0] / span[1])), PANEL)
    top = max(float(np.max(np.exp(ld))) for _, ld in panels)
    if points is not None:
        points = np.asarray(points, np.float64)[:: max(1, len(points) // MAX_DRAWN_POINTS)]
    canvas = Image.new("RGB", (len(panels) * width + (len(panels) - 1) * 8, height), (255, 255, 255))
    for p, (title, log_density) in enumerate(panels):
        rgb = _colour(np.exp(log_density) / top).transpose(1, 0, 2)[::-1]  # rows: x_1 from high to low
        panel = Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.BILINEAR)
        draw = ImageDraw.Draw(panel)
        if points is not None:
            cols = (points[:, 0] - axes[0][0]) / span[0] * (width - 1)
            rows = (axes[1][-1] - points[:, 1]) / span[1] * (height - 1)
            for c, r in zip(cols, rows):
                draw.point((float(c), float(r)), fill=(255, 255, 255))
        draw.text((6, 4), title, fill=(255, 255, 255))
        canvas.paste(panel, (p * (width + 8), 0))
    canvas.save(path)
