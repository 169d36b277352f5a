"""The report page's HTML building blocks: escaping, number formats, tables, embedded figures, the
style sheet and the page around the notebook's output. msga.report's sections are built from these."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

TITLE = "Replication: image classification via joint multi-scale convolution and global attention, on CIFAR-100"

def esc(value) -> str:
    return html.escape(str(value))


def is_missing(value) -> bool:
    """None or NaN: a table cell with no number."""
    return value is None or bool(pd.isna(value))


def fmt_params(n) -> str:
    """3110000 -> '3.11 M'."""
    return "" if is_missing(n) else f"{n / 1e6:.3g} M"


def fmt_flops(f) -> str:
    """Forward FLOPs per image: '0.99 GFLOPs' from 0.1 GFLOPs up, '17.3 MFLOPs' below."""
    if is_missing(f):
        return ""
    return f"{f / 1e9:.2f} GFLOPs" if f >= 1e8 else f"{f / 1e6:.3g} MFLOPs"


def fmt_score(value, digits: int = 3) -> str:
    return "" if is_missing(value) else f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.000"


def fmt_seeds(n) -> str:
    if is_missing(n) or int(n) == 0:
        return "not run"
    return "1 seed (no interval)" if int(n) == 1 else f"{int(n)} seeds"


def diff_span(value) -> str:
    """A difference, coloured: blue above the reference, red below."""
    if is_missing(value):
        return ""
    value = round(value, 3) + 0.0
    side = "over" if value >= 0 else "under"
    return f"<span class='{side}'>{value:+.3f}</span>"


def nowrap(text: str) -> str:
    return f"<span class='nw'>{text}</span>"


def html_table(header: list[str], rows: list[list[str]], caption: str = "", numeric: tuple[int, ...] = (),
           stack: bool = False, name: str = "") -> str:
    """An HTML table in a box that scrolls sideways on a narrow screen; cells are HTML already.
    Columns whose index is in `numeric` are right-aligned numbers. A `stack` table (prose, not
    numbers to compare down a column) turns each row into a card on a phone, every cell under
    its column's name."""
    names = [esc(re.sub(r"<[^>]+>", " ", h).split("  ")[0].strip()) for h in header]
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i in numeric else ''} data-label='{names[i]}'>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    classes = " ".join(c for c in (name, "stack" if stack else "") if c)
    kind = f" class='{classes}'" if classes else ""
    return (f"<div class='table-wrap'><table{kind}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></div>")


def figure_html(reports, name: str, heading: str, caption: str, alt: str) -> str:
    """A figure from reports/figures, embedded as base64 so the page stays one file."""
    path = Path(reports) / "figures" / name
    if not path.exists():
        return f"<h3>{esc(heading)}</h3><p class='note'>The figure {esc(name)} was not produced.</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure><h3>{esc(heading)}</h3><img src='data:image/png;base64,{data}' alt='{esc(alt)}'>"
            f"<figcaption>{caption}</figcaption></figure>")


def figure_with_finding(reports, name: str, heading: str, caption: str, alt: str, finding: str) -> str:
    """A figure (its caption plain text) and, below it, a paragraph of what it shows (HTML)."""
    return figure_html(reports, name, heading, esc(caption), alt) + f"<p>{finding}</p>"


def range_text(values: pd.Series, names: pd.Series) -> str:
    """'from 0.12 (crossvit) to 0.31 (msga)'."""
    values = values.reset_index(drop=True)
    names = names.reset_index(drop=True)
    if values.dropna().empty:
        return "no values"
    low, high = values.idxmin(), values.idxmax()
    return f"from {values[low]:.3f} ({names[low]}) to {values[high]:.3f} ({names[high]})"


# ---------------------------------------------------------------- the page


CSS = """
:root { --ink: #1d2430; --muted: #5b6472; --line: #d8dde5; --held: #d9f2d9; --not-held: #f9d6d5;
        --noise: #fff1c2; --untested: #e9ebef; --over: #1f5fa8; --under: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff; font: 16px/1.55 system-ui, -apple-system, "Segoe UI",
       Roboto, "Helvetica Neue", Arial, sans-serif; overflow-wrap: break-word; }
main { max-width: 68rem; margin: 0 auto; padding: 1rem 1.25rem 4rem; }
h1 { font-size: 1.7rem; line-height: 1.25; margin: 1.2rem 0 0.6rem; }
h2 { font-size: 1.35rem; margin: 2.4rem 0 0.6rem; padding-top: 0.6rem; border-top: 2px solid var(--line); }
h3 { font-size: 1.08rem; margin: 1.6rem 0 0.4rem; }
p, li { max-width: 48rem; }
.lede { font-size: 1.05rem; color: var(--muted); }
.note, figcaption, .sub, caption { color: var(--muted); font-size: 0.88rem; }
.warning { background: #fff1c2; border-left: 4px solid #d9a400; padding: 0.6rem 0.9rem; }
nav ol { columns: 2 14rem; padding-left: 1.4rem; margin: 0.5rem 0; }
nav a { color: var(--over); }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 0.8rem 0; border: 1px solid var(--line);
              border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 0.45rem 0.6rem; border-bottom: 1px solid var(--line); }
th { background: #f3f5f8; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.nw { white-space: nowrap; }
tbody tr:last-child td { border-bottom: none; }
.ci { color: var(--muted); }
.na { color: var(--muted); font-style: italic; }
.over { color: var(--over); font-weight: 600; }
.under { color: var(--under); font-weight: 600; }
.chip { display: inline-block; padding: 0.05rem 0.55rem; border-radius: 999px; font-weight: 600;
        font-size: 0.85rem; white-space: nowrap; }
.chips .chip { margin: 0 0.4rem 0.4rem 0; font-size: 0.95rem; }
.v-held, .a-pass { background: var(--held); }
.v-not-held, .a-fail { background: var(--not-held); }
.v-within-noise, .a-not-comparable { background: var(--noise); }
.v-not-tested, .a-pipeline-only, .a-no-reference { background: var(--untested); }
ul.methods { font-size: 0.92rem; }
figure { margin: 1.4rem 0; }
img { max-width: 100%; height: auto; display: block; }
figcaption { margin-top: 0.3rem; max-width: 48rem; }
pre { background: #f3f5f8; padding: 0.8rem; overflow-x: auto; white-space: pre-wrap; font-size: 0.88rem; }
code { font-size: 0.9em; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: var(--over); }
table.claims td:nth-child(3) { min-width: 21rem; }  /* the evidence: one difference a line */
td:first-child, th:first-child { position: sticky; left: 0; background: #fff; }
th:first-child { background: #f3f5f8; }
@media (max-width: 600px) {
  body { font-size: 15px; }
  table.stack thead { display: none; }
  table.stack tr { display: block; border-bottom: 1px solid var(--line); padding: 0.3rem 0; }
  table.stack td { display: block; border: none; padding: 0.15rem 0.6rem; text-align: left; position: static;
                   min-width: 0 !important; }
  table.stack td::before { content: attr(data-label); display: block; font-size: 0.75rem; font-weight: 600;
                           color: var(--muted); }
  table.stack td:first-child { font-weight: 600; }
  table.stack td:first-child::before { display: none; }
  main { padding: 0.5rem 0.8rem 3rem; }
  h1 { font-size: 1.35rem; }
  th, td { padding: 0.35rem 0.45rem; }
}
"""


def page(body: str) -> str:
    """The report page around nbconvert's body: a title, the style sheet, nothing fetched."""
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{esc(TITLE)}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")
