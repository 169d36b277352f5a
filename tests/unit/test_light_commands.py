"""The light commands stay light: validating params, building the grid, reading the code graph,
aggregating, drawing, reporting and telling the status import no torch (nor timm, torchvision,
torchmetrics), so they start in a fraction of a second."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "timm", "torchvision", "torchmetrics")
WORK = {
    "validation and the grid": "from msga.cli import main; from msga.grid.params import load_params; "
                               "from msga.grid.resolve import build_grid; "
                               "build_grid(load_params('params.yaml'))",
    "the code graph": "from msga.grid import codedeps; from msga.models import list_models; "
                      "[codedeps.dvc_stage_files(s) for s in codedeps.DVC_STAGES]; "
                      "[codedeps.run_code_hash(m) for m in list_models()]",
    "aggregation, figures, report, status": "import msga.results.aggregate, msga.results.plots, msga.report, "
                                            "msga.results.runfiles, msga.results.status, msga.timing.forecast, "
                                            "msga.results.claims, msga.results.consistency, msga.results.tuning",
}


@pytest.mark.parametrize("work", list(WORK))
def test_light_work_imports_no_torch(work):
    code = f"import sys; {WORK[work]}; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", (work, out)
