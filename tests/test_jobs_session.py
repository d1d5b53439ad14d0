"""A browser session's end, as the dashboard handles it: `dashboard.jobs.SessionReaper` ends the session's queued and
running jobs once its grace time (Streamlit's server.disconnectedSessionTTL) has passed, unless it came back; and the
page's session memory is released through Streamlit's own session-scoped resource release (the call Streamlit makes
when a session's websocket closes), which ends the session's real job in a worker process.
(A real server whose page is closed by Chromium: tests/test_browser.py.)"""

import threading
import time

from vae_tfp.jobs import JobStatus


class RecordingBackend:
    """The interface's list() and stop(), recording what was stopped."""

    def __init__(self, statuses):
        self.statuses = statuses
        self.stopped = []
        self.done = threading.Event()

    def list(self, owner=None):
        return [s for s in self.statuses if owner is None or s.owner == owner]

    def stop(self, job_id):
        self.stopped.append(job_id)
        if len(self.stopped) == 2:
            self.done.set()


def test_a_closed_sessions_queued_and_running_jobs_are_ended_and_no_one_elses():
    from dashboard.jobs import SessionReaper

    backend = RecordingBackend([JobStatus("q", "queued", owner="gone"), JobStatus("r", "running", owner="gone"),
                                JobStatus("f", "completed", owner="gone"), JobStatus("x", "running", owner="stays")])
    reaper = SessionReaper(backend)
    reaper.released("gone", grace=0.0)
    assert backend.done.wait(30), "the reaper did not end the closed session's jobs"
    time.sleep(0.2)  # nothing more comes
    assert sorted(backend.stopped) == ["q", "r"] and reaper.pending() == []


def test_a_session_back_within_its_grace_time_keeps_its_jobs():
    from dashboard.jobs import SessionReaper

    backend = RecordingBackend([JobStatus("r", "running", owner="blip")])
    reaper = SessionReaper(backend)
    reaper.released("blip", grace=3600.0)
    assert reaper.pending() == ["blip"]
    reaper.returned("blip")
    assert reaper.pending() == [] and backend.stopped == []
    reaper.returned("never-released")  # harmless
    SessionReaper().released("no-backend-yet", grace=0.0)  # no backend: no jobs to end, no error


def test_streamlits_session_release_frees_the_memory_and_stops_the_job(tmp_path, monkeypatch):
    """The dashboard under AppTest with real worker processes: a session shows a trained model, then trains a run
    far longer than the test; Streamlit releases the session's resources (what it does when the websocket closes,
    `AppSession.clear_session_caches`) with server.disconnectedSessionTTL = 0: the loaded model and the memo are
    dropped, and the job is stopped in its worker, keeping its model."""
    from pathlib import Path

    from streamlit import config as st_config
    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    from vae_tfp.jobs import read_status

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "0")
    ttl = st_config.get_option("server.disconnectedSessionTTL")
    st_config.set_option("server.disconnectedSessionTTL", 0)
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"),
                               default_timeout=120).run()
        at.sidebar.number_input(key="w_epochs").set_value(1)
        at.sidebar.button(key="train_button").click().run()
        deadline = time.time() + 300
        while "Last training: **completed**" not in "".join(c.value for c in at.sidebar.caption):
            assert time.time() < deadline, "the first training did not complete in time"
            time.sleep(0.5)
            at.run()
        at.session_state["view"] = "Reconstructions"
        at.run()
        memory = at.session_state["session_memory"]()
        assert memory.loaded is not None and memory.memo  # the view drew the model
        first = {p.name for p in tmp_path.iterdir()}

        at.sidebar.number_input(key="w_epochs").set_value(10_000)
        at.sidebar.button(key="train_button").click().run()
        deadline = time.time() + 300
        while True:
            runs = [p for p in tmp_path.iterdir() if p.name not in first]
            status = read_status(runs[0]) if runs else None
            if status is not None and status.state == "running" and status.step > 0:
                break
            assert time.time() < deadline, "the long training did not start in time"
            time.sleep(0.2)

        caching.clear_session_resource_cache("test session id")  # AppTest's session id
        assert memory.loaded is None and not memory.memo and memory.live_history is None
        deadline = time.time() + 300
        while not (status := read_status(runs[0])).finished:
            assert time.time() < deadline, "the closed session's job was not stopped"
            time.sleep(0.2)
        assert status.state == "stopped" and 0 < status.step < status.total_steps, (status, open_run_config(runs[0]))
        from vae_tfp.runs import open_run

        assert open_run(runs[0]).metrics()["status"] == "stopped" and open_run(runs[0]).has_weights()
    finally:
        st_config.set_option("server.disconnectedSessionTTL", ttl)


def open_run_config(path):
    from vae_tfp.runs import open_run

    return open_run(path).config()
