"""Reading reports/, the aggregation's outputs, for the report's sections: a missing or empty file
is an error that says what to run, never an empty table in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from IPython.display import HTML

from msga.infra.errors import Failure
from msga.report.page import esc
from msga.report.prose import INTRO, SECTIONS, UNFINISHED

# The aggregation's files the report reads (the sweeps' data besides, named in context.json).
REPORT_INPUTS = ("context.json", "runs.csv", "table1.csv", "compute_matched.csv", "ablation.csv", "anchor.csv",
                 "tune.csv", "claims.csv", "problems.csv", "consistency.csv", "plots/curves.csv",
                 "plots/per_class_recall.csv", "plots/confusion.csv", "figures")


class ReportInputMissing(Failure):
    pass


def table(reports: str | Path, name: str) -> pd.DataFrame:
    """An aggregate table; a missing or empty file is an error, never an empty table in the report."""
    path = Path(reports) / name
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ReportInputMissing(f"{path} is missing: run `msga aggregate` (or `snakemake`) before the report") from None
    except pd.errors.EmptyDataError:
        raise ReportInputMissing(f"{path} is empty (a damaged aggregate): run `msga aggregate` again") from None


def context(reports: str | Path) -> dict:
    path = Path(reports) / "context.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportInputMissing(f"{path} is missing: run `msga aggregate` (or `snakemake`) before the report") from None


def synthetic(reports) -> bool:
    return context(reports)["dataset"].get("source") == "synthetic"


def distinct_runs(reports) -> pd.DataFrame:
    runs = table(reports, "runs.csv")
    return runs.drop_duplicates(subset=["model", "variant", "seed"]) if not runs.empty else runs


def paper_claims(reports) -> pd.DataFrame:
    """claims.csv's verdicts on the paper's claims: all but the calibration anchor's check, which is
    no claim of the paper (its own section shows it)."""
    rows = table(reports, "claims.csv")
    return rows[rows["block"] != "anchor"]


def section(anchor: str, body: str) -> HTML:
    """A section of the page: its heading, its introduction (prose.INTRO) and `body`."""
    heading = dict(SECTIONS)[anchor]
    return HTML(f"<section id='{anchor}'><h2>{esc(heading)}</h2>{INTRO.get(anchor, '')}{body}</section>")


def unfinished(anchor: str) -> HTML:
    """A section whose runs have not finished: its introduction, and a note that says so."""
    return section(anchor, f"<p class='note'>{UNFINISHED[anchor]}</p>")
