"""Load benchmark of the dashboard as a shared server (a benchmark, not a test): N people train at the same moment
while one more switches views.

    .venv/bin/python -m bench.load --sessions 1 4 8 16 [--epochs 20] [--ttl 5] [--shots DIR] [--json]

For each N: start `streamlit run dashboard/app.py` (VAE_TFP_MODE=shared, a fresh runs folder, the job limits from
the environment as an operator would set them: VAE_TFP_MAX_JOBS, VAE_TFP_MAX_QUEUE, VAE_TFP_MAX_JOBS_PER_SESSION),
with server.disconnectedSessionTTL = --ttl. One observer session (Debian's headless Chromium through Playwright,
never `playwright install`) trains a short run, then visits every view once. Then N more sessions open the page,
set the epochs and press Train within a second of each other (digits, the default model), while the observer keeps
switching view tabs. All browsers run on this machine: the N training sessions' browser at a lower CPU priority
(--client-nice, default 10: every process and thread of that browser, found through the DevTools protocol and
re-applied every half second, since Chromium resets its processes' priorities itself), standing in for the people's
own computers; the observer's at normal priority, since what it measures includes drawing the view. Measured:

    job_seconds            per job: from its submit until it ended (the server's clock, from each run's job.json;
                           queue waiting included); how it ended: what each page says
    tab_switch_*           the observer's view switches while the N train: from the click event in the page to the
                           first frame that lays out the view's content (the page's clock; the driver's checks
                           before it clicks are not counted); tab_switch_driver_*: the same from the driver's click
                           call; tab_switch_server_*: the driver's click call to the server's last message of that
                           rerun; tab_switch_median_by_view_s: per view. The observer has seen every view
                           before (the dashboard keeps views seen for the same model drawn in their hidden tabs:
                           a switch shows one at once, then the rerun the click started redraws it; the server
                           times cover that rerun); first_visit_by_view_s: its first visit of each view, when the
                           view computes, before the N sessions start
    rss_*_mb               the server process (the page process) and, separately, its worker processes (summed):
                           before the N sessions open (the observer's model loaded), the peak while they train, and
                           after every page has closed and the disconnected-session TTL (+ 10 s) has passed
    jobs_completed / jobs_refused / jobs_lost
                           refused: the page says "Training was not started" with the limit; lost: neither
                           completed nor refused (failed, or not finished within --timeout)

The last line with --json is one JSON object {"runs": [{"sessions": N, ...}, ...], "machine": {...}}. Numbers
depend on the machine and on what else runs on it: the load average before and after each N is reported with it.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TITLE = "variational autoencoders, inspected"
VIEWS = {  # tab label -> a text the view shows once it has drawn (the observer cycles through them)
    "Training": "Training curves (",
    "Reconstructions": "Top row",
    "Prior vs posterior": "KL per dimension and active units",
    "What is p(x)?": "Which density is which",
    "Latent space": "Interpolation between two test images",
}
ENDED = ("Last training:", "Training was not started")


# --- processes and memory --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _workers(server_pid: int) -> list[int]:
    """The server's job workers (`python -m vae_tfp.jobs.worker`), found by their parent and command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == server_pid and "vae_tfp.jobs.worker" in cmd:
            pids.append(int(entry.name))
    return pids


def memory(server_pid: int) -> tuple[float, float]:
    """(server RSS, workers' RSS summed) in MB."""
    return _rss_mb(server_pid), sum(_rss_mb(p) for p in _workers(server_pid))


class Sampler(threading.Thread):
    """The peak of the server's and of its workers' RSS, sampled every `every` seconds."""

    def __init__(self, server_pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every = server_pid, every
        self.peak_server = self.peak_workers = 0.0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            server, workers = memory(self.pid)
            self.peak_server, self.peak_workers = max(self.peak_server, server), max(self.peak_workers, workers)
            self.halt.wait(self.every)


def start_server(runs: Path, ttl: int, log) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "VAE_TFP_RUNS": str(runs), "VAE_TFP_HOME": str(runs), "VAE_TFP_MODE": "shared",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH")
                                                       else [])])}
    env.pop("VAE_TFP_DASHBOARD_SYNC", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.disconnectedSessionTTL", str(ttl), "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("streamlit did not start")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


# --- pages ------------------------------------------------------------------------------------------------------------
def renice_browser(browser, nice: int) -> int:
    """Lower the CPU priority of every process and thread of `browser` to `nice` (Linux; raising `nice` needs no
    privilege); the number of threads set. Chromium sets its own processes' priorities (its main and GPU processes
    above normal, renderers at 0 or 5), so a nice inherited at launch does not stay: call this again as it runs."""
    try:
        info = browser.new_browser_cdp_session().send("SystemInfo.getProcessInfo")
    except Exception:  # noqa: BLE001 - a browser without the domain keeps its priorities
        return 0
    done = 0
    for pid in {p["id"] for p in info.get("processInfo", [])}:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                if os.getpriority(os.PRIO_PROCESS, int(tid)) != nice:
                    os.setpriority(os.PRIO_PROCESS, int(tid), nice)
                done += 1
            except OSError:
                pass
    return done


def open_page(browser, url: str, timeout: float):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(timeout * 1000)
    page.goto(url, timeout=timeout * 1000)
    page.get_by_text(TITLE).wait_for(timeout=timeout * 1000)
    page.get_by_test_id("stSidebar").get_by_role("button", name="Train").wait_for(timeout=timeout * 1000)
    return page


def settle(page, timeout: float = 120) -> None:
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=timeout * 1000)


