"""The one place the peer benchmark touches the Trainer's API: `trainer_session`.

Today's API: `Trainer(config, dataset=..., save=False)`, step events through `trainer.callbacks`, `trainer.stop()`
honoured within one step, `trainer._stop.clear()` before training on, `trainer.train()` -> TrainResult. When the
trainer becomes the `vae_tfp/training/` package (`Trainer(config, dataset=...)` touching no disk,
`trainer.train(max_steps=N)`, `trainer.reset_stop()`), only this function changes:

    trainer = Trainer(config, dataset=dataset)
    ...
    def advance(steps):
        times.clear()
        trainer.reset_stop()
        return times, trainer.train(max_steps=trainer.step + steps)   # (or steps, if max_steps counts from here)
"""

import time


def trainer_session(config, dataset):
    """(trainer, advance) for `config` on `dataset`, writing nothing to disk.

    advance(steps) trains `steps` more steps (fewer if the config's epochs end first) and returns (times, result):
    time.perf_counter() at the end of each step (after its host sync) and the TrainResult (its test_metrics hold the
    test-set "elbo" the trainer computes on its way out).
    """
    from vae_tfp.training import Trainer

    trainer = Trainer(config, dataset=dataset, save=False)
    times: list[float] = []
    target = [0]

    def on_event(event) -> None:
        if event.kind == "step":
            times.append(time.perf_counter())
            if event.step >= target[0]:
                trainer.stop()

    trainer.callbacks.append(on_event)

    def advance(steps: int):
        times.clear()
        target[0] = trainer.step + int(steps)
        trainer._stop.clear()
        result = trainer.train()
        return list(times), result

    return trainer, advance
