"""The trainer: model-agnostic. Nothing in this file knows which likelihood, prior or posterior it trains; it asks
`vae_tfp.objectives.training_loss` for a loss and reports through callbacks.

    trainer = Trainer(RunConfig(dataset="digits", likelihood="bernoulli", epochs=5), runs_root="runs")
    trainer.callbacks.append(lambda event: print(event.kind, event.step, event.metrics.get("elbo")))
    result = trainer.train()          # TrainResult(status="completed", ...), weights in result.run.path

- one compiled (`tf.function`) step; `tf.data` input with per-epoch shuffling and, for binary data, dynamic
  binarization; Adam with an optional cosine schedule; a seed that makes runs reproducible;
- speed (measured in `bench/`, see bench/RESULTS.md): Adam's update is one fused kernel per variable
  (`ResourceApplyAdam`, the same formula as Keras' Adam, on Keras' own slot variables) instead of ~10 graph ops per
  variable; the step returns its metrics as one stacked vector (one host sync per step); the epoch shuffles indices
  and gathers rows (no 60 000-image shuffle buffer to refill); `precision="bfloat16"` runs the dense layers' matmuls
  in bfloat16 (weights, optimizer and likelihood stay float32) on CPUs with AVX512-BF16/AMX;
- events (`TrainEvent`) on every step, epoch end and test evaluation: step, epoch, images/s, ETA, ELBO and its terms;
- `stop()` is honoured within one step and keeps the model trained so far;
- NaN/Inf guard: a step whose loss or gradients are not finite is not applied, training stops with
  `TrainingDiverged` naming the step and likely causes, and the last good weights are what the run holds;
- checkpoints every `checkpoint_every` steps and at the end; `Trainer.resume(run_dir)` continues the same run;
- a `tf.distribute` strategy (e.g. MirroredStrategy) replicates the step.
"""

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from vae_tfp._tf import keras, tf
from vae_tfp.config import PRECISIONS, RunConfig
from vae_tfp.data import Dataset, load, prepare
from vae_tfp.likelihoods import get_spec
from vae_tfp.model import build_vae
from vae_tfp.objectives import elbo_terms, training_loss, warmup_beta
from vae_tfp.runs import Run, create_run, open_run

EVAL_BATCH = 1000


class TrainingDiverged(RuntimeError):
    """The loss or its gradients became NaN/Inf; the message names the step and likely causes."""


@dataclass
class TrainEvent:
    kind: str  # "start", "step", "epoch", "eval", "end"
    step: int
    epoch: int  # epochs completed
    total_steps: int
    images_per_second: float = 0.0
    eta_seconds: float = float("nan")
    metrics: dict = field(default_factory=dict)  # train: elbo, reconstruction, kl, loss, beta (and iwae)
    test_metrics: dict | None = None
    status: str = "running"


@dataclass
class TrainResult:
    status: str  # "completed", "stopped" or "diverged"
    run: Run | None
    steps: int
    epochs: int
    images_per_second: float
    train_metrics: dict
    test_metrics: dict
    message: str = ""


