"""The training loop: `Trainer` = the data, the model, its optimizer, a compiled step, and stop. It touches no disk
(a `RunRecorder` callback writes the run directory) and knows no likelihood, prior or posterior: it asks
`vae_tfp.objectives.training_loss` for a loss and reports through callbacks (`TrainEvent`).

    trainer = Trainer(RunConfig(dataset="digits", likelihood="bernoulli", epochs=5), callbacks=[print])
    result = trainer.train()              # TrainResult(status="completed", ...)
    trainer.train(max_steps=100)          # at most 100 more steps (status "stopped" while epochs remain)

- one compiled step (see `single_step` / `replicated_step`), Adam with an optional cosine schedule;
- one replica runs its steps in blocks, several per compiled call (`steps_per_call`; by default as many as take
  about `BLOCK_SECONDS`, at most `MAX_STEPS_PER_CALL`): a block ends at the end of an epoch, at `max_steps`, at every
  checkpoint step (config `checkpoint_every`) and where a callback asks for the weights (its optional
  `next_weights_step(step)`). Events stay per step: the "step" events of a block arrive together after it, each
  with its own metrics; during them the model holds the weights of the block's last step;
- every random draw from the trainer's own seed stream (see `seeds`): same config, same weights, whatever else runs
  in the process, and whatever the blocks;
- `stop()` is honoured within one block (one step with `steps_per_call=1`) and keeps the model trained so far; it
  holds until `reset_stop()`;
- NaN/Inf guard: a step whose loss or gradients are not finite is not applied (nor is any step after it in its
  block); `train()` returns status "diverged" with a message naming the step and likely causes, and the model keeps
  the last good weights;
- `Trainer.resume(run_dir)` restores a run's checkpoint (weights, optimizer state, step) to continue it;
- a `tf.distribute` strategy (MirroredStrategy, MultiWorkerMirroredStrategy) replicates the step (see
  `replicated_step`): the batch size is the global batch, the loss its mean. With several workers (`vae_tfp.distribute`)
  `cluster` says which one this is (`is_chief`: the one whose RunRecorder writes); the first `train()` checks that
  every worker holds the same config, data, step and weights (`WorkersDisagree` if not); a stop asked on any worker
  stops all after the same step; a worker that stops answering ends `train()` with `WorkerLost` after the "end"
  event (status "stopped", the message naming the worker), so the chief's recorder keeps the last completed step.
"""

import threading
import time

from vae_tfp import distribute
from vae_tfp._tf import keras, tf
from vae_tfp.config import PRECISIONS, RunConfig
from vae_tfp.data import Dataset, load, prepare
from vae_tfp.likelihoods import check_data, get_spec
from vae_tfp.model import build_vae
from vae_tfp.objectives import elbo_terms, shard_loss, training_loss, warmup_beta
from vae_tfp.runs import open_run
from vae_tfp.training.events import TrainEvent, TrainResult
from vae_tfp.training.feed import Feed
from vae_tfp.training.kernels import bfloat16_matmuls
from vae_tfp.training.meter import ThroughputMeter
from vae_tfp.training.replicated_step import ReplicatedEval, ReplicatedInputs, build_replicated_step
from vae_tfp.training.seeds import eval_seed
from vae_tfp.training.single_step import build_single_step

EVAL_BATCH = 1000
BLOCK_SECONDS = 0.05  # a block of steps takes about this long (so stop() is honoured within about this)
MAX_STEPS_PER_CALL = 32


