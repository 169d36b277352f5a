"""The code each step runs, from the import graph: every module a step's entry loads is in its set,
an edit reruns the steps that import the file (and no others), and a run depends on its own
model's code and catalog entry, never on another model's."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import msga.models
from msga.grid import codedeps
from msga.grid.codedeps import code_hash, run_code_hash, run_files, step_files
from msga.models import list_models, model_entry
from tests.conftest import REPO

LOADED = ("import json, sys; from {module} import *; {then}; "
          "print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) "
          "if m.__name__.split('.')[0] == 'msga')))")


def _loaded_files(module: str, then: str = "pass") -> set[str]:
    """The msga files that importing `module` (and running `then`) loads, as Python sees it,
    relative to src/msga."""
    code = LOADED.format(module=module, then=then)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {str(Path(f).relative_to(codedeps.PACKAGE)) for f in json.loads(out)}


@pytest.mark.parametrize("step", ["synthesize", "pack", "aggregate", "report", "train"])
def test_every_module_a_steps_entry_loads_is_in_its_files(step):
    for entry in codedeps.STEPS[step]:
        module = "msga." + entry.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        assert _loaded_files(module) - codedeps.NO_EFFECT <= set(step_files(step)), (step, entry)


def test_a_runs_files_cover_what_building_its_model_loads():
    loaded = _loaded_files("msga.models", then="build_model('msga', num_classes=10)")
    assert loaded - {codedeps.CATALOG} - codedeps.NO_EFFECT <= set(run_files("msga"))
    assert "models/layers.py" in run_files("msga")  # imported by models/msga.py: found, not declared


def test_aggregation_hashes_the_modules_it_imports_through_others():
    files = step_files("aggregate")
    for module in ("grid/runs.py", "grid/recipe.py", "models/__init__.py", "models/catalog.py", "grid/resolve.py"):
        assert module in files, module


def test_the_report_notebook_imports_only_code_the_report_step_hashes():
    notebook = json.loads((REPO / "workflow" / "notebooks" / "replication.ipynb").read_text())
    source = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.update(f"{node.module}.{a.name}" for a in node.names)
    files = {codedeps.module_file(codedeps.PACKAGE, m) for m in modules if m.startswith("msga.")}
    assert "report/sections.py" in files and files <= set(step_files("report"))


@pytest.fixture()
def package_copy(tmp_path, monkeypatch):
    """A copy of src/msga that the hashes read instead: edit it freely."""
    copy = tmp_path / "msga"
    shutil.copytree(codedeps.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codedeps, "PACKAGE", copy)
    return copy


def _hashes() -> dict[str, str]:
    steps = {step: code_hash(step_files(step)) for step in codedeps.STEPS if step != "train"}
    return {**steps, **{f"run {m}": run_code_hash(m) for m in list_models()}}


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before if before[k] != after[k])


@pytest.mark.parametrize("module", sorted(codedeps.NO_EFFECT))
def test_editing_a_module_that_cannot_change_results_reruns_nothing(package_copy, module):
    before = _hashes()
    with open(package_copy / module, "a") as f:
        f.write("\n# an edit\n")
    assert _changed(before, _hashes()) == []


def test_editing_the_paths_reruns_every_step_that_imports_them_but_no_data_step(package_copy):
    before = _hashes()
    with open(package_copy / "grid" / "paths.py", "a") as f:
        f.write("\n# an edit\n")
    assert _changed(before, _hashes()) == sorted(["aggregate", "report", *(f"run {m}" for m in list_models())])


def test_editing_the_grid_code_retrains_nothing(package_copy):
    """grid/resolve.py builds the grid: the aggregation runs it, a training job does not."""
    before = _hashes()
    with open(package_copy / "grid" / "resolve.py", "a") as f:
        f.write("\n# an edit\n")
    assert _changed(before, _hashes()) == ["aggregate"]


def test_adding_a_model_to_the_catalog_retrains_no_other_model(package_copy):
    before = _hashes()
    with open(package_copy / "models" / "catalog.py", "a") as f:
        f.write('CATALOG = (*CATALOG, ModelEntry("new_model", "a new row", "resnet"))\n')
    assert _changed(before, _hashes()) == ["aggregate", "report"]  # their tables and text name the models


def test_a_models_own_entry_is_part_of_its_runs_code(monkeypatch):
    before = {m: run_code_hash(m) for m in list_models()}
    entry = dataclasses.replace(model_entry("convnext_flops"), builder="convnext_other")
    monkeypatch.setitem(msga.models._REGISTRY, "convnext_flops", entry)
    assert [m for m in list_models() if run_code_hash(m) != before[m]] == ["convnext_flops"]
