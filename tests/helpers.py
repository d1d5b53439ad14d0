"""Models with known parameters for the tests: a linear-Gaussian VAE set to given W, b, sigma."""

import numpy as np

from vae_tfp.model import VAE


def linear_gaussian_vae(W, b, sigma, posterior="diagonal"):
    """A VAE with x = z W + b + sigma eps (W [L, D]) and an encoder that returns the exact posterior mean with
    marginal scales 1.2 x the exact ones (so q is close to, but not, p(z|x))."""
    L, D = W.shape
    model = VAE((D,), latent_dim=L, likelihood="gaussian", network="linear", sigma=sigma, posterior=posterior)
    dense = [layer for layer in model.decoder.layers if hasattr(layer, "kernel")][0]
    dense.kernel.assign(W.astype(np.float32))
    dense.bias.assign(b.astype(np.float32))
    w_scaled = W / sigma**2
    cov = np.linalg.inv(np.eye(L) + w_scaled @ W.T)
    A = w_scaled.T @ cov  # posterior mean = (x - b) A, [D, L]
    enc = [layer for layer in model.encoder.layers if hasattr(layer, "kernel")][0]
    kernel = np.zeros(enc.kernel.shape, np.float32)
    bias = np.zeros(enc.bias.shape, np.float32)
    kernel[:, :L] = A
    bias[:L] = -b @ A
    scale = 1.2 * np.sqrt(np.diag(cov))
    if posterior == "diagonal":
        bias[L:] = np.log(np.expm1(scale))  # softplus^-1
    else:  # full: FillScaleTriL fills the diagonal last in TFP's ordering; a diagonal start is fine for tests
        from vae_tfp._tf import tfb

        tril = np.diag(scale)
        bias[L:] = tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=1e-5).inverse(tril).numpy()
    enc.kernel.assign(kernel)
    enc.bias.assign(bias)
    return model


def random_linear_model(rng, L=2, D=6, sigma=0.5):
    W = rng.normal(size=(L, D))
    b = rng.normal(size=D)
    return W, b, sigma


def open_tab(at):
    """The open view's tab in an AppTest of the dashboard (views seen before are drawn too, hidden in their own
    tabs)."""
    try:
        label = at.session_state["view"]
    except KeyError:
        label = at.tabs[0].label
    return next(t for t in at.tabs if t.label == label)
