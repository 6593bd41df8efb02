"""environment.yml, constraints.txt and pyproject.toml describe the same installation."""
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_section():
    (pip,) = [d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict)]
    return pip


def _constraints():
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_environment_python_satisfies_requires_python():
    (python,) = [d for d in _environment()["dependencies"] if isinstance(d, str) and d.startswith("python")]
    version = python.split("=", 1)[1]
    assert version in SpecifierSet(_pyproject()["project"]["requires-python"])


def test_environment_lists_every_pyproject_requirement_with_the_same_specifier():
    project = _pyproject()["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pinned = {r.name: r for r in _constraints()}
    listed = {Requirement(r).name: Requirement(r) for r in _pip_section() if not r.startswith("-")}
    for requirement in wanted:
        assert requirement.name in listed, f"{requirement.name} missing from environment.yml"
        expected = pinned.get(requirement.name, requirement).specifier
        assert listed[requirement.name].specifier == expected, requirement.name
    assert set(listed) == {r.name for r in wanted}


def test_pins_satisfy_pyproject_and_environment_installs_the_dev_extra():
    project = _pyproject()["project"]
    # Test-only pins (quantus) are dev extras.
    dependencies = {Requirement(r).name: Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    for pin in _constraints():
        (version,) = [s.version for s in pin.specifier]
        assert version in dependencies[pin.name].specifier
    assert any(re.fullmatch(r'-e "?\.\[dev\]"?', entry) for entry in _pip_section())


def test_makefile_installs_with_the_constraints_and_ci_runs_make_test():
    makefile = (ROOT / "Makefile").read_text()
    assert "--constraint constraints.txt" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme[:15] if line.startswith("make ")]
    assert commands == ["make reports", "make test"]


def test_test_modules_import_only_their_own_folder_and_the_shared_helpers():
    """pytest puts a test file's own folder on ``sys.path`` only once it has collected a file there, so a
    ``from test_x import`` across folders passes or fails with the collection order; shared helpers live
    in ``tests/*.py``, which ``pythonpath`` always provides."""
    tests = ROOT / "tests"
    crossing = []
    for path in tests.rglob("test_*.py"):
        for module in re.findall(r"^(?:from|import) (test_\w+)", path.read_text(), flags=re.M):
            if not (path.parent / f"{module}.py").exists():
                crossing.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not crossing, crossing
