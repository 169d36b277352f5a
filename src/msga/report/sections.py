"""The report's sections, in the order of the page: what the notebook calls, one cell each. Each
reads reports/ and returns HTML to display; the notebook holds no logic of its own and imports
this module alone (a test checks)."""

from msga.report.closing import consistency, limits, overview, problems, reproduce
from msga.report.comparisons import ablation, anchor, compute_matched, cost_figure, table1, table1_figure
from msga.report.opening import claims, title, verdicts
from msga.report.sensitivity import sweeps
from msga.report.training import curves, per_class, tune

__all__ = ["title", "verdicts", "claims", "table1", "table1_figure", "compute_matched", "cost_figure", "sweeps",
           "ablation", "anchor", "tune", "per_class", "curves", "problems", "consistency", "overview", "limits",
           "reproduce"]  # the order of the page
