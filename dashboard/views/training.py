"""View 1, Training: live progress (queue position, then step, epoch, examples/s, ETA) and the ELBO curve, train and
test, with the reconstruction term E_q[log p(x|z)] and the KL term as their own lines; below them, posterior collapse
as it happens: KL per latent dimension, active units and the mutual information I_q(x; z), per epoch.

The job trains in a worker process; everything here comes from its run directory. While this session's job is
queued, one fragment polls its queue position every few seconds and reruns the page when it starts (a busy server
has many queued pages: each costs the page process little). While it runs, two fragments poll
(`st.fragment(run_every=...)`): the progress line above the tabs (the job's status, `job.json`) and the curve here,
which reads only the history records appended since its last poll. The
progress line shows the furthest step either has seen (`reached_step`), so it is never behind the curve. Nothing
waits on training; when the job ends the whole page reruns once to show the model.
"""

import math

import streamlit as st

from dashboard import figures, state

POLL_SECONDS = 1.0
QUEUED_POLL_SECONDS = 4.0  # a queued job changes only when it starts: its page polls less (many wait on a busy server)


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def reached_step(status, records) -> int:
    """The furthest step the run has reached: its status, or the last history record, whichever is further on (the
    status file and the history are written at different moments)."""
    logged = max((r.get("step", 0) for r in records), default=0)
    return max(status.step, logged)


def progress_text(status, records=()) -> str:
    """The live progress line of a job's status (`vae_tfp.jobs.JobStatus`) and the history records read so far."""
    if status.state == "queued":
        return (f"**queued** · position {status.queue_position} in the queue · it starts when one of the trainings "
                "ahead of it ends")
    step = reached_step(status, records)
    if status.state == "starting" and step == 0:
        return "**starting** · loading TensorFlow and the data, building the model…"
    if status.state == "starting":
        return f"**starting** · resuming from step {step} of {status.total_steps}…"
    text = (f"**{status.state}** · step {step} / {status.total_steps} · epoch {status.epoch} / {status.epochs} · "
            f"{status.images_per_second:,.0f} examples/s · ETA {_eta(status.eta_seconds)}")
    if status.metrics.get("elbo") is not None:
        text += f" · train ELBO {status.metrics['elbo']:.2f} nats"
    return text


def progress() -> None:
    """Above the tabs: this session's training progress while it is queued or runs (or how it ended)."""
    status = state.job_status()
    if status is None:
        return
    if status.state == "queued":
        _queued_progress(status.job_id)
        return
    if status.active:
        _live_progress(status.job_id)
        return
    if status.state == "failed":
        st.error(f"Training failed: {status.message}")
        if status.details:
            with st.expander("Details (for a bug report)"):
                st.code(status.details, language="text")
    elif status.state == "diverged":
        st.error(status.message)


@st.fragment(run_every=QUEUED_POLL_SECONDS)
def _queued_progress(job_id: str) -> None:
    """While the job waits in the queue: its position, polled slowly; the whole page reruns once it has started (or
    was dropped), so the live progress and curve take over."""
    status = state.backend().status(job_id)
    if status.state != "queued":
        st.rerun()
    st.progress(0.0, text=progress_text(status))


@st.fragment(run_every=POLL_SECONDS)
def _live_progress(job_id: str) -> None:
    status = state.backend().status(job_id)
    if status.finished:  # once: rerun the whole page so the sidebar and the views pick up the model
        st.rerun()
    records = _live_records(status.run_dir) if status.run_dir and status.state != "queued" else []
    st.progress(status.fraction if status.state != "queued" else 0.0, text=progress_text(status, records))


def render() -> None:
    status = state.job_status()
    if status is not None and status.state == "queued" and st.session_state.get("follow_job"):
        st.info("Waiting in the queue: the curve appears once the training has started.")
        return
    if status is not None and status.active and st.session_state.get("follow_job"):
        _live_curve(status.job_id)
        return
    act = state.ready()
    if act is None:
        return
    curves = state.explain("curves")
    # a run's history is read and drawn once per model and history file in this session (a view switch reuses both)
    written = act.run.history_stamp() if act.run is not None else (0, 0)
    records = state.memo(act.token, "history", (written,), act.run.history) if act.run is not None else []
    if act.run is not None:
        for warning in state.memo(act.token, "run_warnings", (written,), lambda: state.explain(
                "advice").run_warnings(act.model, act.run.config(), records, act.info.get("event_shape", [1]))):
            st.warning(warning)
    name = act.run.name if act.run is not None else ""
    _curve(state.figure(act.token, "training_curves", (written, name),
                        lambda: _curve_figure(curves.history_curves(records), name)))
    diagnostics = state.memo(act.token, "diagnostics", (written,), lambda: curves.diagnostics(records))
    _diagnostics(diagnostics, figure=lambda: state.figure(act.token, "diagnostics", (written,),
                                                         lambda: figures.diagnostics_figure(diagnostics)))
    metrics = act.run.metrics() if act.run is not None else {}
    test = metrics.get("test") or {}
    if test:
        cols = st.columns(4)
        cols[0].metric("test ELBO (nats)", f"{test.get('elbo', float('nan')):.2f}")
        cols[1].metric("test E_q[log p(x|z)]", f"{test.get('reconstruction', float('nan')):.2f}")
        cols[2].metric("test KL(q||p)", f"{test.get('kl', float('nan')):.2f}")
        cols[3].metric("examples / s", f"{metrics.get('images_per_second', 0):,.0f}")
        st.caption(f"Status: **{metrics.get('status', '?')}** after {metrics.get('steps', '?')} steps.")
    if records:
        st.download_button("Download the history (JSON lines)", "".join(_jsonl(r) for r in records),
                           file_name=f"{act.run.name}-history.jsonl", mime="application/json", key="dl_history")
    with st.expander("This run's config"):
        st.code(act.run.config().to_json() if act.run is not None else "", language="json")


