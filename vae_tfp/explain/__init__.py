"""What the dashboard shows, computed headless from a trained VAE: one module per view, never importing streamlit.

    reconstructions   x, E[x|z] (the decoder's output), x' ~ p(x|z), log p(x|z) for z ~ q(z|x)
    prior_posterior   decodes of z ~ p(z) and z ~ q(z|x); posterior means / samples over the prior's density; the
                      aggregate posterior q(z) = mean_x q(z|x) against p(z_j); KL per dimension and active units
    what_is_px        ELBO, IWAE_k for growing k, exact / quadrature log p(x), the gap log p(x) - ELBO =
                      KL(q(z|x) || p(z|x)), and p(z|x) beside q(z|x) on a grid (latent <= 2)
    latent            decodes E[x|z] over a grid of a 2-D latent, along a traversal and an interpolation
    lab               2-D point data: the model's p(x) and the data's true p(x) on one plane, their distance
                      KL(p_true || p_model) on test points, how fast p_K(x) approaches p(x) (from vae_tfp.density)
    curves            training curves (elbo, reconstruction, kl per split) from a run's history
    compare           one row per saved run and a note where runs' log-likelihoods are not comparable
    data              the data of a config exactly as the trainer prepares it
    advice            whether and how a likelihood fits a data set (the sidebar's and the CLI's words)

The modules return numpy arrays in small dataclasses, so a page only draws. The math they use lives in
`vae_tfp.evaluation` and `vae_tfp.objectives`; nothing here restates a formula. The ELBO's terms carry the names
`elbo`, `reconstruction` (= E_q[log p(x|z)]) and `kl` (= KL(q(z|x) || p(z))) everywhere.

Importing this package imports no TensorFlow: `curves`, `compare`, `data` and `advice` need none; the others import
it when imported. Sampling takes an integer seed and is stateless, so a view redrawn with the same inputs shows the
same samples.

    from vae_tfp.explain import what_is_px
    w = what_is_px.what_is_px(model, x_test[0])    # w.elbo, w.iwae, w.log_px, w.gap, w.kl_true_posterior, w.picture
"""

VIEW_MODULES = ("reconstructions", "prior_posterior", "what_is_px", "latent", "lab", "curves", "compare")
