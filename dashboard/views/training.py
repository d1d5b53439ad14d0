"""View 1, Training: live progress (step, epoch, images/s, ETA) and the ELBO curve, train and test, with the
reconstruction term E_q[log p(x|z)] and the KL term as their own lines.

While this session's job runs, two fragments poll it (`st.fragment(run_every=...)`): the progress line above the
tabs and the curve here, which reads only the history records appended since its last poll. Nothing waits on
training; when it ends the whole page reruns once to show the model.
"""

import math

import streamlit as st

from dashboard import figures, state

POLL_SECONDS = 1.0


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def progress() -> None:
    """Above the tabs: this session's training progress while it runs (or how it ended)."""
    job = st.session_state.get("job")
    if job is None:
        return
    if job.running:
        _live_progress(job)
        return
    snap = job.snapshot()
    if snap.state == "failed":
        st.error(f"Training failed: {snap.message}")
        if snap.details:
            with st.expander("Details (for a bug report)"):
                st.code(snap.details, language="text")
    elif snap.state == "diverged":
        st.error(snap.message)


@st.fragment(run_every=POLL_SECONDS)
def _live_progress(job) -> None:
    snap = job.snapshot()
    if snap.finished:  # once: rerun the whole page so the sidebar and the views pick up the model
        st.rerun()
    if snap.state == "starting":
        st.progress(0.0, text="Starting: loading TensorFlow and the data, building the model…")
        return
    text = (f"**{snap.state}** · step {snap.step} / {snap.total_steps} · epoch {snap.epoch} / {snap.epochs} · "
            f"{snap.images_per_second:,.0f} images/s · ETA {_eta(snap.eta_seconds)}")
    if snap.metrics.get("elbo") is not None:
        text += f" · train ELBO {snap.metrics['elbo']:.2f} nats"
    st.progress(snap.fraction, text=text)


def render() -> None:
    job = st.session_state.get("job")
    if job is not None and job.running and st.session_state.get("follow_job"):
        _live_curve(job)
        return
    act = state.ready()
    if act is None:
        return
    history_curves = state.explain("curves").history_curves
    records = act.run.history() if act.run is not None else []
    _curve(history_curves(records), act.run.name if act.run is not None else "")
    metrics = act.run.metrics() if act.run is not None else {}
    test = metrics.get("test") or {}
    if test:
        cols = st.columns(5)
        cols[0].metric("status", metrics.get("status", "?"))
        cols[1].metric("test ELBO (nats)", f"{test.get('elbo', float('nan')):.2f}")
        cols[2].metric("test E_q[log p(x|z)]", f"{test.get('reconstruction', float('nan')):.2f}")
        cols[3].metric("test KL(q||p)", f"{test.get('kl', float('nan')):.2f}")
        cols[4].metric("images / s", f"{metrics.get('images_per_second', 0):,.0f}")
    if records:
        st.download_button("Download the history (JSON lines)", "".join(_jsonl(r) for r in records),
                           file_name=f"{act.run.name}-history.jsonl", mime="application/json", key="dl_history")
    with st.expander("This run's config"):
        st.code(act.run.config().to_json() if act.run is not None else "", language="json")


@st.fragment(run_every=POLL_SECONDS * 1.5)
def _live_curve(job) -> None:
    snap = job.snapshot()
    if snap.run_path is None:
        st.info("The curve appears after the first logged steps.")
        return
    records = _live_records(snap.run_path)
    if not records:
        st.info("The curve appears after the first logged steps.")
        return
    _curve(state.explain("curves").history_curves(records), f"live, logged up to step {records[-1].get('step', 0)}")


def _live_records(run_path: str) -> list:
    """The history of the run being trained, read incrementally: each poll reads only the records appended since
    the last one (`Run.history_since`), kept in this session's state."""
    from vae_tfp.runs import open_run

    cache = st.session_state.get("live_history")
    if cache is None or cache["path"] != run_path:
        cache = st.session_state["live_history"] = {"path": run_path, "offset": 0, "records": []}
    new, offset = open_run(run_path).history_since(cache["offset"])
    if offset < cache["offset"]:  # the file was rewritten (a resume dropped lost work): start over
        cache["records"] = []
    cache["records"].extend(new)
    cache["offset"] = offset
    return cache["records"]


def _curve(curves, subtitle: str) -> None:
    fig = figures.training_curves(curves, title=f"Training curves ({subtitle})" if subtitle else None)
    figures.chart(fig, config=figures.plot_config("training-curves"), key="training_curves")
    st.caption("Per-example values in nats. The ELBO is the reconstruction term E_q[log p(x|z)] minus the KL term; "
               "train values are averages over the logged steps (with the β and free bits used in training only "
               "for the loss, not for these terms), test values are evaluated at epoch ends.")


def _jsonl(record) -> str:
    import json

    return json.dumps(record) + "\n"
