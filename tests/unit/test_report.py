"""Sections of the report, from aggregate files written by hand: what each one states."""

from __future__ import annotations

import json

import pandas as pd

from msga.report import sections

GRID_SHA = "3f" * 32


def _reports(tmp_path, runs: list[dict]):
    (tmp_path / "context.json").write_text(json.dumps({"grid_sha256": GRID_SHA}))
    pd.DataFrame(runs).to_csv(tmp_path / "runs.csv", index=False)
    return tmp_path


def _run(model: str, seed: int, commit: str | None, experiment: str = "table1") -> dict:
    return {"experiment": experiment, "model": model, "variant": "base", "seed": seed, "git_commit": commit}


def test_how_to_reproduce_gives_the_commands_the_params_hash_and_each_code_commit_once(tmp_path):
    reports = _reports(tmp_path, [_run("msga", 0, "1111111"), _run("msga", 0, "1111111", "heads"),
                                  _run("msga", 1, "2222222+dirty"), _run("convnext", 0, None)])
    html = sections.reproduce(reports).data
    assert "snakemake --cores all --resources gpu=1" in html and "dvc repro" in html
    assert f"<code>{GRID_SHA}</code>" in html and "reports/grid.json" in html
    assert "<code>1111111</code>, <code>2222222+dirty</code>" in html and html.count("1111111") == 1
    assert "the working tree differed from the commit" in html


def test_how_to_reproduce_says_when_no_run_recorded_a_commit(tmp_path):
    html = sections.reproduce(_reports(tmp_path, [_run("msga", 0, None)])).data
    assert "none recorded" in html and "working tree differed" not in html


def test_the_problems_name_each_run_by_its_id(tmp_path):
    pd.DataFrame([{"status": "stale", "model": "msga", "variant": "heads=2", "seed": 1, "experiments": "heads",
                   "reason": "train.epochs: 3 -> 4"}]).to_csv(tmp_path / "problems.csv", index=False)
    html = sections.problems(tmp_path).data
    assert "<code>msga/heads=2/seed1</code>" in html and "train.epochs: 3 -&gt; 4" in html
