"""Public names come from one table per package (``core.lazy.lazy_exports``) and load on first use."""
from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import nn_interpretability as nni
from nn_interpretability.core.lazy import lazy_exports

LAZY_PACKAGES = ["nn_interpretability", "nn_interpretability.concepts", "nn_interpretability.jobs", "nn_interpretability.models", "nn_interpretability.reports", "nn_interpretability.uncertainty"]
EAGER_PACKAGES = [
    "nn_interpretability.attribution",
    "nn_interpretability.core",
    "nn_interpretability.data",
    "nn_interpretability.evaluation",
    "nn_interpretability.feature_visualization",
    "nn_interpretability.plot",
]


def _table_entries():
    for package_name in LAZY_PACKAGES:
        package = importlib.import_module(package_name)
        for name, module in package._LAZY.items():
            yield pytest.param(package_name, name, module, id=f"{package_name}.{name}")


@pytest.mark.parametrize("package_name, name, module", list(_table_entries()))
def test_every_table_name_exists_in_its_module(package_name, name, module):
    package = importlib.import_module(package_name)
    defining = importlib.import_module(module, package_name)
    assert hasattr(defining, name), f"{package_name}: {name!r} is not defined in {defining.__name__}"
    assert getattr(package, name) is getattr(defining, name)


@pytest.mark.parametrize("package_name", LAZY_PACKAGES)
def test_all_and_dir_are_derived_from_the_table(package_name):
    package = importlib.import_module(package_name)
    assert package.__all__ == sorted({*package._LAZY, *package._SUBMODULES})
    assert set(package.__all__) <= set(dir(package))
    for name in package._SUBMODULES:
        assert isinstance(getattr(package, name), types.ModuleType)
    namespace = {}
    exec(f"from {package_name} import *", namespace)
    assert set(package.__all__) <= set(namespace)


@pytest.mark.parametrize("package_name", EAGER_PACKAGES)
def test_every_name_of_an_eager_package_exists(package_name):
    package = importlib.import_module(package_name)
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing


def test_dir_of_the_package_lists_every_public_name():
    listed = set(dir(nni))
    assert set(nni._LAZY) <= listed and set(nni._SUBMODULES) <= listed
    assert {"Saliency", "load_model", "get_method", "plot", "uncertainty", "__version__"} <= listed


def test_the_evidential_loss_is_re_exported_not_copied():
    from nn_interpretability.models import losses
    from nn_interpretability.uncertainty import evidential

    assert nni.uncertainty.evidential_mse_loss is losses.evidential_mse_loss is evidential.evidential_mse_loss
    assert nni.models._LAZY.keys().isdisjoint({"evidential_mse_loss"})  # one public home: nni.uncertainty


def test_submodules_stay_reachable_as_attributes():
    assert nni.models.zoo.load_model is nni.load_model
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        nni.models.no_such_name  # noqa: B018


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_importing_the_package_is_cheap():
    loaded = _loaded_after("import nn_interpretability")
    ours = {m for m in loaded if m.startswith("nn_interpretability.")}
    assert all(m.startswith("nn_interpretability.core") for m in ours), sorted(ours)
    assert not {"matplotlib", "torchvision", "scipy"} & loaded


def test_the_zoo_loads_no_higher_layer():
    loaded = _loaded_after("from nn_interpretability.models import zoo")
    higher = {m for m in loaded if m.split(".")[:2][-1] in {"attribution", "feature_visualization", "uncertainty", "evaluation", "plot", "reports"}}
    assert not higher, sorted(higher)


def test_a_name_listed_twice_is_an_error():
    with pytest.raises(ValueError, match="'a' is listed under both '.x' and '.y'"):
        lazy_exports("pkg", {".x": ["a"], ".y": ["a", "b"]}, {})
    with pytest.raises(ValueError, match="'x' is listed twice"):
        lazy_exports("pkg", {".x": ["x"]}, {}, submodules=["x"])
    with pytest.raises(ValueError, match="already defined"):
        lazy_exports("pkg", {".x": ["a"]}, {"a": 1})
    with pytest.raises(TypeError, match="must be a list"):
        lazy_exports("pkg", {".x": "abc"}, {})


def test_lazy_exports_installs_the_module_protocol():
    namespace: dict = {}
    lazy_exports("nn_interpretability.core", {".hooks": ["borrowed"]}, namespace, submodules=["seed"])
    assert namespace["__all__"] == ["borrowed", "seed"] and namespace["_LAZY"] == {"borrowed": ".hooks"}
    from nn_interpretability.core import hooks, seed

    assert namespace["__getattr__"]("borrowed") is hooks.borrowed and namespace["borrowed"] is hooks.borrowed
    assert namespace["__getattr__"]("seed") is seed
    assert {"borrowed", "seed"} <= set(namespace["__dir__"]())
    with pytest.raises(AttributeError):
        namespace["__getattr__"]("__wrapped__")
