"""The curve of test log p(x) against training minutes, one line per `bench.quality` run, as a standalone SVG.

    .venv/bin/python -m bench.quality_curve bench/results/quality_gaussian.json bench/results/quality_cosine.json \
        bench/results/quality_vamp.json --out docs/quality_curve.svg [--axis epochs]

Each run's checkpoints are drawn at the minutes its trainer actually trained (`train_seconds`, so a run whose epochs
ran out before a checkpoint sits where it stopped), or at its epochs (`--axis epochs`: where the runs' cosine
schedules stood, comparable across machines of different speed), labelled with its prior; the published anchors of
`bench.quality.ANCHORS` are dashed horizontal lines. The runs score the same 10 000 test images, so the vertical
differences between lines are paired; the ± s.e. in the tables (over the images' spread) is not drawn.
No plotting library: the SVG is written directly, so the README's figure needs nothing beyond the standard library.
"""

import argparse
import json
from html import escape
from pathlib import Path

from bench.quality import ANCHORS
from vae_tfp.families.priors import get as prior_family

# axis -> (label, tick step, default end of the axis)
AXES = {"minutes": ("training minutes", 10.0, 60.0),
        "epochs": ("epochs trained (the cosine schedule's position)", 100.0, 800.0)}
TITLE = "binarized Fashion-MNIST: test log p(x) (k = 5000, all 10 000 test images) against {x}"
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
WIDTH, HEIGHT = 820, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 290, 30, 55  # plot margins, px


def run_label(result: dict) -> str:
    """The prior's words from the registry (up to a colon) and its size: 'VampPrior, 50 pseudo-inputs',
    'mixture of Gaussians (learned), 10 components', 'standard normal N(0, I)'."""
    config = result["config"]
    family = prior_family(config.get("prior", "standard_normal"))
    label = family.words.split(":")[0]
    if family.needs_encoder:
        return f"{label}, {config.get('prior_components')} pseudo-inputs"
    if family.mixture:
        return f"{label}, {config.get('prior_components')} components"
    return label


def curve_points(result: dict, axis: str = "minutes") -> list[tuple[float, float]]:
    """[(training minutes or epochs, test log p(x))] of a `bench.quality` result, in checkpoint order."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(AXES)}")
    at = (lambda c: c["train_seconds"] / 60.0) if axis == "minutes" else (lambda c: c["epochs"])
    return [(at(c), c["test_log_px"]) for c in result["checkpoints"]]


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    first = step * (lo // step + (lo % step > 0))
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


def quality_svg(results: list[dict], anchors=ANCHORS, axis: str = "minutes", x_max: float | None = None,
                title: str = TITLE) -> str:
    """The SVG text: one polyline with markers per result against training minutes (or epochs), anchors as dashed
    lines, axes with ticks and a legend. The x axis runs from 0 to `x_max` (default: 60 minutes, 800 epochs) or
    the last point."""
    curves = [(run_label(r), curve_points(r, axis)) for r in results]
    x_label, x_step, x_end = AXES[axis]
    ys = [y for _, pts in curves for _, y in pts] + [a["log_px"] for a in anchors]
    y_lo, y_hi = min(ys) - 0.3, max(ys) + 0.3
    x_hi = max([x_max or x_end] + [x for _, pts in curves for x, _ in pts])
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x):
        return LEFT + pw * x / x_hi

    def sy(y):
        return TOP + ph * (y_hi - y) / (y_hi - y_lo)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for x in _ticks(0.0, x_hi, x_step):
        out.append(f'<line x1="{sx(x):.1f}" y1="{TOP}" x2="{sx(x):.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{x:g}</text>')
    for y in _ticks(y_lo, y_hi, 0.5):
        out.append(f'<line x1="{LEFT}" y1="{sy(y):.1f}" x2="{LEFT + pw}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.1f}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{LEFT}" y="{TOP - 10}">{escape(title.format(x=x_label.split(" (")[0]))}</text>')
    out.append(f'<text x="{LEFT + pw / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{x_label}</text>')
    out.append(f'<text transform="translate(16 {TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
               'test log p(x), nats</text>')
    for a in anchors:
        y = sy(a["log_px"])
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#777" '
                   'stroke-dasharray="5 4"/>')
        out.append(f'<text x="{LEFT + pw + 6}" y="{y + 4:.1f}" fill="#555">{a["log_px"]:.2f} '
                   f'{escape(a["model"].split(" (")[0].split(", ")[-1])}, published</text>')
    legend_y = TOP + ph - 18 * len(curves)
    for i, (label, pts) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{color}">'
                       f'<title>{escape(label)}: {y:.2f} nats at {x:.1f} {axis}</title></circle>')
        ly = legend_y + 18 * i
        out.append(f'<line x1="{LEFT + pw + 8}" y1="{ly:.1f}" x2="{LEFT + pw + 28}" y2="{ly:.1f}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + pw + 32}" y="{ly + 4:.1f}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="bench.quality JSON files, one line each")
    parser.add_argument("--out", default="docs/quality_curve.svg")
    parser.add_argument("--axis", choices=list(AXES), default="minutes")
    args = parser.parse_args(argv)
    results = [json.loads(Path(p).read_text()) for p in args.results]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(quality_svg(results, axis=args.axis))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
