"""Training, one job per module:

    loop.py             Trainer: data, model, optimizer, compiled step, stop, resume; touches no disk
    recorder.py         RunRecorder: the callback that writes the run directory (history, checkpoints, metrics)
    events.py           TrainEvent (what callbacks receive), TrainResult (what train() returns)
    meter.py            ThroughputMeter: images/s and ETA
    feed.py             Feed: epoch order, batches, dynamic binarization
    seeds.py            the trainer's own seed stream (no process-global seeding)
    single_step.py      the compiled step on one replica (the fast path: in-step gather + binarization)
    replicated_step.py  the compiled step and input pipeline on several replicas (tf.distribute)
    kernels.py          fused Adam on Keras' slots (pinned to a Keras version), bf16 matmuls, NaN check

    from vae_tfp.training import RunRecorder, Trainer

    trainer = Trainer(RunConfig(dataset="digits", epochs=5), callbacks=[RunRecorder(runs_root="runs")])
    result = trainer.train()                 # result.status: "completed", "stopped" or "diverged"
    trainer.train(max_steps=50)              # at most 50 more steps
    trainer.stop(); trainer.reset_stop()     # from another thread or a callback
    Trainer.resume("runs/<name>")            # from the run's last checkpoint
"""

from vae_tfp.training.events import STATUSES, TrainEvent, TrainResult
from vae_tfp.training.loop import Trainer
from vae_tfp.training.meter import ThroughputMeter
from vae_tfp.training.recorder import RunRecorder, history_every

__all__ = ["STATUSES", "RunRecorder", "ThroughputMeter", "TrainEvent", "TrainResult", "Trainer", "history_every"]
