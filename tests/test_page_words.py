"""The page's words fit what it shows: after a training of point data, the "On screen" line names the run, its data
(points, not images) and its likelihood; once the sidebar holds another data set, the line says the sidebar's setup
is the next training's and the data preview is labelled as the next training's data, not as the data on screen; and
no view of a point data set speaks of images or pixels."""

import json
import re

from test_dashboard_apptest import app, charts, show, texts, train

IMAGE_WORDS = re.compile(r"\b(images?|pixels?)\b", re.I)


def test_the_page_names_the_run_and_data_on_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app()
    at.sidebar.selectbox(key="w_dataset").select("two_moons").run()
    at = train(at, epochs=2)
    assert not at.exception
    line = texts(at.caption)
    assert "On screen: run two_moons-gaussian" in line and "data two_moons" in line and "test points" in line
    assert "p(x|z) gaussian" in line and "another setup" not in line
    assert [e.label for e in at.expander if e.label.startswith("The data: two_moons")]

    at.sidebar.selectbox(key="w_dataset").select("digits").run()
    assert not at.exception
    line = texts(at.caption)
    assert "On screen: run two_moons-gaussian" in line and "the sidebar holds another setup" in line
    labels = [e.label for e in at.expander]
    assert any(label.startswith("The next training's data (the run on screen has two_moons): digits")
               for label in labels), labels


def _words(at) -> list[str]:
    """Every text of the open view: markdown, captions, messages, labels, help, chart titles and annotations."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "subheader", "header", "metric", "number_input",
                 "selectbox", "radio", "slider", "select_slider", "expander", "button"):
        for element in at.main.get(kind):
            out += [str(getattr(element, a, "") or "") for a in ("value", "label", "body", "help")]
    for spec in charts(at):
        layout = spec.get("layout", {})
        out += [json.dumps(layout.get("title", ""))] + [str(a.get("text", "")) for a in layout.get("annotations", [])]
    return out


def test_point_data_gets_point_words_in_every_view(tmp_path, monkeypatch):
    from dashboard.views import LABELS

    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_TFP_DASHBOARD_SYNC", "1")
    at = app()
    at.sidebar.selectbox(key="w_dataset").select("two_moons").run()
    at = train(at, epochs=2)
    for label in LABELS:
        at = show(at, label)
        assert not at.exception, (label, at.exception)
        said = [w for w in _words(at) if IMAGE_WORDS.search(w)]
        assert not said, (label, said)
