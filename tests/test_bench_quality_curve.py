"""bench.quality_curve: the README's curve of log p(x) against training minutes, drawn from bench.quality results."""

import xml.etree.ElementTree as ET

import pytest

from bench.quality_curve import curve_points, quality_svg, run_label

SVG = "{http://www.w3.org/2000/svg}"


def result(prior, components, points):
    return {"config": {"prior": prior, "prior_components": components},
            "checkpoints": [{"train_seconds": 60.0 * m, "epochs": 15.0 * m, "test_log_px": y} for m, y in points]}


def test_the_curve_places_each_checkpoint_at_its_trained_minutes_and_log_px():
    runs = [result("mixture", 10, [(10, -229.78), (30, -228.70), (53.6, -228.25)]),
            result("vamp", 50, [(10, -229.65), (30, -228.51)])]
    anchors = [{"model": "VAE, Gaussian prior (paper)", "log_px": -228.70}]
    root = ET.fromstring(quality_svg(runs, anchors=anchors))
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 5
    titles = [c.find(f"{SVG}title").text for c in circles]
    assert titles[0] == "mixture of Gaussians (learned), 10 components: -229.78 nats at 10.0 minutes"
    assert titles[4] == "VampPrior, 50 pseudo-inputs: -228.51 nats at 30.0 minutes"
    cx = [float(c.get("cx")) for c in circles]
    cy = [float(c.get("cy")) for c in circles]
    # x is linear in minutes from the axis origin: 10 and 30 minutes of either run share their x
    assert cx[0] == cx[3] and cx[1] == cx[4]
    origin = cx[0] - (cx[1] - cx[0]) / 20 * 10
    assert abs((cx[2] - origin) / (cx[1] - origin) - 53.6 / 30) < 1e-3
    # higher log p(x) is drawn higher (smaller y), linearly: the anchor line equal to -228.70 meets the 30-min point
    assert cy[2] < cy[1] < cy[0] and cy[4] < cy[1]
    assert abs((cy[0] - cy[1]) / (cy[1] - cy[2]) - (229.78 - 228.70) / (228.70 - 228.25)) < 1e-2
    dashed = [line for line in root.findall(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1 and abs(float(dashed[0].get("y1")) - cy[1]) < 0.11
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert "mixture of Gaussians (learned), 10 components" in texts and "VampPrior, 50 pseudo-inputs" in texts


def test_labels_and_points_read_a_quality_result():
    run = result("standard_normal", None, [(10, -230.0)])
    run["checkpoints"][0]["train_seconds"] = 3216.0  # the epochs ran out before the checkpoint
    assert run_label(run) == "standard normal N(0, I)"
    assert curve_points(run) == [(53.6, -230.0)]
    assert curve_points(run, "epochs") == [(150.0, -230.0)]
    with pytest.raises(ValueError, match="unknown axis 'steps'; allowed: minutes, epochs"):
        curve_points(run, "steps")


def test_the_epochs_axis_places_points_at_their_epochs():
    runs = [result("vamp", 50, [(10, -229.65), (30, -228.51)])]
    root = ET.fromstring(quality_svg(runs, anchors=[], axis="epochs"))
    titles = [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")]
    assert titles == ["VampPrior, 50 pseudo-inputs: -229.65 nats at 150.0 epochs",
                      "VampPrior, 50 pseudo-inputs: -228.51 nats at 450.0 epochs"]
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert "800" in texts and any(t.startswith("epochs trained") for t in texts)