class Trainer:
    """Trains the VAE a `RunConfig` describes. Attributes worth reading: `config`, `dataset`, `data` (the prepared
    data), `feed`, `model`, `optimizer`, `step` (steps applied), `epoch` (epochs completed), `steps_per_epoch`,
    `total_steps`, `callbacks` (a list; append to it), `compiled_step` and `metric_keys` (one update per call, for
    benchmarks: `compiled_step(*inputs, beta)` with inputs from `epoch_inputs`). `steps_per_call`: steps per
    compiled call on one replica, None (default) to choose it from the measured step time."""

    def __init__(self, config: RunConfig, *, dataset: Dataset | None = None, data_dir=None, strategy=None,
                 precision: str = "float32", callbacks=(), steps_per_call: int | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
        if steps_per_call is not None and (isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int)
                                           or steps_per_call < 1):
            raise ValueError(f"steps_per_call must be a positive integer or None, got {steps_per_call!r}")
        self.config = config
        self.steps_per_call = steps_per_call
        self._auto_steps = 1  # steps per call while steps_per_call is None: from the last block's time
        self.precision = precision
        self.callbacks = list(callbacks)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.cluster = distribute.worker_info(self.strategy)
        self.replicated = not distribute.is_default(self.strategy)
        self._stop = threading.Event()
        self._agreed = self.cluster.workers == 1  # the workers' agreement is checked by the first train()

        self.dataset = dataset if dataset is not None else load(config.dataset, data_dir=data_dir, seed=config.seed)
        self.data = prepare(self.dataset, get_spec(config.likelihood).representation,
                            binarization=config.binarization, seed=config.seed)
        self.event_shape = tuple(self.data.x_train.shape[1:])
        self.levels = self.data.levels
        check_data(config.likelihood, self.data.x_test, levels=self.levels)
        if not self.data.dynamic_binarization:
            check_data(config.likelihood, self.data.x_train, levels=self.levels)
        self.feed = Feed(self.data, batch_size=config.batch_size, seed=config.seed)
        self.steps_per_epoch = self.feed.steps_per_epoch
        self.total_steps = self.steps_per_epoch * config.epochs

        with self.strategy.scope():
            self.model = build_vae(config, self.event_shape, self.levels)
            self.optimizer = keras.optimizers.Adam(self._learning_rate())
            self.optimizer.build(self.model.trainable_variables)
        if precision == "bfloat16":
            bfloat16_matmuls(self.model)
        self.step = 0
        self.epoch = 0
        self.meter = ThroughputMeter()
        self.blocks = not self.replicated  # one replica, no strategy: several steps per compiled call
        if self.blocks:
            self.compiled_step, self.metric_keys = build_single_step(self.strategy, self.model, self.optimizer,
                                                                     self._loss, self.feed)
        else:
            self.compiled_step, self.metric_keys = build_replicated_step(self.strategy, self.model, self.optimizer,
                                                                         self._shard_loss)
        self._eval_step = tf.function(self._eval_sums)
        self._replicated_eval = None
        self._replicated_inputs = ReplicatedInputs(self.strategy, self.feed, config.epochs) if self.replicated else None

    @classmethod
    def resume(cls, run_dir, **kwargs) -> "Trainer":
        """A trainer for the run in `run_dir` (its config), restored to its last checkpoint: weights, optimizer state
        and step. Reads only; attach `RunRecorder(run_dir)` to keep recording into the same directory."""
        run = open_run(run_dir)
        trainer = cls(run.config(), **kwargs)
        state = run.restore_checkpoint(trainer.model, trainer.optimizer)
        trainer.step = int(state["step"])
        trainer.epoch = trainer.step // trainer.steps_per_epoch
        return trainer

    def data_info(self) -> dict:
        """What the model is trained on (the run directory's data.json)."""
        return {"dataset": self.dataset.name, "kind": self.dataset.kind, "event_shape": list(self.event_shape),
                "levels": self.levels, "representation": self.data.representation, "note": self.data.note,
                "n_train": int(len(self.data.x_train)), "n_test": int(len(self.data.x_test)),
                "label_names": list(self.dataset.label_names) if self.dataset.label_names else None}

    def _learning_rate(self):
        if self.config.lr_schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(self.config.lr, decay_steps=max(1, self.total_steps))
        return self.config.lr

    def _loss(self, x, beta, seed):
        c = self.config
        return training_loss(self.model, x, beta=beta, kl=c.kl, free_bits=c.free_bits, iwae_k=c.iwae_k, seed=seed)

    def _shard_loss(self, x, beta, seed, n_global, global_sum, weights):
        c = self.config
        return shard_loss(self.model, x, n_global=n_global, beta=beta, kl=c.kl, free_bits=c.free_bits,
                          iwae_k=c.iwae_k, seed=seed, global_sum=global_sum, weights=weights)

    def epoch_inputs(self, epoch: int, skip: int = 0):
        """The arguments of the compiled step for each of the epoch's steps after the first `skip`: (indices, seed)
        without a strategy, (batch distributed, stop flag) with one."""
        if not self.replicated:
            return self.feed.steps(epoch, skip)
        return self._replicated_inputs.epoch(epoch, skip, self._stop.is_set)

    # --- stop ----------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask training to stop; honoured within one step, keeping the model trained so far. It holds (a later
        `train()` returns at once) until `reset_stop()`."""
        self._stop.set()

    def reset_stop(self) -> None:
        """Forget an earlier `stop()`, so that `train()` trains again."""
        self._stop.clear()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- test set ------------------------------------------------------------------------------------------------
    def _eval_sums(self, x, seed):
        terms = elbo_terms(self.model, x, seed=seed)
        return {"elbo": tf.reduce_sum(terms.elbo), "reconstruction": tf.reduce_sum(terms.reconstruction),
                "kl": tf.reduce_sum(terms.kl)}

    def evaluate_test(self) -> dict:
        """Test-set elbo, reconstruction and kl (means over the test images, one z each, drawn from the trainer's
        seed stream at this step; split over the replicas under a strategy)."""
        if self.replicated:
            if self._replicated_eval is None:
                self._replicated_eval = ReplicatedEval(self.strategy, self._eval_sums, self.data.x_test, EVAL_BATCH)
            return self._replicated_eval(self.config.seed, self.step)
        x = self.data.x_test
        sums = {}
        for chunk, i in enumerate(range(0, len(x), EVAL_BATCH)):
            out = self._eval_step(tf.constant(x[i:i + EVAL_BATCH]), eval_seed(self.config.seed, self.step, chunk))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        return {k: v / len(x) for k, v in sums.items()}

    # --- the loop ------------------------------------------------------------------------------------------------
    def _emit(self, kind: str, *, metrics=None, test_metrics=None, status="running", message="") -> None:
        event = TrainEvent(kind, self.step, self.epoch, self.total_steps, self.meter.images_per_second,
                           self.meter.eta_seconds, metrics if metrics is not None else {}, test_metrics, status,
                           message, self)
        for callback in self.callbacks:
            callback(event)

    def train(self, max_steps: int | None = None) -> TrainResult:
        """Train until every configured epoch is done, `stop()` is called, `max_steps` more steps are applied, or a
        step diverges; see `TrainResult` for what the status means. Never raises for divergence."""
        if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
            raise ValueError(f"max_steps must be a non-negative integer or None, got {max_steps!r}")
        if not self._agreed:  # several workers: the same config, data, step and weights on each, checked once
            distribute.check_agreement(self)
            self._agreed = True
        c = self.config
        spe = self.steps_per_epoch
        target = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
        first_step = self.step
        status, message, last, test_metrics, lost = "completed", "", {}, {}, None
        self._emit("start")
        self.meter.restart()
        self._stop_all = False  # a stop asked on any worker, known to all after the same step
        try:
            while self.step < target and status == "completed":
                epoch = self.step // spe
                status, message, last = self._epoch_steps(epoch, min((epoch + 1) * spe, target), last)
                if status == "completed" and self.step == (epoch + 1) * spe:
                    self.epoch = epoch + 1
                    self._emit("epoch", metrics=last)
                    if self.epoch % c.eval_every == 0 or self.epoch == c.epochs:
                        test_metrics = self.evaluate_test()
                        self._emit("eval", metrics=last, test_metrics=test_metrics)
                        self.meter.restart()
            if status == "completed" and self.step < self.total_steps:
                status = "stopped"  # max_steps reached
            if not test_metrics and self.step > first_step:
                test_metrics = self.evaluate_test()
                self._emit("eval", metrics=last, test_metrics=test_metrics)
        except Exception as err:  # a worker stopped answering (several workers only); anything else goes on up
            lost = distribute.failure_message(err, self)
            if lost is None:
                raise
            status, message = "stopped", lost
        self._emit("end", metrics=last, test_metrics=test_metrics, status=status, message=message)
        if lost:
            raise distribute.WorkerLost(lost)
        return TrainResult(status, self.step, self.epoch, self.meter.images_per_second, last, test_metrics, message)

    def _epoch_steps(self, epoch: int, end: int, last: dict) -> tuple[str, str, dict]:
        """Train the steps of `epoch` up to step `end` in blocks, one "step" event per applied step; (status, message,
        last step's metrics): "completed" when `end` is reached, "stopped" or "diverged" before."""
        c, spe = self.config, self.steps_per_epoch
        warmup_steps = c.warmup_epochs * spe
        inputs = None if self.blocks else iter(self.epoch_inputs(epoch, skip=self.step - epoch * spe))
        while self.step < end:
            if self._stop_all or (self._stop.is_set() and self.cluster.workers == 1):
                return "stopped", "", last
            i = self.step - epoch * spe  # the batch's index in the epoch
            k = self._block_size(i, end)
            betas = [warmup_beta(s, c.beta, warmup_steps) for s in range(self.step, self.step + k)]
            t0 = time.perf_counter()
            if self.blocks:
                batch = self.feed.images_in_batch(i)
                fresh = self.compiled_step.fresh(batch)
                rows = self.compiled_step.block(*self.feed.block(epoch, i, k), betas)  # one host sync
            else:
                traces = self.compiled_step.experimental_get_tracing_count()
                rows = self.compiled_step(*next(inputs), betas[0]).numpy()[None]  # one host sync
                fresh = self.compiled_step.experimental_get_tracing_count() != traces
            busy = (time.perf_counter() - t0) / len(rows)
            if fresh:  # this block compiled the step function: not a measure of speed
                self.meter.restart()
            elif self.steps_per_call is None:
                self._auto_steps = max(1, min(MAX_STEPS_PER_CALL, round(BLOCK_SECONDS / max(busy, 1e-6))))
            for row, beta in zip(rows.tolist(), betas):
                out = dict(zip(self.metric_keys, row))
                self._stop_all = out.pop("stop", 0.0) > 0  # several workers: any one's stop, agreed in the step
                if out.pop("finite") < 1:
                    return "diverged", self._divergence_message(out), last
                images = self.feed.images_in_batch(self.step - epoch * spe)
                self.step += 1
                if not fresh:
                    self.meter.tick(images, busy, self.total_steps - self.step)
                last = dict(out, beta=float(beta))
                self._emit("step", metrics=last)
        return "completed", "", last

    def _block_size(self, i: int, end: int) -> int:
        """How many steps the next block runs, from batch i of the epoch on: at most steps_per_call (or the measured
        choice), ending by `end`, at the next checkpoint step, at the next step a callback wants the weights of, and
        before the epoch's last batch when that one is smaller (a block holds equal batches)."""
        if not self.blocks:
            return 1
        k = min(self.steps_per_call or self._auto_steps, end - self.step)
        every = self.config.checkpoint_every
        k = min(k, every - self.step % every)
        for callback in self.callbacks:
            wanted = getattr(callback, "next_weights_step", None)
            at = wanted(self.step) if wanted is not None else None
            if at is not None and at > self.step:
                k = min(k, at - self.step)
        size = self.feed.images_in_batch(i)
        while k > 1 and self.feed.images_in_batch(i + k - 1) != size:
            k -= 1
        return max(1, k)

    def _divergence_message(self, out: dict) -> str:
        c = self.config
        return (f"training diverged at step {self.step + 1} (epoch {self.epoch + 1}): the loss or its gradients "
                f"became NaN/Inf (loss={out.get('loss')}). The step was not applied; the model keeps the weights "
                f"of step {self.step}. Likely causes: a learning rate too high (lr={c.lr}), a sigma too small for "
                f"the gaussian likelihood (sigma={c.sigma}), or data with extreme values.")
