"""The one place the peer benchmark touches the Trainer's API: `trainer_session`.

`Trainer(config, dataset=...)` writes nothing to disk; `trainer.train(max_steps=N)` trains at most N more steps and
returns a TrainResult whose test_metrics hold the test-set "elbo" computed on its way out; step events come through
`trainer.callbacks`.
"""

import time


def trainer_session(config, dataset):
    """(trainer, advance) for `config` on `dataset`, writing nothing to disk.

    advance(steps) trains `steps` more steps (fewer if the config's epochs end first) and returns (times, result):
    time.perf_counter() at the end of each step (after its host sync) and the TrainResult (its test_metrics hold the
    test-set "elbo" the trainer computes on its way out).
    """
    from vae_tfp.training import Trainer

    trainer = Trainer(config, dataset=dataset)
    times: list[float] = []

    def on_event(event) -> None:
        if event.kind == "step":
            times.append(time.perf_counter())

    trainer.callbacks.append(on_event)

    def advance(steps: int):
        times.clear()
        result = trainer.train(max_steps=int(steps))
        return list(times), result

    return trainer, advance