def set_epochs(page, epochs: int) -> None:
    box = page.get_by_test_id("stSidebar").get_by_role("spinbutton", name="Epochs", exact=True)
    box.fill(str(epochs))
    box.press("Enter")
    settle(page)


def ended(page) -> str | None:
    """How the page's training ended ("completed", "failed", ..., or "refused"), or None while it runs."""
    sidebar = page.get_by_test_id("stSidebar")
    last = sidebar.get_by_text("Last training:")
    if last.count():
        return last.first.inner_text().split("Last training:")[1].split()[0].strip("*")
    if page.get_by_text("Training was not started").count():
        return "refused"
    return None


ARM = """(marker) => { window.__vaeClick = null; window.__vaeShown = null;
  const shown = () => {  // the marker text in an element the page lays out (a hidden tab's panel is not)
    const found = document.evaluate(`//*[contains(text(), ${JSON.stringify(marker)})]`, document.body, null,
                                    XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
    for (let i = 0; i < found.snapshotLength; i++) { if (found.snapshotItem(i).offsetParent !== null) return true; }
    return false;
  };
  const look = () => { if (shown()) { window.__vaeShown = performance.now(); } else { requestAnimationFrame(look); } };
  const click = () => { window.__vaeClick = performance.now(); requestAnimationFrame(look); };
  document.addEventListener("pointerdown", click, {capture: true, once: true}); }"""


def switch(page, label: str, timeout: float, frames: list | None = None) -> tuple[float, float | None, float | None]:
    """Click a view tab; (seconds from the driver's click call until the view's content is visible; the same from
    the click event in the page to the first animation frame that lays out the view's marker text, on the page's
    clock, without the driver's checks before it clicks and after; seconds until the server's last message of that
    rerun arrived: what the server took, without the drawing). `frames`: arrival times of the page's websocket
    messages."""
    n0 = len(frames) if frames is not None else 0
    page.evaluate(ARM, VIEWS[label])
    t0 = time.perf_counter()
    page.get_by_role("tab", name=label).click()
    page.get_by_text(VIEWS[label]).first.wait_for(state="visible", timeout=timeout * 1000)
    visible = time.perf_counter() - t0
    page.wait_for_function("() => window.__vaeClick === null || window.__vaeShown !== null", timeout=timeout * 1000)
    clicked = page.evaluate("() => window.__vaeClick === null ? null : (window.__vaeShown - window.__vaeClick) / 1e3")
    if frames is None:
        return visible, clicked, None
    page.wait_for_timeout(300)  # the rerun's last messages (they may trail what is drawn)
    settle(page, timeout)
    return visible, clicked, (frames[-1] - t0 if len(frames) > n0 else None)


