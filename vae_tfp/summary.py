"""What `python -m vae_tfp evaluate RUN_DIR` reports: test ELBO and its terms (`test_elbo`, `test_reconstruction`
= E_q[log p(x|z)], `test_kl` = KL(q(z|x) || p(z)), one z per image), importance-sampled log p(x), the
exact (linear-Gaussian) or quadrature (latent <= 2) log p(x) where the model admits it, bits per dimension for
discrete data, active units, and images (reconstructions and prior samples) written into the run directory.

    bits/dim = -log p(x) / (D ln 2)   (only for binary or integer-level data, where p(x) is a probability)
"""

import math
import time

import numpy as np

from vae_tfp import families
from vae_tfp.config import RunConfig
from vae_tfp.evaluation import (
    active_units,
    elbo_estimate,
    exact_log_px,
    is_linear_gaussian,
    log_px_importance,
    log_px_quadrature,
)
from vae_tfp.explain.data import prepared_data
from vae_tfp.runs import Run, load_model

DISCRETE = ("binary", "levels")


def test_data(config: RunConfig, data_dir=None) -> np.ndarray:
    """The run's test set in the representation its likelihood needs (the same, fixed binarization as training)."""
    return prepared_data(config, data_dir)[1].x_test


def evaluate_run(run: Run, *, k: int = 1000, n: int | None = None, quadrature_n: int = 200, data_dir=None,
                 images: bool = True, progress=None) -> dict:
    """Evaluate a saved run on (the first `n` images of) its test set; results are also merged into metrics.json."""
    config = run.config()
    model = load_model(run)
    x = test_data(config, data_dir)
    if n is not None:
        x = x[:n]
    report = {"run_dir": str(run.path), "n_images": int(len(x)), "log_px_k": int(k)}
    terms = elbo_estimate(model, x)  # one z ~ q(z|x) per image
    for name in ("elbo", "reconstruction", "kl"):
        report[f"test_{name}"] = float(np.mean(getattr(terms, name)))
    t0 = time.perf_counter()
    log_px = log_px_importance(model, x, k=k)
    report["log_px_seconds"] = time.perf_counter() - t0
    report["log_px"] = float(np.mean(log_px))
    report["log_px_stderr"] = float(np.std(log_px) / math.sqrt(len(log_px)))
    if is_linear_gaussian(model):
        report["exact_log_px"] = float(np.mean(exact_log_px(model, x)))
    elif model.latent_dim <= 2:
        m = min(len(x), quadrature_n)
        report["quadrature_log_px"] = float(np.mean(log_px_quadrature(model, x[:m])))
        report["quadrature_log_px_is"] = float(np.mean(log_px[:m]))  # the IS estimate on the same images
        report["quadrature_n_images"] = int(m)
    representation = families.likelihoods.get(config.likelihood).representation
    dims = int(np.prod(x.shape[1:]))
    report["bits_per_dim"] = -report["log_px"] / (dims * math.log(2)) if representation in DISCRETE else None
    report["active_units"], variances = active_units(model, x)
    report["latent_dim"] = model.latent_dim
    report["images_per_second"] = run.metrics().get("images_per_second")
    if images and len(model.event_shape) >= 2:
        report["images"] = write_images(run, model, x)
    run.update_metrics(evaluation=report, log_px=report["log_px"])
    return report


def write_images(run: Run, model, x, count: int = 8) -> list[str]:
    """Reconstructions (input / E[x|z] / x ~ p(x|z)) and prior samples as PNG grids in the run directory."""
    from PIL import Image

    q = model.encode(x[:count])
    z = q.sample()
    likelihood = model.decode(z)
    rows = [x[:count], model.likelihood_head.mean(likelihood).numpy(), likelihood.sample().numpy()]
    prior_z = model.prior_distribution().sample(count * 3, seed=0)
    samples = model.decoder_mean(prior_z).numpy().reshape((3, count) + model.event_shape)
    paths = []
    for name, grid in (("reconstructions.png", rows), ("prior_samples.png", list(samples))):
        image = _tile(np.stack([np.asarray(r) for r in grid]), _top(model))
        path = run.path / name
        Image.fromarray(image).resize((image.shape[1] * 4, image.shape[0] * 4), Image.NEAREST).save(path)
        paths.append(str(path))
    return paths


def _top(model) -> float:
    """The value shown as white: K-1 for integer levels, else 1."""
    levels = model.likelihood_head.levels
    return float(levels - 1) if levels else 1.0


def _tile(grid: np.ndarray, top: float) -> np.ndarray:
    """[rows, cols, H, W(, C)] -> one uint8 image with 1-pixel gaps."""
    grid = np.clip(grid / top, 0, 1)
    rows, cols, h, w = grid.shape[:4]
    out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1) + grid.shape[4:])
    for i in range(rows):
        for j in range(cols):
            out[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = grid[i, j]
    return (out * 255).astype(np.uint8)
