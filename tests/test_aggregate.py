"""Aggregation with nothing or little finished, and the report's refusal of missing inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from msga.cli import main
from msga.outputs import aggregate_outputs
from tests.conftest import REPO

DEMO = str(REPO / "workflow" / "demo.yaml")
PAPER = str(REPO / "workflow" / "resources" / "paper_table1.csv")


def _exit(argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_aggregate_with_no_finished_run_writes_every_output_and_names_every_run(tmp_path, capsys):
    from msga.config import build_grid, load_params

    runs = len(build_grid(load_params(DEMO)).runs)
    out = tmp_path / "reports"
    assert main(["aggregate", "--params", DEMO, "--runs", str(tmp_path / "runs"), "--out", str(out), "--paper", PAPER]) == 0
    for name in aggregate_outputs():
        assert (out / name.removeprefix("reports/")).is_file(), name
    problems = pd.read_csv(out / "problems.csv")
    assert len(problems) == runs and set(problems["status"]) == {"missing"}
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["verdict"]) == {"not tested"}
    context = json.loads((out / "context.json").read_text())
    assert context["runs_expected"] == runs and "could be tested" in context["summary"]
    assert f"aggregated 0 of {runs} runs" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["table1.csv", "context.json", "claims.csv"])
def test_the_report_refuses_a_missing_aggregate_file(tmp_path, capsys, missing):
    out = tmp_path / "reports"
    main(["aggregate", "--params", DEMO, "--runs", str(tmp_path / "runs"), "--out", str(out), "--paper", PAPER])
    (out / missing).unlink()
    assert _exit(["report", "--reports", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out / missing} is missing" in err and "msga aggregate" in err
    assert not (out / "replication.html").exists()
