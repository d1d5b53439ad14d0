"""The dashboard in a real browser: Debian's chromium driven by Playwright (never `playwright install`).

Starts `streamlit run dashboard/app.py` (the console script) on a free port with a temporary runs folder, opens it,
waits for the first paint, switches the likelihood in the sidebar, trains on digits (in the server's worker
processes), checks that the page stays live while training and that its progress line keeps up with the curve,
finds the ELBO chart and the reconstruction images, visits every view and trains a second likelihood for the
comparison; closes a page whose job trains, which stops the job once server.disconnectedSessionTTL has passed; then
trains two_moons and watches the density lab live, stops it, and picks a point by clicking the plane. Full-page
screenshots (tall viewport: Streamlit scrolls inside its own container) go to artifacts/screenshots/; small copies of
one per view go to artifacts/screenshots/small/, or to docs/screenshots/ for the README with
VAE_TFP_DOC_SCREENSHOTS=1.

    .venv/bin/pytest -m browser tests/test_browser.py
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "artifacts" / "screenshots"
# small copies for the README: docs/screenshots/ only when asked (VAE_TFP_DOC_SCREENSHOTS=1), so that a test run
# leaves the working tree clean
DOCS = ROOT / "docs" / "screenshots" if os.environ.get("VAE_TFP_DOC_SCREENSHOTS") == "1" else SHOTS / "small"
DOC_WIDTH = 900  # pixels of the README copies
VIEWS = {  # tab label -> (file stem, a text that shows the view has drawn)
    "Training": ("1-training", "Training curves ("),
    "Reconstructions": ("2-reconstructions", "Top row"),
    "Prior vs posterior": ("3-prior-vs-posterior", "KL per dimension and active units"),
    "What is p(x)?": ("4-what-is-px", "Which density is which"),
    "Latent space": ("5-latent-space", "Interpolation between two test images"),
    "Compare runs": ("6-compare-runs", "ELBO per run"),
}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser test drives Debian's chromium",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GRACE = 2  # server.disconnectedSessionTTL: seconds before a closed page's session (and its jobs) end


def _installed_here() -> bool:
    """Whether the installed `dashboard` package (what the console script imports) is this checkout's."""
    out = subprocess.run([sys.executable, "-c", "import dashboard; print(dashboard.__file__)"], cwd="/",
                         capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                                           if k != "PYTHONPATH"})
    return out.returncode == 0 and Path(out.stdout.strip()).resolve().is_relative_to(ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(runs):
    port = _free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS.parent / "streamlit.log", "w")
    # the code under test first (a checkout beside an editable install of another one would import that one's)
    env = {**os.environ, "VAE_TFP_RUNS": str(runs),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("VAE_TFP_DASHBOARD_SYNC", None)
    if not _installed_here():  # e.g. a second checkout of the repository beside the installed one: test this one
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    # the console script, as a host runs it after `pip install -r requirements.txt`: it puts dashboard/ (not the
    # repository root) on sys.path, so this also checks that the app imports without any path set-up of its own
    streamlit = str(Path(sys.executable).parent / "streamlit")
    proc = subprocess.Popen([streamlit, "run", "dashboard/app.py", "--server.headless",
                             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.disconnectedSessionTTL", str(GRACE)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"streamlit did not start; see {SHOTS.parent / 'streamlit.log'}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def chromium(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def tab(chromium):
    """One Chromium page for the module (named so as not to shadow pytest-playwright's `page`)."""
    page = chromium.new_page(viewport={"width": 1400, "height": 3000})
    page.set_default_timeout(60_000)
    yield page
    page.close()


OPEN_VIEW = '[data-testid="stTabs"] [role="tabpanel"]:visible'  # views seen before stay drawn in hidden tabs


def settle(page, seconds: float = 1.0) -> None:
    """Wait until Streamlit has finished the current rerun, then give Plotly a moment to draw."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=120_000)
    page.wait_for_timeout(seconds * 1000)


def shoot(page, stem: str, doc: bool = True) -> None:
    path = SHOTS / f"{stem}.png"
    page.screenshot(path=str(path), full_page=True)
    if doc:
        DOCS.mkdir(parents=True, exist_ok=True)
        _small_copy(path, DOCS / f"{stem}.png")


def _small_copy(src: Path, dst: Path) -> None:
    """The screenshot without the empty space below the content, DOC_WIDTH wide, in 128 colours."""
    from PIL import Image, ImageChops

    im = Image.open(src).convert("RGB")
    main = im.crop((im.width // 4, 0, im.width, im.height))  # right of the sidebar
    box = ImageChops.difference(main, Image.new("RGB", main.size, main.getpixel((main.width - 2, main.height - 2))))
    bottom = (box.getbbox() or (0, 0, 0, im.height))[3]
    im = im.crop((0, 0, im.width, min(im.height, bottom + 40)))
    im = im.resize((DOC_WIDTH, round(im.height * DOC_WIDTH / im.width)), Image.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(dst, optimize=True)


def pick(page, label: str, option: str) -> None:
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page, 0.3)


def number(page, label: str, value) -> None:
    box = page.get_by_test_id("stSidebar").get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page, 0.3)


def _progress_step(page) -> int | None:
    """The step number the live progress line shows now, or None while it shows none."""
    bar = page.get_by_test_id("stProgress")
    try:
        text = bar.first.inner_text(timeout=1000) if bar.count() else ""
    except sync_api.Error:
        return None
    if "step " not in text:
        return None
    return int(text.split("step ")[1].split(" ")[0])


def _wait_for_step_above(page, floor: int, timeout: float = 300) -> int:
    """Poll the live progress line until it shows a step above `floor`; the step seen."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        step = _progress_step(page)
        if step is not None and step > floor:
            return step
        page.wait_for_timeout(300)
    raise AssertionError(f"the live progress did not pass step {floor} within {timeout:.0f} s")


def _curve_step(page, timeout: float = 120) -> int:
    """The step up to which the live curve is drawn ("Training curves (live, logged up to step N)")."""
    title = page.get_by_text("logged up to step").first
    title.wait_for(timeout=timeout * 1000)
    return int(title.text_content().split("logged up to step ")[1].split(")")[0].split()[0])


def train(page, epochs: int, live_shot: str | None = None) -> None:
    """Click Train and wait (bounded) until the sidebar says the training ended. `live_shot`: the name of a
    screenshot taken if the live curve shows while it runs (a fast machine may finish before it does)."""
    sidebar = page.get_by_test_id("stSidebar")
    number(page, "Epochs", epochs)
    sidebar.get_by_role("button", name="Train").click()
    sidebar.get_by_text("the live progress is on the page.").wait_for(timeout=120_000)
    deadline = time.time() + 300
    while time.time() < deadline:
        if sidebar.get_by_text("Last training:").count():
            break
        if live_shot and page.get_by_text("Training curves (live").count():
            page.wait_for_timeout(500)
            shoot(page, live_shot, doc=False)
            live_shot = None
        page.wait_for_timeout(500)
    else:
        raise AssertionError("training did not finish in 5 minutes")
    settle(page)


def test_progress_is_live_and_stop_keeps_the_model(tab, server):
    """A run far longer than any machine finishes in the test's time (3000 epochs of digits, 36 000 steps): the
    progress line must move while it trains, and Stop must end it with the model kept. Nothing here depends on how
    fast the machine trains: each wait is for an event, bounded by a timeout."""
    page = tab
    page.goto(server)
    page.get_by_text("variational autoencoders, inspected").wait_for(timeout=120_000)
    settle(page)
    sidebar = page.get_by_test_id("stSidebar")
    number(page, "Epochs", 3000)
    sidebar.get_by_role("button", name="Train").click()
    first = _wait_for_step_above(page, 0)
    second = _wait_for_step_above(page, first)  # the page polls while training runs: the step moves
    assert second > first
    curve = _curve_step(page)  # the live curve's last logged step: the progress line catches up with it
    third = _wait_for_step_above(page, curve - 1, timeout=60)
    assert third >= curve
    shoot(page, "1-training-live", doc=False)
    sidebar.get_by_role("button", name="Stop").click()
    sidebar.get_by_text("Last training: stopped").wait_for(timeout=60_000)
    settle(page)
    text = sidebar.get_by_text("Last training: stopped").inner_text()
    stopped_at = int(text.split("after ")[1].split(" ")[0])
    assert second <= stopped_at < 36_000, text
    page.get_by_text("Training curves (").wait_for()  # the stopped model is shown, with its curve


def test_dashboard_in_chromium(tab, server):
    page = tab
    for old in DOCS.glob("*.png") if DOCS.exists() else ():
        old.unlink()
    page.goto(server)
    page.get_by_text("variational autoencoders, inspected").wait_for(timeout=120_000)
    page.get_by_test_id("stSidebar").get_by_text("Likelihood p(x|z)").wait_for()
    settle(page)
    # the data preview, drawn inside its folded expander (the title paints before it)
    page.locator(".js-plotly-plot .hm image").first.wait_for(state="attached")
    shoot(page, "0-first-paint")

    pick(page, "Likelihood", "gaussian")
    page.wait_for_url("**likelihood=gaussian**", timeout=60_000)  # the link holds the setup
    train(page, epochs=40)
    page.get_by_test_id("stSidebar").get_by_text("Last training: completed").wait_for()

    # the ELBO chart, then the reconstruction images
    page.get_by_text("Training curves (").wait_for()
    assert page.locator(".js-plotly-plot").filter(has_text="ELBO (test)").count() == 1
    shoot(page, VIEWS["Training"][0])
    for label, (stem, marker) in VIEWS.items():
        if label in ("Training", "Compare runs"):
            continue
        page.get_by_role("tab", name=label).click()
        page.get_by_text(marker).first.wait_for()
        settle(page, 1.5)
        if label == "Reconstructions":
            # one picture of 6 test images x (x, E[x|z], x' ~ p(x|z)), each column titled with its image's number
            assert page.locator(f"{OPEN_VIEW} .js-plotly-plot .hm image").count() == 1
            notes = page.locator(f"{OPEN_VIEW} .js-plotly-plot .annotation-text").all_text_contents()
            assert all(any(f"#{i}" in t for t in notes) for i in range(6)), notes
            assert sum("decoder output" in t for t in notes) == 1
        shoot(page, stem)

    # a second likelihood on the same data, for the comparison
    page.get_by_role("tab", name="Training").click()
    settle(page)
    pick(page, "Likelihood", "bernoulli")
    train(page, epochs=40)
    page.get_by_role("tab", name="Compare runs").click()
    page.get_by_text("ELBO per run").wait_for()
    page.get_by_text("not comparable").first.wait_for()
    settle(page, 1.5)
    shoot(page, VIEWS["Compare runs"][0])
    assert "view=Compare" in page.url and "run=digits-bernoulli" in page.url

    for png in DOCS.glob("*.png"):
        assert png.stat().st_size < 300_000, f"{png} is too large for the README"


def test_the_link_reopens_the_setup(tab, server):
    page = tab
    page.goto(f"{server}/?likelihood=categorical&latent_dim=3&view=Latent+space&colour=red")
    page.get_by_text("variational autoencoders, inspected").wait_for()
    settle(page)
    sidebar = page.get_by_test_id("stSidebar")
    # each check waits (bounded) for what the link must produce: a cold server may still be drawing after `settle`
    expect = sync_api.expect
    words = "Models K intensity levels per pixel, a softmax over levels"
    expect(sidebar.get_by_text(words)).to_have_count(1, timeout=60_000)
    expect(sidebar.get_by_role("spinbutton", name="Latent dimension", exact=True)).to_have_value("3", timeout=60_000)
    expect(page.get_by_text("Unknown link parameter 'colour'")).to_have_count(1, timeout=60_000)
    expect(page.get_by_role("tab", name="Latent space", selected=True)).to_have_count(1, timeout=60_000)
    shoot(page, "7-shared-link", doc=False)


def test_closing_the_page_stops_its_training(chromium, server, runs):
    """A page that trains a run far longer than the test, then closes (a person closing the tab): once the server's
    disconnectedSessionTTL has passed, the session's job is stopped in its worker and keeps its model. Read from the
    run directory (job.json, metrics.json), as any other process would."""
    from vae_tfp.jobs import read_status

    before = {p.name for p in runs.iterdir()}
    page = chromium.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_text("variational autoencoders, inspected").wait_for(timeout=120_000)
    settle(page)
    number(page, "Epochs", 3000)
    page.get_by_test_id("stSidebar").get_by_role("button", name="Train").click()
    _wait_for_step_above(page, 0)
    [run] = [p for p in runs.iterdir() if p.name not in before]
    assert read_status(run).state == "running"
    page.close()
    deadline = time.time() + GRACE + 120
    while not (status := read_status(run)).finished:
        assert time.time() < deadline, f"the closed page's job is still {status.state} at step {status.step}"
        time.sleep(0.3)
    assert status.state == "stopped" and 0 < status.step < 36_000
    from vae_tfp.runs import open_run

    assert open_run(run).metrics()["status"] == "stopped" and open_run(run).has_weights()


def _live_lab_step(page) -> int | None:
    """The step the density lab's live picture shows now, or None while it shows none."""
    live = page.locator("p").filter(has_text="from the run's newest snapshot")
    try:
        text = live.first.inner_text(timeout=1000) if live.count() else ""
    except sync_api.Error:
        return None
    return int(text.split("at step ")[1].split(" ")[0]) if "at step " in text else None


def test_the_density_lab_live_and_finished(tab, server):
    """two_moons for longer than any machine trains in the test's time: the lab's live density must move on to a
    later step while it trains (read from the run's snapshots), Stop must leave the finished lab with its replay
    slider, and a click on the plane must pick the point x. Each wait is for an event, bounded by a timeout."""
    page = tab
    page.set_viewport_size({"width": 1400, "height": 4600})  # the whole lab in one full-page screenshot
    try:
        page.goto(f"{server}/?dataset=two_moons&likelihood=gaussian&epochs=10000&batch_size=500&view=Density+lab")
        page.get_by_text("variational autoencoders, inspected").wait_for(timeout=120_000)
        settle(page)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_role("button", name="Train").click()
        deadline, first = time.time() + 300, None
        while time.time() < deadline:
            step = _live_lab_step(page)
            if first is None:
                first = step
            elif step is not None and step > first:
                break
            page.wait_for_timeout(300)
        else:
            raise AssertionError(f"the live density did not move past step {first} within 300 s")
        page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=60_000)  # between two refreshes
        page.locator(".js-plotly-plot .hm image").first.wait_for()
        assert page.locator(OPEN_VIEW).get_by_text("The data's true p(x)").count() == 1
        shoot(page, "8-lab-live")
        sidebar.get_by_role("button", name="Stop").click()
        sidebar.get_by_text("Last training: stopped").wait_for(timeout=60_000)
        page.get_by_text("One point, all four densities").wait_for(timeout=120_000)
        page.get_by_text("Replay: the model at training step").wait_for()
        settle(page, 2.0)
        shoot(page, "9-lab")

        # a click on the plane picks x: the two coordinate inputs take the clicked point
        x1 = page.get_by_role("spinbutton", name="x1", exact=True)
        before = x1.input_value()
        plane = page.locator(".st-key-lab_pick .js-plotly-plot .nsewdrag").first
        box = plane.bounding_box()
        page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.7 * box["height"])
        page.mouse.click(box["x"] + 0.2 * box["width"], box["y"] + 0.7 * box["height"])
        sync_api.expect(x1).not_to_have_value(before, timeout=60_000)
        settle(page)
        assert page.locator(OPEN_VIEW).get_by_text("log p(x) (quadrature)").count() == 1
    finally:
        page.set_viewport_size({"width": 1400, "height": 3000})


def test_a_laptop_screen_shows_train_and_the_views(chromium, server):
    """At 1280 x 800, the first screen holds the lesson picker, the Train button and the views' tabs (no scrolling
    to start), and no sidebar label is cut short (a cut label is wider inside than its box)."""
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    try:
        page.goto(server)
        page.get_by_text("variational autoencoders, inspected").wait_for(timeout=120_000)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("Likelihood p(x|z)").wait_for()
        settle(page)
        for what, box in (("Train", sidebar.get_by_role("button", name="Train").bounding_box()),
                          ("lessons", sidebar.get_by_test_id("stSelectbox").first.bounding_box()),
                          ("tabs", page.get_by_role("tab", name="Compare runs").bounding_box())):
            assert box is not None and box["y"] + box["height"] <= 800, f"{what} is below the fold: {box}"
        cut = sidebar.get_by_test_id("stWidgetLabel").evaluate_all(
            "els => els.filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.innerText)")
        assert cut == [], f"sidebar labels cut short: {cut}"
        page.screenshot(path=str(SHOTS / "0-laptop-1280x800.png"))
        if DOCS != SHOTS / "small":
            page.screenshot(path=str(DOCS / "0-laptop-1280x800.png"))
    finally:
        page.close()
