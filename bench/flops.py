"""Analytic FLOP counts for the reference MLP VAE (dense layers only).

Convention (the usual "6 N" rule for dense networks):
  * one dense layer in -> out costs 2 * in * out FLOP forward per example (in*out multiply-adds);
    biases, activations, the reparameterisation, the loss and the optimizer update are ignored (O(in + out)).
  * a training step costs 3 x forward per example: forward (1x) + gradient w.r.t. the weights (1x)
    + gradient w.r.t. the activations (1x). (Strictly the first layer needs no activation gradient; we keep the
    round 3x, which is how the reference figure was computed.)

Reference MLP VAE: encoder dims[0] -> dims[1] -> ... -> dims[-1] -> 2*latent (z_mean and z_log_var heads,
counted as one dense layer of width 2*latent), decoder latent -> dims[-1] -> ... -> dims[0] (mirror).
For 784-512-256-z16:
  encoder MACs = 784*512 + 512*256 + 256*32 = 540 672
  decoder MACs = 16*256 + 256*512 + 512*784 = 536 576
  forward      = 2 * 1 077 248 = 2 154 496 FLOP
  training     = 3 * forward   = 6 463 488 FLOP ~ 6.46 MFLOP per image (matches BENCHMARKS.md).
"""

DEFAULT_DIMS = (784, 512, 256)
DEFAULT_LATENT = 16


def _dense_flops(widths):
    """Forward FLOP per example of a chain of dense layers: sum_i 2 * widths[i] * widths[i+1]."""
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def encoder_forward_flops(dims=DEFAULT_DIMS, latent=DEFAULT_LATENT):
    """Forward FLOP per image of the encoder, including the 2*latent (mean, log-variance) head."""
    return _dense_flops(list(dims) + [2 * latent])


def decoder_forward_flops(dims=DEFAULT_DIMS, latent=DEFAULT_LATENT):
    """Forward FLOP per latent sample of the mirror decoder latent -> dims[-1] -> ... -> dims[0]."""
    return _dense_flops([latent] + list(dims)[::-1])


def mlp_vae_forward_flops_per_image(dims=DEFAULT_DIMS, latent=DEFAULT_LATENT):
    """Forward FLOP per image with one latent sample: encoder + decoder."""
    return encoder_forward_flops(dims, latent) + decoder_forward_flops(dims, latent)


def mlp_vae_train_flops_per_image(dims=DEFAULT_DIMS, latent=DEFAULT_LATENT):
    """Training FLOP per image = 3 x forward (forward + weight gradients + activation gradients), one latent sample.

    6 463 488 FLOP (~6.46 MFLOP) for dims=[784, 512, 256], latent=16.
    """
    return 3 * mlp_vae_forward_flops_per_image(dims, latent)


def eval_flops_per_sample(dims=DEFAULT_DIMS, latent=DEFAULT_LATENT, k=None):
    """Forward FLOP per (image, importance sample) for the importance-sampled log p(x).

    log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k, z_k ~ q(z|x): the encoder runs once
    per image and the decoder once per sample, so per (image, sample)
        decoder_forward + encoder_forward / k.
    With k=None the amortised encoder term is dropped (its share is 1/k, negligible for k in the thousands):
    1 073 152 FLOP for 784-512-256-z16.
    """
    dec = decoder_forward_flops(dims, latent)
    if k is None:
        return dec
    return dec + encoder_forward_flops(dims, latent) / k


if __name__ == "__main__":
    print(f"train FLOP/image: {mlp_vae_train_flops_per_image():,}")
    print(f"eval FLOP/(image, sample): {eval_flops_per_sample():,}")
