"""The reference model every implementation trains, and the files the coordinator hands between workers.

Model (sizes from the data and the settings; full run: D = 784, hidden = (512, 256), L = 16):
    encoder  x [B, D] -> Dense(512) ReLU -> Dense(256) ReLU -> Dense(2 L) = [loc, raw_scale]
    q(z|x) = N(loc, diag(scale^2)),  scale = softplus(raw_scale) + 1e-5          (as vae_tfp/posteriors.py)
    decoder  z [B, L] -> Dense(256) ReLU -> Dense(512) ReLU -> Dense(D) = logits
    p(z) = N(0, I);  p(x|z) = prod_d Bernoulli(x_d; sigmoid(logits_d))
    ELBO(x) = sum_d [x_d l_d - softplus(l_d)] - KL,   KL = sum_j [ (loc_j^2 + scale_j^2 - 1) / 2 - log scale_j ]
    one z sample per image; loss = -mean_batch ELBO; Adam(lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7 as Keras)
    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k,  z_k ~ q(z|x)

Files (in the run's temporary folder, written by the vae-tfp worker from its own Trainer's data and model):
    x_train.npy  [N, D] float32 intensities in [0, 1]; binarized afresh every epoch: x ~ Bernoulli(intensity)
    x_test.npy   [M, D] float32 {0, 1}; binarized once with numpy default_rng(123 + seed) (vae_tfp.data)
    *.npz        weights: enc{i}_kernel [in, out] (Keras Dense layout), enc{i}_bias [out], the same for dec{i}
"""

import numpy as np

ADAM = dict(lr=1e-3, b1=0.9, b2=0.999, eps=1e-7)
MIN_SCALE = 1e-5


def save_weights(path, encoder, decoder) -> None:
    """Write [(kernel [in, out], bias [out]), ...] of the encoder and decoder Dense layers, first layer first."""
    arrays = {}
    for net, layers in (("enc", encoder), ("dec", decoder)):
        for i, (kernel, bias) in enumerate(layers):
            arrays[f"{net}{i}_kernel"] = np.asarray(kernel, np.float32)
            arrays[f"{net}{i}_bias"] = np.asarray(bias, np.float32)
    np.savez(path, **arrays)


def load_weights(path):
    """(encoder, decoder): lists of (kernel [in, out], bias [out]) float32, first layer first."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    out = []
    for net in ("enc", "dec"):
        n = sum(1 for k in arrays if k.startswith(net) and k.endswith("_kernel"))
        layers = [(arrays[f"{net}{i}_kernel"], arrays[f"{net}{i}_bias"]) for i in range(n)]
        for (k0, _), (k1, _) in zip(layers, layers[1:]):
            if k0.shape[1] != k1.shape[0]:
                raise ValueError(f"{path}: {net} layer shapes do not chain ({k0.shape} then {k1.shape})")
        out.append(layers)
    return tuple(out)


def load_data(folder):
    """(x_train [N, D] intensities, x_test [M, D] binary), float32."""
    x_train = np.load(f"{folder}/x_train.npy", allow_pickle=False).astype(np.float32)
    x_test = np.load(f"{folder}/x_test.npy", allow_pickle=False).astype(np.float32)
    return x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)


def eval_chunk(k: int, max_points: int = 2**15) -> int:
    """Images per log p(x) chunk: as many as fit `max_points` samples x images (vae_tfp.evaluation's bound)."""
    return max(1, max_points // k)
