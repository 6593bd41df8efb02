"""The package's layers import only from their own layer or the layers below, never back up.

    core  <-  data, models  <-  attribution, feature_visualization  <-  uncertainty, evaluation
          <-  plot, reports, jobs  <-  nn_interpretability/__init__.py (the facade, which may import anything)

Every module is parsed with ``ast`` (nothing is imported): ``import`` and ``from ... import`` at any
depth (inside functions too), ``import_module``/``__import__`` calls whose target is written as a
literal (or an f-string with a literal package prefix), and the tables passed to ``lazy_exports``.
No module of the package may import ``tests`` or the notebooks (nor their helper modules, which the
test configuration puts on ``sys.path``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "nn_interpretability"
PACKAGE_DIR = ROOT / PACKAGE

LAYERS = {
    "core": 0,
    "targets": 0,  # the user-facing name of core.targets
    "data": 1,
    "models": 1,
    "attribution": 2,
    "feature_visualization": 2,
    "concepts": 2,
    "uncertainty": 3,
    "evaluation": 3,
    "plot": 4,
    "reports": 4,
    "jobs": 4,  # dataset-scale runs of the methods and evaluation
}
FACADE = max(LAYERS.values()) + 1  # the top-level package's __init__.py
LAYER_NAMES = {0: "core", 1: "data/models", 2: "methods", 3: "uncertainty/evaluation", 4: "plot/reports/jobs", FACADE: "facade"}


def _forbidden_top_names() -> set[str]:
    """``tests``, ``notebooks`` and every module or package under them (importable via pytest's pythonpath)."""
    names = {"tests", "notebooks", "conftest"}
    for folder in (ROOT / "tests", ROOT / "notebooks"):
        for path in folder.rglob("*"):
            if path.suffix in {".py", ".ipynb"} or (path.is_dir() and not path.name.startswith((".", "__"))):
                names.add(path.stem if path.is_file() else path.name)
    return names


FORBIDDEN = _forbidden_top_names()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """The layer of a module of the package; ``None`` for a module no layer is assigned to."""
    parts = module.split(".")
    if parts == [PACKAGE]:
        return FACADE
    return LAYERS.get(parts[1])


def _is_package_module(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve_relative(name: str, package: str) -> str | None:
    """``import_module(name, package)`` resolution; ``None`` when it escapes the package."""
    if not name.startswith("."):
        return name
    level = len(name) - len(name.lstrip("."))
    base = package.split(".")
    if level - 1 >= len(base):
        return None
    base = base[: len(base) - (level - 1)]
    rest = name[level:]
    return ".".join(base + ([rest] if rest else []))


def _module_level_values(tree: ast.Module) -> dict[str, ast.expr]:
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = node.value
    return values


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def imported_modules(source: str, module: str, is_package: bool):
    """Yield ``(line, imported module)`` for every import of ``source``, the text of ``module``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    module_values = _module_level_values(tree)

    def value(node: ast.expr) -> ast.expr:
        return module_values.get(node.id, node) if isinstance(node, ast.Name) else node

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative("." * node.level + (node.module or ""), package) if node.level else node.module
            if base is None:
                yield node.lineno, "." * node.level + (node.module or "")
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if _is_package_module(candidate) else base
        elif isinstance(node, ast.Call) and _call_name(node) in {"import_module", "__import__"} and node.args:
            target, anchor = node.args[0], node.args[1] if len(node.args) > 1 else None
            anchor = next((k.value for k in node.keywords if k.arg == "package"), anchor)
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                name = target.value
            elif isinstance(target, ast.JoinedStr) and target.values and isinstance(target.values[0], ast.Constant):
                # Only the literal prefix is known: check the package it reaches into.
                name = target.values[0].value.rpartition(".")[0] or ("." if target.values[0].value.startswith(".") else "")
                if not name:
                    continue
            else:
                continue  # a generic mechanism (core.lazy); its tables are checked below
            if name.startswith("."):
                anchored = isinstance(anchor, ast.Name) and anchor.id in {"__name__", "__package__"}
                if not anchored:
                    continue
                name = _resolve_relative(name, module if anchor.id == "__name__" else package)
            yield node.lineno, name
        elif isinstance(node, ast.Call) and _call_name(node) == "lazy_exports":
            args = {i: a for i, a in enumerate(node.args)} | {k.arg: k.value for k in node.keywords}
            table = value(args.get(1, args.get("table", ast.Constant(None))))
            if isinstance(table, ast.Dict):
                for key in table.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        yield key.lineno, _resolve_relative(key.value, module)
            submodules = value(args.get("submodules", ast.Tuple(elts=[])))
            for element in getattr(submodules, "elts", []):
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    yield element.lineno, f"{module}.{element.value}"


def violations(source: str, path: str, module: str, is_package: bool) -> list[str]:
    """Every import of ``source`` (the text of ``module``, at ``path``) that breaks the layering."""
    own = layer_of(module)
    found = []
    for line, target in imported_modules(source, module, is_package):
        if target is None:
            continue
        top = target.split(".")[0]
        if top in FORBIDDEN:
            found.append(f"{path}:{line}: imports {target!r} from the tests or notebooks")
        elif top == PACKAGE and own is not None:
            theirs = layer_of(target)
            if theirs is None:
                found.append(f"{path}:{line}: imports {target!r}, which is in no layer (add it to LAYERS)")
            elif theirs > own:
                found.append(
                    f"{path}:{line}: {LAYER_NAMES[own]} module {module!r} imports {target!r} "
                    f"from the higher layer {LAYER_NAMES[theirs]}"
                )
    return found


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_is_in_a_layer():
    unplaced = [str(p.relative_to(ROOT)) for p in package_files() if layer_of(module_name(p)) is None]
    assert not unplaced, f"modules in no layer (add their subpackage to LAYERS): {unplaced}"


def test_no_module_imports_a_higher_layer_or_the_tests():
    found = []
    for path in package_files():
        found += violations(path.read_text(), str(path.relative_to(ROOT)), module_name(path), path.name == "__init__.py")
    assert not found, "layering violations:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..uncertainty.evidential import evidential_mse_loss\n", "nn_interpretability.uncertainty.evidential"),
        ("def f():\n    from .. import __version__\n", "'nn_interpretability' from the higher layer facade"),
        ("def f():\n    from nn_interpretability.plot import grid\n", "nn_interpretability.plot"),
        ("import nn_interpretability.attribution.gradient\n", "nn_interpretability.attribution.gradient"),
        ("from importlib import import_module\nimport_module('nn_interpretability.reports')\n", "reports"),
        ("import importlib\nimportlib.import_module(f'nn_interpretability.{name}')\n", "facade"),
        ("from ..evaluation import sanity\n", "nn_interpretability.evaluation.sanity"),
        ("from toy_models import seeded\n", "tests or notebooks"),
    ],
)
def test_the_checker_catches_upward_imports(source, expected):
    (found,) = violations(source, "nn_interpretability/models/zoo.py", "nn_interpretability.models.zoo", False)
    assert found.startswith("nn_interpretability/models/zoo.py:") and expected in found


def test_the_checker_reads_lazy_export_tables():
    source = "_EXPORTS = {'.mnist': ['MNISTCNN'], '..uncertainty': ['x']}\nlazy_exports(__name__, _EXPORTS, globals())\n"
    (found,) = violations(source, "nn_interpretability/models/__init__.py", "nn_interpretability.models", True)
    assert found.startswith("nn_interpretability/models/__init__.py:1:") and "'nn_interpretability.uncertainty'" in found
    # Exported submodules are the package's own: a lower package's submodule is in its layer.
    source = "lazy_exports(__name__, {}, globals(), submodules=('zoo',))\n"
    assert violations(source, "nn_interpretability/models/__init__.py", "nn_interpretability.models", True) == []


def test_the_checker_allows_imports_down_and_sideways():
    source = (
        "from ..core.hooks import borrowed\nfrom ..data.mnist import load_mnist\nfrom . import training\n"
        "import torch\nfrom importlib import import_module\nimport_module(name, package)\n"
    )
    assert violations(source, "zoo.py", "nn_interpretability.models.zoo", False) == []
    facade = "from . import plot\nlazy_exports(__name__, {'.reports': ['save_figure']}, globals(), submodules=('plot',))\n"
    assert violations(facade, "__init__.py", PACKAGE, True) == []
