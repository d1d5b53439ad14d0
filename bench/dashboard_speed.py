"""Dashboard timings in headless Chromium (Playwright sync API, Debian's /usr/bin/chromium; never `playwright install`).

    first paint  seconds from starting `python -m streamlit run dashboard/app.py` until the app's title (its first
                 <h1>) is visible in a freshly opened page (server start + page load + first script run)
    rerun        seconds from clicking another view tab (a view widget) until the server's last websocket message
                 of that rerun (Streamlit's script-finished message closes every rerun); median over repeats

Returns None values with a `reason` when the dashboard, chromium or playwright is missing; never raises.

    .venv/bin/python -m bench.dashboard_speed
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(reason: str) -> dict:
    return {"first_paint_s": None, "rerun_s": None, "reason": reason}


def measure_dashboard(repeats: int = 3, timeout: float = 90.0) -> dict:
    """{"first_paint_s", "rerun_s", "rerun_all_s", "first_paint_all_s", "reason"}; see the module docstring."""
    app = ROOT / "dashboard" / "app.py"
    if not app.exists():
        return _unavailable("dashboard/app.py does not exist yet")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return _unavailable(f"chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        return _unavailable(f"playwright not importable ({err})")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                paints, reruns = [], []
                for _ in range(repeats):
                    paint, rerun = _one_server(browser, app, timeout)
                    paints.append(paint)
                    reruns.extend(rerun)
            finally:
                browser.close()
    except Exception as err:  # noqa: BLE001 - a benchmark reports, it does not crash
        return _unavailable(f"{type(err).__name__}: {err}")
    return {"first_paint_s": statistics.median(paints), "first_paint_all_s": paints,
            "rerun_s": statistics.median(reruns) if reruns else None, "rerun_all_s": reruns,
            "reason": None if reruns else "no second view tab to click"}


def _one_server(browser, app, timeout):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true", "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    page = browser.new_page()
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:  # the server is up when it accepts a connection
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("streamlit did not start")
            if server.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        frames = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda _: frames.append(time.perf_counter())))
        page.goto(url, timeout=timeout * 1000)
        page.locator("h1").first.wait_for(state="visible", timeout=timeout * 1000)
        first_paint = time.perf_counter() - t0
        _settle(page, frames)
        return first_paint, _reruns(page, frames, timeout)
    finally:
        page.close()
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _settle(page, frames, quiet: float = 1.0, limit: float = 60.0, since: float | None = None):
    """Wait until no websocket message arrived for `quiet` seconds (the page's runs are done). Quiet is counted from
    `since` at the earliest (the click), so a rerun whose first message is still on its way is waited for."""
    start = time.perf_counter() if since is None else since
    while time.perf_counter() - start < limit:
        last = max(frames[-1], start) if frames else start
        if time.perf_counter() - last > quiet:
            return
        page.wait_for_timeout(50)


def _reruns(page, frames, timeout, rounds: int = 4):
    tabs = page.get_by_role("tab")
    if tabs.count() < 2:
        return []
    times = []
    for i in range(rounds):
        tab = tabs.nth(1 + i % 2) if tabs.count() > 2 else tabs.nth((i + 1) % 2)
        n0 = len(frames)
        t_click = time.perf_counter()
        tab.click(timeout=timeout * 1000)
        _settle(page, frames, quiet=1.0, since=t_click)
        if len(frames) > n0:
            times.append(frames[-1] - t_click)
    return times


if __name__ == "__main__":
    print(measure_dashboard())
