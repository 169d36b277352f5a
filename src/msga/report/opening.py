"""The top of the report: its title and contents, the verdict on the paper's claims, each claim tested."""

from __future__ import annotations

import re
from pathlib import Path

from IPython.display import HTML

from msga.report import inputs
from msga.report.page import TITLE, esc, fmt_score, html_table
from msga.report.prose import PAPER, SECTIONS

VERDICTS = ("held", "not held", "within noise", "not tested")  # claims.py's words, in the summary's order


def title(reports: str | Path) -> HTML:
    """The title, what the numbers come from, the synthetic-data warning, the contents."""
    ctx, runs = inputs.context(reports), inputs.distinct_runs(reports)
    seeds = sorted(runs["seed"].unique().tolist()) if not runs.empty else []
    data = ("the synthetic offline fixture" if inputs.synthetic(reports) else "CIFAR-100 (50,000 training and 10,000 test images)")
    lines = [f"<h1>{esc(TITLE)}</h1>",
             f"<p class='lede'>A replication of <i>{esc(PAPER)}</i>: its Table 1, its Figure 2 and the factors its "
             f"abstract names, retrained from scratch on {data}. {len(runs)} of the grid's {ctx['runs_expected']} "
             f"training runs are in this report (seeds {', '.join(map(str, seeds)) or 'none'}).</p>"]
    if inputs.synthetic(reports):
        lines.append("<p class='warning'><b>These results come from the SYNTHETIC offline fixture, not from "
                     "CIFAR-100.</b> They show that the pipeline runs end to end; they say nothing about the paper's "
                     "claims.</p>")
    items = "".join(f"<li><a href='#{a}'>{esc(h)}</a></li>" for a, h in SECTIONS)
    lines.append(f"<nav aria-label='Contents'><ol>{items}</ol></nav>")
    return HTML("".join(lines))


def verdict_counts(reports) -> dict[str, int]:
    rows = inputs.paper_claims(reports)
    return {v: int((rows["verdict"] == v).sum()) for v in VERDICTS}


def verdicts(reports: str | Path) -> HTML:
    """The verdict summary, first: counts per verdict and the paragraph computed from the tests."""
    counts = verdict_counts(reports)
    chips = "".join(f"<span class='chip v-{v.replace(' ', '-')}'>{n} {v}</span>" for v, n in counts.items())
    return inputs.section("verdict", f"<p class='chips'>{chips}</p><p>{esc(inputs.context(reports)['summary'])}</p>")


def _sentences(text: str) -> list[str]:
    """Split prose into sentences at '. ' before a capital letter (abbreviations here have none)."""
    return [s.strip() for s in re.split(r"(?<=[.)])\s+(?=[A-Z])", text) if s.strip()]


def _keep_intervals(text: str) -> str:
    """An interval "[-0.01, +0.02]" never breaks across lines."""
    return re.sub(r"(\[[^\]]*\])", r"<span class='nw'>\1</span>", text)


def claims(reports: str | Path) -> HTML:
    """Each claim, its verdict (coloured), its evidence and the smallest difference the seeds
    could detect; then how the verdicts were reached."""
    df = inputs.paper_claims(reports)
    rows = [[esc(r["claim"]), f"<span class='chip v-{str(r['verdict']).replace(' ', '-')}'>{esc(r['verdict'])}</span>",
             "<br>".join(_keep_intervals(esc(part)) for part in str(r["evidence"]).split("; ")),  # a line each
             fmt_score(r["min_detectable"], 4) or "&ndash;"] for r in df.to_dict("records")]
    table = html_table(["Claim of the paper", "Verdict", "Evidence (differences: mean [95% interval])",
                    "Smallest detectable difference"], rows, numeric=(3,), stack=True, name="claims")
    ctx = inputs.context(reports)
    sentences = _sentences(ctx["methods"])
    methods = (f"<p><b>How the verdicts were reached</b> (alpha = {ctx['alpha']}): {esc(sentences[0])}</p>"
               "<ul class='methods'>" + "".join(f"<li>{esc(s)}</li>" for s in sentences[1:]) + "</ul>")
    note = ("<p class='note'>A smallest detectable difference is the difference the test would find with 80% power "
            "at these seeds' spread: a claim within noise with a large one was barely tested.</p>")
    return inputs.section("claims", table + note + methods)
