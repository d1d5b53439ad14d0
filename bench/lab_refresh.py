"""One refresh of the density lab's live picture, timed part by part (a benchmark, not a test).

What the lab's live fragment does every few seconds while a two_moons run trains (`dashboard/views/lab.py`):

    load   the run's newest live snapshot into the lab's model (Keras HDF5 weights)
    plane  log p(x) on the 200 x 200 data grid over a 100 x 100 latent grid (quadrature), and at the 1000 test points
    figure the heatmap + contour figure of that density, serialised as Streamlit sends it (Plotly JSON)

The run is a real one: `Trainer` + `RunRecorder` on two_moons (Gaussian likelihood, latent 2) for `--steps` steps, so
the decoder is trained and the snapshot is the recorder's own file. Each part is repeated `--repeats` times; the
medians and the spread are printed (and written with `--out`), with the load average before and after, since on a
shared machine the numbers are "contended" and not a final figure.

    .venv/bin/python -m bench.lab_refresh [--steps 300] [--repeats 7] [--out bench/results/lab_refresh.json]
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

DATA_GRID, LATENT_GRID = 200, 100


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    seconds, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
    return seconds, out


def _summary(seconds: list[float]) -> dict:
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds), "n": len(seconds)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps before the snapshot is taken")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    a = parser.parse_args(argv)
    load_before = os.getloadavg()

    from dashboard import figures
    from vae_tfp.config import RunConfig
    from vae_tfp.explain import lab
    from vae_tfp.runs import open_run
    from vae_tfp.snapshots import build_model, live_snapshot, load_live
    from vae_tfp.training import RunRecorder, Trainer

    with tempfile.TemporaryDirectory() as root:
        config = RunConfig(dataset="two_moons", likelihood="gaussian", latent_dim=2, epochs=1000, batch_size=500)
        recorder = RunRecorder(runs_root=root)
        trainer = Trainer(config, callbacks=[recorder])
        trainer.train(max_steps=a.steps)
        run = open_run(recorder.run.path)
        snap = live_snapshot(run.path)
        model = build_model(run)
        data = trainer.data  # the prepared split the run trained on (x_train, x_test [n, 2])
        axes = lab.plane_axes(lab.data_extent(data.x_train), DATA_GRID)

        load_s, _ = _timed(lambda: load_live(run.path, model), a.repeats)
        lab.model_plane(model, axes, data.x_test, latent_grid=LATENT_GRID)  # the first call compiles; not timed
        plane_s, plane = _timed(lambda: lab.model_plane(model, axes, data.x_test, latent_grid=LATENT_GRID), a.repeats)

        def figure():
            fig = figures.lab_density(axes, plane.grid.log_density, points=data.x_train, zmax=None,
                                      title=f"The model's p(x) at step {snap.step}")
            return len(figures._styled(fig).to_json())

        figure_s, json_bytes = _timed(figure, a.repeats)
        auto = lab.model_plane(model, axes, data.x_test)  # what the lab itself picks (refined if the decoder is sharp)

    total = [sum(parts) for parts in zip(load_s, plane_s, figure_s)]
    result = {
        "what": "one live refresh of the density lab: snapshot load + p(x) on the plane + figure JSON",
        "data_grid": DATA_GRID, "latent_grid": LATENT_GRID, "test_points": int(len(plane.test_log_px)),
        "train_steps": a.steps, "snapshot_step": snap.step, "latent_step_sigma": plane.grid.latent_step,
        "lab_latent_grid": auto.grid.latent_grid, "lab_plane_seconds": auto.grid.seconds,
        "load": _summary(load_s), "plane": _summary(plane_s), "figure": _summary(figure_s), "total": _summary(total),
        "figure_json_bytes": json_bytes, "cpus": os.cpu_count(),
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "contended": max(load_before[0], os.getloadavg()[0]) > 0.5 * (os.cpu_count() or 1),
    }
    print(json.dumps(result, indent=2))
    if a.out:
        a.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
