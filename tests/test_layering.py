"""The package's structure: which layer may import which, no import circles, and a regular
(non-editable) install that runs from any folder."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# Each layer of `vit` may import itself and the layers listed (docs/design.md).
MAY_IMPORT = {
    "errors": set(),
    "files": set(),
    "progress": set(),
    "download": {"errors", "files"},
    "config": {"errors"},
    "serialization": {"errors", "files"},
    "kernels": {"cpu"},
    "models": {"errors", "files", "serialization", "download", "kernels"},
    "data": {"errors", "files", "config", "progress", "download"},
    "viz": set(),
    "analysis": {"errors"},
    "engine": {"errors", "files", "progress", "download", "cpu", "kernels", "config",
               "serialization", "models", "data", "viz", "analysis"},
    "app": {"errors", "files", "progress", "download", "cpu", "kernels", "config",
            "serialization", "models", "data", "viz", "analysis", "engine"},
    "cli": {"errors", "files", "progress", "download", "cpu", "kernels", "config",
            "serialization", "models", "data", "viz", "analysis", "engine", "app"},
    "cpu": set(),
    "vit": {"cpu", "errors", "config", "models"},  # the package's own __init__
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules) -> set:
    """The `vit` modules and packages a file imports, anywhere in it (lazy imports count)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    # a package a module lives in is imported already (`from .. import cpu` imports vit.cpu)
    found = {m for m in found if m in modules and m != name and not name.startswith(m + ".")}
    # importing vit.data.x first runs vit.data's __init__, unless it is our own package
    for target in list(found):
        parts = target.split(".")
        for depth in range(1, len(parts)):
            ancestor = ".".join(parts[:depth])
            if ancestor in modules and not name.startswith(ancestor + ".") and ancestor != name:
                found.add(ancestor)
    return found


def _graph():
    files = {_module_name(p): p for p in (ROOT / "vit").rglob("*.py")}
    return {name: _imports(path, files) for name, path in files.items()}


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else "vit"


def test_each_layer_imports_only_the_layers_below_it():
    broken = [f"{module} imports {target}" for module, targets in _graph().items()
              for target in targets
              if _layer(target) != _layer(module)
              and _layer(target) not in MAY_IMPORT[_layer(module)]]
    assert not broken, broken


def test_there_is_no_import_circle():
    graph = _graph()
    circles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, circles


def test_a_tool_is_a_thin_entry_over_vit_cli():
    """`tools/*.py` import `vit.cli` and nothing else of the package (docs/design.md)."""
    broken = []
    for path in sorted((ROOT / "tools").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            broken += [f"{path.name} imports {name}" for name in names
                       if name.split(".")[0] == "vit" and name != "vit.cli"
                       and not name.startswith("vit.cli.")]
    assert not broken, broken


def test_every_layer_is_known():
    assert {_layer(m) for m in _graph()} <= set(MAY_IMPORT)


@pytest.mark.skipif(not shutil.which("git") and not (ROOT / ".git").exists(), reason="needs git")
def test_a_wheel_installed_elsewhere_runs_from_another_folder(tmp_path):
    """`pip install .` (not editable): the default config ships inside the package."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "output", "data", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache"))
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source],
                   check=True, capture_output=True)
    wheel = next(wheels.glob("vit_paddle-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True,
                   capture_output=True)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import vit; print(vit.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target)), where  # the wheel's copy, not this checkout
    for data in ("models/imagenet1k_classes.txt", "app/messages.yaml", "app/glossary.yaml"):
        assert (target / "vit" / data).is_file(), data  # the package's own data files
    result = subprocess.run([str(target / "bin" / "vit-train"), "--stats-only",
                             "-o", "output.run_name=report"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Data set 'digits': 10 classes, 1,797 images" in result.stdout
    assert (elsewhere / "output" / "report" / "stats.json").is_file()
