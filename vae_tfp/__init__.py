"""vae-tfp: variational autoencoders written the way the math reads.

p(z) (prior), p(x|z) (likelihood) and q(z|x) (approximate posterior) are TensorFlow Probability
distributions built by small functions; Keras 3 networks only produce their parameters.

Submodules are imported lazily so that `import vae_tfp` is cheap (TensorFlow loads on first use):

    from vae_tfp.model import build_vae
    from vae_tfp.objectives import elbo_terms, iwae_bound
    from vae_tfp.evaluation import log_px_importance
"""

__version__ = "0.1.0"
