"""The fast pieces every compiled training step uses (measured in `bench/`, see bench/RESULTS.md).

- `fused_adam(optimizer)`: Keras Adam's update as one `ResourceApplyAdam` kernel per variable, on Keras' own slot
  variables (so checkpoints and resume are unchanged), instead of ~10 graph ops per variable:

      t = iterations + 1,  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)
      m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,  w <- w - lr_t m / (sqrt(v) + epsilon)

  It reads Keras' private slot lists (`_momentums`, `_velocities`, `_get_variable_index`), so it is used only with
  the Keras version it was checked against (`KERAS_CHECKED`; tests/test_training_speed.py compares it with
  `apply_gradients` numerically and fails on another version); with any other, `apply_gradients` runs instead.
- `bfloat16_matmuls(model)`: the hidden Dense layers' matmuls in bfloat16 (weights, optimizer and loss stay float32).
- `all_finite(loss, grads)`: one sum sees every NaN/Inf (NaN + a = NaN, Inf + finite = Inf, Inf - Inf = NaN).
- `stack_metrics(metrics, keys)`: a step's metrics as one float32 vector, so a step costs one host sync.
"""

from vae_tfp._tf import keras, tf

KERAS_CHECKED = "3.15"  # major.minor of the Keras whose Adam `fused_adam` reproduces


def keras_checked() -> bool:
    """Is the installed Keras the version `fused_adam` was checked against?"""
    return ".".join(keras.__version__.split(".")[:2]) == KERAS_CHECKED


def apply_gradients(optimizer, grads, variables):
    """Keras' own update; returns True (a value for tf.cond)."""
    optimizer.apply_gradients(zip(grads, variables))
    return tf.constant(True)


def fused_adam(optimizer):
    """`apply(grads, variables)` running Keras Adam's update as fused kernels, or None when the optimizer is anything
    but plain Adam or Keras is not the checked version (then use `apply_gradients`)."""
    plain = (type(optimizer) is keras.optimizers.Adam and not optimizer.amsgrad and optimizer.weight_decay is None
             and optimizer.clipnorm is None and optimizer.clipvalue is None and optimizer.global_clipnorm is None
             and not optimizer.use_ema and optimizer.gradient_accumulation_steps is None
             and optimizer.loss_scale_factor is None)
    if not plain or not keras_checked():
        return None

    def apply(grads, variables):
        if any(getattr(v, "constraint", None) is not None for v in variables):
            return apply_gradients(optimizer, grads, variables)
        t = tf.cast(optimizer.iterations + 1, tf.float32)
        lr = tf.cast(optimizer.learning_rate, tf.float32)  # a schedule is evaluated at `iterations`, as Keras does
        b1, b2 = float(optimizer.beta_1), float(optimizer.beta_2)
        b1_power, b2_power = tf.pow(b1, t), tf.pow(b2, t)
        for g, var in zip(grads, variables):
            i = optimizer._get_variable_index(var)
            tf.raw_ops.ResourceApplyAdam(
                var=var.value.handle, m=optimizer._momentums[i].value.handle,
                v=optimizer._velocities[i].value.handle, beta1_power=b1_power, beta2_power=b2_power, lr=lr,
                beta1=tf.constant(b1), beta2=tf.constant(b2), epsilon=tf.constant(float(optimizer.epsilon)),
                grad=tf.convert_to_tensor(g, tf.float32))
        optimizer.iterations.assign_add(1)
        return tf.constant(True)

    return apply


def bfloat16_matmuls(model) -> None:
    """Run the Dense layers of the encoder and decoder in bfloat16 (Keras' "mixed_bfloat16": float32 weights cast to
    bfloat16 for the matmul), except a Dense layer that is a network's output (the posterior's parameters stay
    float32). Layers after them (reshape) cast back to float32, so likelihood, KL and loss are float32. Fast on CPUs
    with AVX512-BF16/AMX."""
    for net in (model.encoder, model.decoder):
        for layer in net.layers[:-1]:
            if isinstance(layer, keras.layers.Dense):
                layer.dtype_policy = "mixed_bfloat16"


def all_finite(loss, grads):
    """A bool scalar: the loss and every gradient are finite (one reduction per gradient, one add)."""
    return tf.math.is_finite(tf.add_n([tf.reduce_sum(g) for g in grads]) + loss)


def stack_metrics(metrics: dict, keys: list):
    """float32 [len(metrics)]: the metrics in a fixed order; `keys` (a list) is filled with their names at trace
    time."""
    keys[:] = list(metrics)
    return tf.stack([tf.cast(metrics[k], tf.float32) for k in keys])