@st.fragment(run_every=POLL_SECONDS * 1.5)
def _live_curve(job_id: str) -> None:
    status = state.backend().status(job_id)
    records = _live_records(status.run_dir) if status.run_dir else []
    if not records:
        st.info("The curve appears after the first logged steps.")
        return
    curves = state.explain("curves")
    _curve(_curve_figure(curves.history_curves(records), f"live, logged up to step {records[-1].get('step', 0)}"))
    _diagnostics(curves.diagnostics(records), live=True)


def _live_records(run_path: str) -> list:
    """The history of the run being trained, read incrementally: each poll reads only the records appended since
    the last one (`Run.history_since`), kept in this session's memory."""
    from vae_tfp.runs import open_run

    memory = state.session_memory()
    cache = memory.live_history
    if cache is None or cache["path"] != run_path:
        cache = memory.live_history = {"path": run_path, "offset": 0, "records": []}
    new, offset = open_run(run_path).history_since(cache["offset"])
    if offset < cache["offset"]:  # the file was rewritten (a resume dropped lost work): start over
        cache["records"] = []
    cache["records"].extend(new)
    cache["offset"] = offset
    return cache["records"]


def _curve_figure(curves, subtitle: str):
    return figures.training_curves(curves, title=f"Training curves ({subtitle})" if subtitle else None)


def _curve(fig) -> None:
    figures.chart(fig, config=figures.plot_config("training-curves"), key="training_curves")
    st.caption("Per-example values in nats. The ELBO is the reconstruction term E_q[log p(x|z)] minus the KL term; "
               "train values are averages over the logged steps (with the β and free bits used in training only "
               "for the loss, not for these terms), test values are evaluated at epoch ends.")


def _diagnostics(d, live: bool = False, figure=None) -> None:
    """Posterior collapse over training, from the history's diagnostics records; `figure()` gives its (memoized)
    figure."""
    st.markdown("**Is the code used? Posterior collapse, epoch by epoch**")
    if not len(d):
        st.caption("The diagnostics appear after the first epoch." if live else
                   "This run has no diagnostics records (written by runs trained with this version).")
        return
    fig = figure() if figure is not None else figures.diagnostics_figure(d)
    figures.chart(fig, config=figures.plot_config("diagnostics"), key="diagnostics" + ("_live" if live else ""))
    last = d.last()
    st.caption(f"On the first {d.n} test examples, at epoch {last['epoch']}: {last['active_units']} of "
               f"{len(last['kl_per_dim'])} latent dimensions active (Cov_x(E_q[z_j]) > 0.01), "
               f"I_q(x; z) = {_mi_words(last['mutual_information'])} (at most log {d.n} = {math.log(d.n):.2f}). "
               "A dimension whose KL stays near 0 carries nothing about x: q(z_j|x) = p(z_j) for every x, and the "
               "decoder learns to ignore it. The mutual information I_q(x; z) = E_x E_q[log q(z|x) − log q(z)] "
               "(q(z) the average posterior over these examples, Monte Carlo as in He et al. 2019) says how much "
               "the code tells about x in all; it falls to 0 when the posterior collapses. Raise β or remove free "
               "bits in the sidebar and watch it happen.")


def _mi_words(mi: float) -> str:
    """I_q(x; z) >= 0, but its Monte Carlo estimate can dip just below 0 when the posterior has collapsed."""
    if mi < 0:
        return f"{mi:.2f} nats, i.e. 0 (a Monte Carlo estimate scatters around the true value 0)"
    return f"{mi:.2f} nats"


def _jsonl(record) -> str:
    import json

    return json.dumps(record) + "\n"
