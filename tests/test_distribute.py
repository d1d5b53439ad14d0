"""MirroredStrategy over two logical CPU devices trains like one device (in a process of its own)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mirrored_strategy_matches_one_device():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/scripts/mirrored_vs_single.py"), "6"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    single, mirrored = out["single"], out["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert single["steps"] == mirrored["steps"] == 6 * 12
    # same initial weights, same first batch: the loss (batch mean) differs only by the z samples drawn
    assert abs(single["first_loss"] - mirrored["first_loss"]) < 0.5
    # gradients averaged (not summed) over replicas: the same learning curve, within run-to-run noise
    assert abs(single["test_elbo"] - mirrored["test_elbo"]) < 1.5, out