class Trainer:
    def __init__(self, config: RunConfig, *, dataset: Dataset | None = None, data_dir=None, run: Run | None = None,
                 runs_root=None, run_name: str | None = None, save: bool = True, strategy=None, callbacks=(),
                 history_every: int | None = None, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
        self.config = config
        self.precision = precision
        self.callbacks = list(callbacks)
        self.strategy = strategy or tf.distribute.get_strategy()
        self._stop = threading.Event()
        keras.utils.set_random_seed(config.seed)

        self.dataset = dataset if dataset is not None else load(config.dataset, data_dir=data_dir, seed=config.seed)
        spec = get_spec(config.likelihood)
        self.data = prepare(self.dataset, spec.representation, binarization=config.binarization, seed=config.seed)
        self.event_shape = tuple(self.data.x_train.shape[1:])
        self.levels = self.data.levels
        n = len(self.data.x_train)
        self.steps_per_epoch = math.ceil(n / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.history_every = history_every or max(1, self.steps_per_epoch // 10)

        with self.strategy.scope():
            self.model = build_vae(config, self.event_shape, self.levels)
            self.optimizer = keras.optimizers.Adam(self._learning_rate())
            self.optimizer.build(self.model.trainable_variables)
        if precision == "bfloat16":
            _bfloat16_matmuls(self.model)
        self.model.likelihood_head.check_support(self.data.x_test)
        if not self.data.dynamic_binarization:
            self.model.likelihood_head.check_support(self.data.x_train)

        self.run = run if run is not None else (create_run(config, runs_root, run_name) if save else None)
        if self.run is not None:
            self.run.write_data_info(self.data_info())
        self.step = 0
        self.epoch = 0
        self._train_step = self._compile_train_step()
        self._eval_step = tf.function(self._eval_terms)

    # --- construction helpers -------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir, **kwargs) -> "Trainer":
        """Continue the run in `run_dir` from its last checkpoint (same config, same directory)."""
        run = open_run(run_dir)
        trainer = cls(run.config(), run=run, **kwargs)
        state = run.restore_checkpoint(trainer.model, trainer.optimizer)
        trainer.step, trainer.epoch = int(state["step"]), int(state["step"]) // trainer.steps_per_epoch
        run.truncate_history(trainer.step)
        return trainer

    def data_info(self) -> dict:
        return {"dataset": self.dataset.name, "kind": self.dataset.kind, "event_shape": list(self.event_shape),
                "levels": self.levels, "representation": self.data.representation, "note": self.data.note,
                "n_train": int(len(self.data.x_train)), "n_test": int(len(self.data.x_test)),
                "label_names": list(self.dataset.label_names) if self.dataset.label_names else None}

    def _learning_rate(self):
        if self.config.lr_schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(self.config.lr, decay_steps=max(1, self.total_steps))
        return self.config.lr

    def _compile_train_step(self):
        """The compiled step: (x, beta) -> metrics as one stacked float32 vector, keys in `self._metric_keys`."""
        c, model, optimizer, strategy = self.config, self.model, self.optimizer, self.strategy
        replicas = strategy.num_replicas_in_sync
        fused_adam = _fused_adam(optimizer) if replicas == 1 else None
        keys = self._metric_keys = []

        def replica_step(x, beta):
            with tf.GradientTape() as tape:
                loss, metrics = training_loss(model, x, beta=beta, kl=c.kl, free_bits=c.free_bits, iwae_k=c.iwae_k)
                scaled = loss / replicas  # gradients are summed over replicas
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            # one sum sees every NaN/Inf (NaN + a = NaN, Inf + finite = Inf, Inf - Inf = NaN) in one pass per gradient
            finite = tf.math.is_finite(tf.add_n([tf.reduce_sum(g) for g in grads]) + loss)
            bad = tf.distribute.get_replica_context().all_reduce("SUM", 1.0 - tf.cast(finite, tf.float32))
            ok = tf.cast(bad == 0, tf.float32)  # 1 when every replica's step is finite
            if replicas == 1:  # a non-finite step is not applied: the weights stay the last good ones
                apply = fused_adam or (lambda g, v: _apply(optimizer, g, v))
                tf.cond(ok > 0, lambda: apply(grads, variables), lambda: tf.constant(False))
            else:  # merge_call cannot run inside tf.cond: apply zero gradients instead (Adam's momentum only)
                optimizer.apply_gradients(zip([tf.where(ok > 0, g, tf.zeros_like(g)) for g in grads], variables))
            return dict(metrics, loss=loss, finite=ok)

        def step(x, beta):
            per_replica = strategy.run(replica_step, args=(x, beta))
            out = {k: strategy.reduce("MEAN", v, axis=None) for k, v in per_replica.items()}
            keys[:] = list(out)  # fixed at trace time
            return tf.stack([tf.cast(out[k], tf.float32) for k in keys])  # [metrics]: one host sync per step

        if replicas > 1:  # batches come from a distributed tf.data pipeline: step(x, beta)
            return tf.function(step)
        # one replica: the batch is gathered and binarized inside the step: step(indices, seed, beta)
        return tf.function(lambda idx, seed, beta: step(self._batch(idx, seed), beta))

    def _eval_terms(self, x):
        terms = elbo_terms(self.model, x)
        return {"elbo": tf.reduce_sum(terms.elbo), "reconstruction": tf.reduce_sum(terms.reconstruction),
                "kl": tf.reduce_sum(terms.kl)}

    # --- data --------------------------------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> np.ndarray:
        """The epoch's order of the training images, fixed by (seed, epoch), so a resumed run sees the same batches."""
        return np.random.default_rng([self.config.seed, epoch]).permutation(len(self.data.x_train)).astype(np.int32)

    def _batch_seed(self, epoch: int, i: int) -> np.ndarray:
        """The stateless seed of batch i of an epoch's dynamic binarization."""
        return np.array([self.config.seed * 7919 + epoch, i], np.int64)

    def _batch(self, idx, seed):
        """Rows `idx` of the training set [batch, *event]; with dynamic binarization x ~ Bernoulli(intensity),
        drawn from a stateless seed (fresh every epoch and batch, the same on resume)."""
        x = tf.gather(self._x_train_tensor(), idx)
        if self.data.dynamic_binarization:
            x = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed=seed) < x, tf.float32)
        return x

    def _epoch_inputs(self, epoch: int, skip: int = 0):
        """The arguments of each of the epoch's remaining steps, after `skip` steps: (indices, seed) with one replica
        (the step gathers and binarizes the batch itself: no input pipeline), (x,) from a distributed dataset else."""
        c = self.config
        perm = self._permutation(epoch)
        if self.strategy.num_replicas_in_sync == 1:
            for i in range(skip, self.steps_per_epoch):
                yield perm[i * c.batch_size:(i + 1) * c.batch_size], self._batch_seed(epoch, i)
            return
        first = tf.constant(self._batch_seed(epoch, 0))  # batch i's seed is first + [0, i], as above
        ds = tf.data.Dataset.from_tensor_slices(perm).batch(c.batch_size).enumerate()
        ds = ds.map(lambda i, idx: self._batch(idx, first + tf.stack([tf.constant(0, tf.int64), i])))
        ds = ds.skip(skip).prefetch(tf.data.AUTOTUNE)
        for x in self.strategy.experimental_distribute_dataset(ds):
            yield (x,)

    def _x_train_tensor(self):
        if getattr(self, "_x_train", None) is None:
            with tf.init_scope():  # an eager tensor, also when first asked for while a step is being traced
                self._x_train = tf.constant(self.data.x_train)
        return self._x_train

    # --- the loop ----------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask training to stop; honoured within one step, keeping the model trained so far."""
        self._stop.set()

    def _emit(self, event: TrainEvent) -> None:
        for callback in self.callbacks:
            callback(event)

    def evaluate_test(self) -> dict:
        """Test-set ELBO and its terms (means over the test images, one z sample each)."""
        x = self.data.x_test
        sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        for i in range(0, len(x), EVAL_BATCH):
            out = self._eval_step(tf.constant(x[i:i + EVAL_BATCH]))
            for k in sums:
                sums[k] += float(out[k])
        return {k: v / len(x) for k, v in sums.items()}

    def train(self) -> TrainResult:
        c = self.config
        warmup_steps = c.warmup_epochs * self.steps_per_epoch
        status, message = "completed", ""
        interval, interval_images, interval_time = [], 0, 0.0
        ips, test_metrics, last_metrics = 0.0, {}, {}
        self._emit(TrainEvent("start", self.step, self.epoch, self.total_steps))
        start_epoch = self.epoch
        try:
            for epoch in range(start_epoch, c.epochs):
                skip = self.step - epoch * self.steps_per_epoch
                t0 = time.perf_counter()
                for inputs in self._epoch_inputs(epoch, skip=skip):
                    if self._stop.is_set():
                        status = "stopped"
                        break
                    beta = warmup_beta(self.step, c.beta, warmup_steps)
                    values = self._train_step(*inputs, beta).numpy().tolist()  # one host sync
                    out = dict(zip(self._metric_keys, values))
                    if out.pop("finite") < 1:
                        raise TrainingDiverged(self._divergence_message(out))
                    self.step += 1
                    batch_images = c.batch_size if self.step % self.steps_per_epoch else \
                        len(self.data.x_train) - (self.steps_per_epoch - 1) * c.batch_size
                    now = time.perf_counter()
                    interval_time += now - t0
                    t0 = now
                    interval_images += batch_images
                    ips = interval_images / max(interval_time, 1e-9)
                    last_metrics = dict(out, beta=float(beta))
                    interval.append(last_metrics)
                    eta = (self.total_steps - self.step) * interval_time / max(len(interval), 1)
                    self._emit(TrainEvent("step", self.step, self.epoch, self.total_steps, ips, eta, last_metrics))
                    if self.step % self.history_every == 0:
                        self._record("train", _mean_dicts(interval), ips)
                        interval, interval_images, interval_time = [], 0, 0.0
                    if self.run is not None and self.step % c.checkpoint_every == 0:
                        self.run.save_checkpoint(self.model, self.optimizer, self.step, self.epoch)
                        t0 = time.perf_counter()
                if status == "stopped":
                    break
                self.epoch = epoch + 1
                self._emit(TrainEvent("epoch", self.step, self.epoch, self.total_steps, ips, metrics=last_metrics))
                if self.epoch % c.eval_every == 0 or self.epoch == c.epochs:
                    test_metrics = self.evaluate_test()
                    self._record("test", test_metrics, ips)
                    self._emit(TrainEvent("eval", self.step, self.epoch, self.total_steps, ips,
                                          metrics=last_metrics, test_metrics=test_metrics))
        except TrainingDiverged as err:
            status, message = "diverged", str(err)
        if interval:
            self._record("train", _mean_dicts(interval), ips)
        if not test_metrics and self.step > 0:
            test_metrics = self.evaluate_test()
            self._record("test", test_metrics, ips)
        if self.run is not None:
            self.run.save_checkpoint(self.model, self.optimizer, self.step, self.epoch)
            self.run.update_metrics(status=status, steps=self.step, epochs=self.epoch, images_per_second=ips,
                                    train=last_metrics, test=test_metrics, test_elbo=test_metrics.get("elbo"),
                                    message=message)
        self._emit(TrainEvent("end", self.step, self.epoch, self.total_steps, ips, 0.0, last_metrics, test_metrics,
                              status=status))
        result = TrainResult(status, self.run, self.step, self.epoch, ips, last_metrics, test_metrics, message)
        if status == "diverged":
            raise TrainingDiverged(message)
        return result

    def _record(self, kind: str, metrics: dict, ips: float) -> None:
        if self.run is not None:
            self.run.append_history({"kind": kind, "step": self.step, "epoch": self.epoch,
                                     "images_per_second": ips, "time": time.time(), **metrics})

    def _divergence_message(self, out: dict) -> str:
        c = self.config
        return (f"training diverged at step {self.step + 1} (epoch {self.epoch + 1}): the loss or its gradients "
                f"became NaN/Inf (loss={out.get('loss')}). The step was not applied; the model keeps the weights "
                f"of step {self.step}. Likely causes: a learning rate too high (lr={c.lr}), a sigma too small for "
                f"the gaussian likelihood (sigma={c.sigma}), or data with extreme values.")


def _apply(optimizer, grads, variables):
    optimizer.apply_gradients(zip(grads, variables))
    return tf.constant(True)


def _fused_adam(optimizer):
    """Keras Adam's update as one `ResourceApplyAdam` kernel per variable, on Keras' own slots (so checkpoints and
    resume are unchanged); None when the optimizer is anything but plain Adam (then `apply_gradients` is used).

        t = iterations + 1,  lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t)
        m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,  w <- w - lr_t m / (sqrt(v) + epsilon)

    (Keras' formula; Keras runs it as ~10 separate graph ops per variable, which cost more than the maths.)
    """
    plain = (type(optimizer) is keras.optimizers.Adam and not optimizer.amsgrad and optimizer.weight_decay is None
             and optimizer.clipnorm is None and optimizer.clipvalue is None and optimizer.global_clipnorm is None
             and not optimizer.use_ema and optimizer.gradient_accumulation_steps is None
             and optimizer.loss_scale_factor is None)
    if not plain:
        return None

    def apply(grads, variables):
        if any(getattr(v, "constraint", None) is not None for v in variables):
            return _apply(optimizer, grads, variables)
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


def _bfloat16_matmuls(model) -> None:
    """Run the Dense layers of the encoder and decoder in bfloat16 (Keras' "mixed_bfloat16": float32 weights cast to
    bfloat16 for the matmul), except a Dense layer that is a network's output (the posterior's parameters stay
    float32). Layers after them (reshape) cast back to float32, so likelihood, KL and loss are float32."""
    for net in (model.encoder, model.decoder):
        for layer in net.layers[:-1]:
            if isinstance(layer, keras.layers.Dense):
                layer.dtype_policy = "mixed_bfloat16"


def _mean_dicts(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