class Observer(threading.Thread):
    """One more session: trains a short run, visits every view once (so each is computed), then switches views
    until told to stop, timing each switch."""

    def __init__(self, url: str, epochs: int, timeout: float, shots: Path | None):
        super().__init__(daemon=True)
        self.url, self.epochs, self.timeout, self.shots = url, epochs, timeout, shots
        self.ready = threading.Event()  # trained, every view visited
        self.measure = threading.Event()  # switches from now on are measured
        self.halt = threading.Event()
        self.closed = threading.Event()
        self.latencies: list[float] = []
        self.page_latencies: list[float] = []
        self.server_latencies: list[float] = []
        self.by_view: dict[str, list[float]] = {}
        self.first_visits: dict[str, float] = {}
        self.error = None

    def run(self):
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = open_page(browser, self.url, self.timeout)
                frames = []
                page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(time.perf_counter())))
                page.reload()
                page.get_by_text(TITLE).wait_for(timeout=self.timeout * 1000)
                settle(page, self.timeout)
                set_epochs(page, self.epochs)
                page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click()
                deadline = time.time() + self.timeout
                while ended(page) is None:
                    if time.time() > deadline:
                        raise TimeoutError("the observer's training did not end")
                    page.wait_for_timeout(300)
                settle(page)
                for label in VIEWS:  # first visits, before the N sessions start: each view computes
                    visible, clicked, _ = switch(page, label, self.timeout)
                    self.first_visits[label] = clicked or visible
                    settle(page)
                self.ready.set()
                self.measure.wait()
                labels = list(VIEWS)
                i = 0
                while not self.halt.is_set():
                    i += 1
                    visible, clicked, server = switch(page, labels[i % len(labels)], self.timeout, frames)
                    self.latencies.append(visible)
                    if clicked is not None:
                        self.page_latencies.append(clicked)
                    self.by_view.setdefault(labels[i % len(labels)], []).append(clicked or visible)
                    if server is not None:
                        self.server_latencies.append(server)
                    if self.shots is not None and i == 3:
                        page.screenshot(path=str(self.shots / "observer.png"))
                    page.wait_for_timeout(200)
                page.close()
                browser.close()
        except Exception as err:  # noqa: BLE001 - reported in the results
            self.error = f"{type(err).__name__}: {err}"
            self.ready.set()
        finally:
            self.closed.set()


def percentile(values, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- one N ------------------------------------------------------------------------------------------------------------
class Load(threading.Thread):
    """The N sessions that train: their pages open, set the epochs and press Train within a second of each other;
    then their pages are watched until each says how its training ended. Their browser runs at a lower CPU priority
    (`nice`): it stands in for N people's own computers, which in real use are not the server's."""

    def __init__(self, n: int, url: str, epochs: int, timeout: float, nice: int, shots: Path | None,
                 started: threading.Event):
        super().__init__(daemon=True)
        self.n, self.url, self.epochs, self.timeout, self.nice, self.shots = n, url, epochs, timeout, nice, shots
        self.started = started  # set once every Train button has been pressed
        self.outcome: list = [None] * n
        self.error = None

    def run(self):
        from playwright.sync_api import sync_playwright

        if self.nice:
            os.nice(self.nice)  # this thread only (Linux): the browser it starts inherits it
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                pages = [open_page(browser, self.url, self.timeout) for _ in range(self.n)]
                if self.nice:
                    renice_browser(browser, self.nice)
                for page in pages:
                    set_epochs(page, self.epochs)
                for page in pages:  # within a second of each other
                    page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click(no_wait_after=True)
                self.started.set()
                deadline = time.perf_counter() + self.timeout
                shot = self.shots is not None and self.n > 1
                while None in self.outcome and time.perf_counter() < deadline:
                    if self.nice:
                        renice_browser(browser, self.nice)
                    for i, page in enumerate(pages):
                        if self.outcome[i] is None:
                            self.outcome[i] = ended(page)
                    if shot:
                        pages[-1].screenshot(path=str(self.shots / f"queued-{self.n}.png"))
                        shot = False
                    time.sleep(0.5)
                for page in pages:
                    page.close()
                browser.close()
        except Exception as err:  # noqa: BLE001 - reported in the results
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self.started.set()


def job_times(folder: Path, exclude: set) -> list[float]:
    """Seconds from submit to end of every job whose status lies under `folder` (job.json in each run directory),
    except the runs in `exclude`: the server's own clock, whatever the browsers' speed."""
    from vae_tfp.jobs import read_status

    times = []
    for path in folder.rglob("job.json"):
        if path.parent in exclude:
            continue
        status = read_status(path.parent)
        if status is not None and status.finished and status.submitted and status.finished_at:
            times.append(status.finished_at - status.submitted)
    return sorted(times)


def one(n: int, epochs: int, ttl: int, timeout: float, client_nice: int, shots: Path | None) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"vae-tfp-load-{n}-"))
    log = open(data.parent / f"{data.name}.log", "w")
    load_before = load_average()
    server, url = start_server(data, ttl, log)
    result = {"sessions": n, "epochs": epochs, "load_average_before": load_before}
    try:
        observer = Observer(url, 5, timeout, shots)
        observer.start()
        if not observer.ready.wait(timeout * 2) or observer.error:
            raise RuntimeError(f"observer: {observer.error or 'not ready'}")
        time.sleep(2)
        observers_runs = {p.parent for p in data.rglob("job.json")}
        result["rss_before_mb"], result["workers_rss_before_mb"] = (round(x, 1) for x in memory(server.pid))
        sampler = Sampler(server.pid)
        sampler.start()
        started = threading.Event()
        load = Load(n, url, epochs, timeout, client_nice, shots, started)
        load.start()
        started.wait(timeout)
        observer.measure.set()
        load.join(timeout + 120)
        observer.halt.set()
        observer.closed.wait(timeout)
        sampler.halt.set()
        outcome = load.outcome
        times = job_times(data, observers_runs)
        result.update({
            "jobs_completed": sum(o == "completed" for o in outcome),
            "jobs_refused": sum(o == "refused" for o in outcome),
            "jobs_lost": sum(o not in ("completed", "refused") for o in outcome),
            "outcomes": outcome,
            "job_seconds": [round(t, 2) for t in times],
            "job_seconds_median": round(statistics.median(times), 2) if times else None,
            "job_seconds_max": round(max(times), 2) if times else None,
            "tab_switches": len(observer.latencies),
            "tab_switch_median_s": _round(percentile(observer.page_latencies, 0.5)),
            "tab_switch_p95_s": _round(percentile(observer.page_latencies, 0.95)),
            "tab_switch_max_s": _round(max(observer.page_latencies, default=None)),
            "tab_switch_driver_median_s": _round(percentile(observer.latencies, 0.5)),
            "tab_switch_driver_p95_s": _round(percentile(observer.latencies, 0.95)),
            "tab_switch_median_by_view_s": {k: _round(percentile(v, 0.5)) for k, v in observer.by_view.items()},
            "first_visit_by_view_s": {k: _round(v) for k, v in observer.first_visits.items()},
            "tab_switch_server_median_s": _round(percentile(observer.server_latencies, 0.5)),
            "tab_switch_server_p95_s": _round(percentile(observer.server_latencies, 0.95)),
            "rss_peak_mb": round(sampler.peak_server, 1),
            "workers_rss_peak_mb": round(sampler.peak_workers, 1),
            "errors": [e for e in (observer.error, load.error) if e],
        })
        time.sleep(ttl + 10)  # every page closed: the sessions end after the TTL; their memory is released
        result["rss_after_close_mb"], result["workers_rss_after_close_mb"] = (round(x, 1) for x in memory(server.pid))
        result["workers"] = len(_workers(server.pid))
        result["limits"] = {k: os.environ.get(k) for k in ("VAE_TFP_MAX_JOBS", "VAE_TFP_MAX_QUEUE",
                                                            "VAE_TFP_MAX_JOBS_PER_SESSION")}
        result["client_nice"] = client_nice
    finally:
        stop_server(server)
        log.close()
        result["load_average_after"] = load_average()
    return result


