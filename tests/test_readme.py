"""The README's library example runs as written."""

import re
from pathlib import Path


def test_library_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## The library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})  # our own documentation, not user input
    printed = capsys.readouterr().out.splitlines()
    assert "MultivariateNormalDiag" in printed[0] and printed[1] == "(3, 50)" and printed[2] == "(4, 2)"
    elbo, iwae, log_px, exact = map(float, printed[3].split())
    assert elbo < iwae + 0.5 and elbo < log_px < exact + 0.5
