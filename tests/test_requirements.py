"""The app starts from a plain `pip install -r requirements.txt` (what the Dockerfile and Streamlit Community Cloud
run):
every import in vae_tfp/ and dashboard/ is the standard library, the project itself, or a package requirements.txt
names, unless it sits in a `try: ... except ImportError` (an optional extra). The Dockerfile copies what the app
needs, and .dockerignore keeps none of it out."""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "sklearn": "scikit-learn", "tensorflow_probability": "tensorflow-probability",
                "tf_keras": "tf-keras"}


def _required() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>!~\[; ]", line)[0].lower())
    return names


def _guarded(node, parents) -> bool:
    """True when `node` is inside the body of a try whose handlers catch ImportError."""
    for parent in parents:
        if isinstance(parent, ast.Try) and any(
                h.type is not None and "ImportError" in ast.unparse(h.type) for h in parent.handlers) \
                and any(node is n or any(node is m for m in ast.walk(n)) for n in parent.body):
            return True
    return False


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    stack = [(tree, [])]
    while stack:
        node, parents = stack.pop()
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], _guarded(node, parents), node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], _guarded(node, parents), node.lineno
        for child in ast.iter_child_nodes(node):
            stack.append((child, parents + [node]))


def test_every_import_of_the_app_is_in_requirements_txt():
    required, missing = _required(), []
    assert {"streamlit", "tensorflow", "tensorflow-probability", "numpy"} <= required
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()  # the project itself, for dashboard/app.py
    files = sorted((ROOT / "vae_tfp").rglob("*.py")) + sorted((ROOT / "dashboard").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        for name, guarded, line in _imports(path):
            if guarded or name in sys.stdlib_module_names or name in ("vae_tfp", "dashboard", "__future__"):
                continue
            if DISTRIBUTION.get(name, name).lower().replace("_", "-") not in required:
                missing.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not missing, "not in requirements.txt: " + "; ".join(missing)


def test_the_guard_is_recognised(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("try:\n    import nothing_here\nexcept ImportError:\n    pass\nimport other\n")
    assert sorted((n, g) for n, g, _ in _imports(path)) == [("nothing_here", True), ("other", False)]


def test_the_image_copies_what_the_app_runs():
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in ("vae_tfp", "dashboard", ".streamlit", "requirements.txt", "pyproject.toml"):
        assert needed in dockerfile and needed not in ignored
    assert "FROM python:3.11-slim" in dockerfile and "USER app" in dockerfile and "VOLUME /data" in dockerfile
    assert "/_stcore/health" in dockerfile and "${PORT:-8501}" in dockerfile and "VAE_TFP_MODE=shared" in dockerfile
    assert "streamlit run dashboard/app.py" in dockerfile