def _round(x):
    return None if x is None else round(x, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each session's training (digits)")
    parser.add_argument("--ttl", type=int, default=5, help="server.disconnectedSessionTTL in seconds")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the N jobs of one round")
    parser.add_argument("--shots", type=Path, default=None, help="save screenshots (observer, a queued page) here")
    parser.add_argument("--client-nice", type=int, default=10,
                        help="CPU niceness of the N training sessions' browser (0: as the server)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    if args.shots is not None:
        args.shots.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in args.sessions:
        r = one(n, args.epochs, args.ttl, args.timeout, args.client_nice, args.shots)
        runs.append(r)
        print(f"N={n}: completed {r.get('jobs_completed')} refused {r.get('jobs_refused')} lost {r.get('jobs_lost')}; "
              f"job s median {r.get('job_seconds_median')} max {r.get('job_seconds_max')}; tab switch median "
              f"{r.get('tab_switch_median_s')} p95 {r.get('tab_switch_p95_s')} ({r.get('tab_switches')}; server side "
              f"{r.get('tab_switch_server_median_s')} / {r.get('tab_switch_server_p95_s')}); server RSS "
              f"{r.get('rss_before_mb')} -> peak {r.get('rss_peak_mb')} -> after close {r.get('rss_after_close_mb')} "
              f"MB; workers {r.get('workers_rss_before_mb')} -> {r.get('workers_rss_peak_mb')} -> "
              f"{r.get('workers_rss_after_close_mb')} MB; load {r['load_average_before']} -> "
              f"{r['load_average_after']}", file=sys.stderr, flush=True)
    out = {"runs": runs, "machine": {"cpus": os.cpu_count(), "load_average": load_average()}}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
