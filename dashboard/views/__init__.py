"""The dashboard's views, one module each; `VIEWS` is their order and their tab labels (also the ?view= value).
Each page draws what its module in `vae_tfp.explain` computes; no module here imports TensorFlow at import time:
each asks `state.explain(<view>)` for its library module when it has a model to show."""

from dashboard.views import compare, lab, latent, prior_posterior, reconstructions, training, what_is_px

VIEWS = (
    ("Training", training),
    ("Reconstructions", reconstructions),
    ("Prior vs posterior", prior_posterior),
    ("What is p(x)?", what_is_px),
    ("Density lab", lab),
    ("Latent space", latent),
    ("Compare runs", compare),
)
LABELS = tuple(label for label, _ in VIEWS)
