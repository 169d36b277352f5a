"""The report's comparisons of models: Table 1 beside the paper, the compute-matched block, the
ablation and the calibration anchor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from IPython.display import HTML

from msga.grid.experiments import ANCHOR_TOLERANCE, OURS
from msga.grid.metrics import DEFINITIONS, HEADLINE, LABELS
from msga.report import inputs
from msga.report.page import (
    diff_span, esc, figure_html, fmt_flops, fmt_params, fmt_score, fmt_seeds, html_table, is_missing, nowrap,
    range_text,
)
from msga.report.prose import ANCHOR_DEVIATIONS, ANCHOR_MEANING
from msga.results.claims import COST_TOLERANCE


def _score_cell(mean, half, reference=None, difference=None) -> str:
    """Our mean ± the 95% half-width, and below it a reference value (the column's header names
    it) with our difference to it."""
    if is_missing(mean):
        return "<span class='na'>not run</span>"
    cell = f"<span class='nw'><b>{fmt_score(mean)}</b>"
    cell += "</span>" if is_missing(half) else f" <span class='ci'>± {fmt_score(half)}</span></span>"
    if not is_missing(reference):
        cell += f"<br><span class='nw'><span class='sub'>{fmt_score(reference)}</span> {diff_span(difference)}</span>"
    return cell


def _model_rows(df: pd.DataFrame, label_column: str, reference: pd.Series | None = None) -> list[list[str]]:
    """One row per model: who it is; per metric our mean ± 95% half-width over a reference (the
    paper's value, or `reference`: a row of the same table) and the difference; its costs and
    seeds."""
    rows = []
    for r in df.to_dict("records"):
        n = 0 if is_missing(r.get("n_seeds")) else int(r["n_seeds"])
        cells = [f"<b>{esc(r['model'])}</b><br><span class='sub'>{esc(r.get(label_column) or '')}</span>"]
        for m in HEADLINE:
            mean = r.get(f"{m}_mean")
            if reference is None:
                ref, difference = r.get(f"paper_{m}"), r.get(f"diff_{m}")
            elif r["model"] == reference["model"]:  # msga itself: no difference to show
                ref = difference = None
            else:
                ref = reference[f"{m}_mean"]
                difference = None if is_missing(mean) or is_missing(ref) else mean - ref
            cells.append(_score_cell(mean, r.get(f"{m}_ci95"), ref, difference))
        cells += [nowrap(fmt_params(r.get("params"))), nowrap(fmt_flops(r.get("flops_per_image"))), fmt_seeds(n)]
        rows.append(cells)
    return rows


def model_header(reference: str = "paper") -> list[str]:
    """The columns of a table that compares models, results first (what a narrow screen shows
    before it scrolls), each model's costs beside them; under each metric: what its second line
    holds."""
    return ["Model", *(f"{LABELS[m]}<br><span class='sub nw'>ours ± 95%<br>{reference}, difference</span>"
                       for m in HEADLINE), "Params", "FLOPs / image", "Seeds"]


NUMERIC = (1, 2, 3, 4, 5, 6)  # the columns of model_header() that hold numbers


def _model_table_note() -> str:
    return ("<p class='note'>Each score: our mean over seeds ± the half-width of its 95% t-interval (none with one "
            "seed), the paper's value below it, and the difference ours − paper "
            "(<span class='under'>red</span>: below the paper, <span class='over'>blue</span>: above). "
            "Params and FLOPs are counted by this project for one 32×32 image (a multiply-add counts 2 FLOPs). "
            + " ".join(f"{LABELS[m]}: {DEFINITIONS[m]}." for m in HEADLINE) + "</p>")


def table1(reports: str | Path) -> HTML:
    t1 = inputs.table(reports, "table1.csv")
    table = html_table(model_header(), _model_rows(t1, "paper_row"), numeric=NUMERIC)
    return inputs.section("table1", table + _model_table_note())


def table1_figure(reports: str | Path) -> HTML:
    t1 = inputs.table(reports, "table1.csv")
    ran = t1.dropna(subset=["acc_mean"])
    alt = (f"Dot plot in four panels, AUC, ACC, Precision and Recall on a 0 to 1 axis, one row per model of Table 1. "
           f"This replication's ACC runs {range_text(ran['acc_mean'], ran['model'])}; the paper's ACC runs "
           f"{range_text(t1['paper_acc'], t1['model'])}.")
    caption = ("Table 1 as a picture: filled dots are our means, the bars their 95% t-intervals over seeds (none with "
               "one seed); open diamonds are the paper's values. The axis spans the whole 0 to 1 range.")
    return HTML(figure_html(reports, "table1.png", "Figure: Table 1, ours beside the paper", caption, alt))


def ranking(df: pd.DataFrame, key: str = "model") -> list[str]:
    """Models (or their architectures) by mean ACC, lowest first; models that did not run left out."""
    ran = df.dropna(subset=["acc_mean"])
    return list(ran.sort_values("acc_mean")[key])


def ranking_text(t1: pd.DataFrame, matched: pd.DataFrame) -> str:
    """Whether the order of the architectures by mean ACC is the same at matched parameters and at
    matched compute, from the numbers."""
    at_params = ranking(t1)
    if matched.empty or len(at_params) < 2:
        return "The compute-matched block has no finished runs yet: no ranking to compare."
    at_compute = ranking(matched, "paper_model")
    common = [m for m in at_params if m in at_compute]
    same = [m for m in at_compute if m in common] == common
    order = " < ".join
    text = (f"By mean ACC, lowest first: at matched parameters {order(at_params)}; at matched compute (each "
            f"architecture named by its Table 1 model) {order(at_compute)}. ")
    if len(common) < 2:
        return text + "Too few architectures ran in both blocks to compare their order."
    if same:
        text += f"The order of the {len(common)} architectures that ran in both blocks survives matched compute."
    else:
        text += f"The order of the {len(common)} architectures that ran in both blocks changes at matched compute."
    if OURS in at_params and OURS in at_compute:
        text += (f" {OURS} ranks {len(at_params) - at_params.index(OURS)} of {len(at_params)} at matched parameters "
                 f"and {len(at_compute) - at_compute.index(OURS)} of {len(at_compute)} at matched compute.")
    return text + " These are means; the paired tests below say which differences these seeds resolve."


def matched_verdicts_text(verdicts: pd.DataFrame, block: str = "compute_matched") -> str:
    """The paired verdicts on the compute-matched runs, per claim and metric, from claims.csv."""
    rows = verdicts[verdicts["block"] == block] if not verdicts.empty else verdicts
    if rows.empty:
        return "No claim was tested on the compute-matched runs."
    by_claim: dict[str, list[str]] = {}
    for r in rows.to_dict("records"):
        by_claim.setdefault(r["kind"], []).append(f"{LABELS[r['metric']]} {r['verdict']}")
    found = "; ".join(f"{stem}: {', '.join(parts)}" for stem, parts in by_claim.items())
    return f"Paired tests on the compute-matched runs, verdicts of their own among the claims above: {found}."


def compute_matched(reports: str | Path) -> HTML:
    matched, t1 = inputs.table(reports, "compute_matched.csv"), inputs.table(reports, "table1.csv")
    if matched.empty:
        return inputs.unfinished("compute")
    table = html_table(model_header(), _model_rows(matched, "paper_row"), numeric=NUMERIC)
    tests = matched_verdicts_text(inputs.table(reports, "claims.csv"))
    return inputs.section("compute", table + f"<p><b>Ranking.</b> {esc(ranking_text(t1, matched))}</p>"
                                        f"<p><b>Tested.</b> {esc(tests)}</p>")


def cost_figure(reports: str | Path) -> HTML:
    t1, matched = inputs.table(reports, "table1.csv"), inputs.table(reports, "compute_matched.csv")
    both = pd.concat([t1, matched], ignore_index=True).dropna(subset=["acc_mean"]).drop_duplicates(subset=["model"])
    points = "; ".join(f"{r['model']}: ACC {r['acc_mean']:.3f} at {fmt_flops(r['flops_per_image'])} and "
                       f"{fmt_params(r['params'])} parameters" for r in both.to_dict("records"))
    alt = ("Two scatter plots sharing the ACC axis: ACC against forward GFLOPs per image, and ACC against parameters "
           f"(millions), both on log scales. {points or 'No finished runs.'}")
    caption = ("Circles: Table 1's models (matched in parameters); triangles: the compute-matched baselines; the "
               "colour is the architecture, and an arrow joins its two sizes. Bars: 95% t-intervals over seeds "
               "(none with one seed).")
    return HTML(figure_html(reports, "cost_accuracy.png", "Figure: accuracy against compute and against parameters",
                        caption, alt))


def ablation(reports: str | Path) -> HTML:
    abl = inputs.table(reports, "ablation.csv")
    if abl.empty:
        return inputs.unfinished("ablation")
    full = abl[abl["model"] == OURS]
    reference = full.iloc[0] if not full.empty else None
    table = html_table(model_header(OURS), _model_rows(abl, "role", reference), numeric=NUMERIC)
    note = ("<p class='note'>Each score: mean over seeds ± the half-width of its 95% t-interval (none with one "
            "seed); below it msga's value and the difference to it (<span class='under'>red</span>: below msga). "
            "The claim that the components are complementary (msga above msga_local and msga_global on ACC), and "
            "msga against each cost-matched control, are tested among the claims above.</p>")
    note = f"<p>{esc(cost_matching_text(abl))}</p>" + note
    rows = abl.dropna(subset=["acc_mean"])
    alt = ("Grouped bar chart on a 0 to 1 axis of AUC, ACC, Precision and Recall for the ablation's models. ACC: "
           + ", ".join(f"{m} {v:.3f}" for m, v in zip(rows["model"], rows["acc_mean"])) + ".")
    figure = figure_html(reports, "ablation.png", "Figure: ablation",
                     "Bars: means over seeds; whiskers: 95% t-intervals (none with one seed). The axis starts at 0, "
                     "so bar lengths compare.", alt)
    return inputs.section("ablation", table + note + figure)


def cost_matching_text(abl: pd.DataFrame, full: str = OURS) -> str:
    """Which of the ablation's comparisons with the full model are cost-matched, from the costs."""
    if "cost_matched" not in abl:
        return ""
    others = abl[(abl["model"] != full) & abl["params_ratio"].notna() & abl["flops_ratio"].notna()]
    if others.empty:
        return "The costs of the ablation's models are not known, so no comparison can be called cost-matched."

    def listed(rows):
        return ", ".join(f"{r['model']} ({r['params_ratio']:.2f}× {full}'s params, {r['flops_ratio']:.2f}× its FLOPs)"
                         for r in rows.to_dict("records"))

    matched, confounded = others[others["cost_matched"].astype(bool)], others[~others["cost_matched"].astype(bool)]
    parts = []
    if not matched.empty:
        parts.append(f"Cost-matched (params and FLOPs within {COST_TOLERANCE:.0%} of {full}'s): {listed(matched)}: a "
                     "difference from msga there is one of the component it lacks.")
    if not confounded.empty:
        parts.append(f"Not cost-matched: {listed(confounded)}: {full} beating these may be a matter of size as much as "
                     "of the component.")
    return " ".join(parts)


def anchor(reports: str | Path) -> HTML:
    df = inputs.table(reports, "anchor.csv")
    if df.empty:
        return inputs.unfinished("anchor")
    rows, meanings = [], []
    for r in df.to_dict("records"):  # each anchor model with its check (msga.results.claims.anchor_check)
        status = r["status"]
        literature = ("none" if is_missing(r["reference_acc"]) else
                      f"{fmt_score(r['reference_acc'])}<br><span class='sub'>{int(r['reference_epochs'])} epochs, "
                      f"{esc(r['reference_source'])}</span>")
        difference = ("" if is_missing(r["difference"])
                      else diff_span(r["difference"]) if status in ("pass", "fail")  # colour only a real check
                      else f"<span class='sub'>{round(r['difference'], 3) + 0.0:+.3f}</span>")
        rows.append([f"<b>{esc(r['model'])}</b>", _score_cell(r["acc_mean"], r["acc_ci95"]), literature, difference,
                     f"<span class='chip a-{status.replace(' ', '-')}'>{status}</span>",
                     f"{int(r['epochs'])}", fmt_seeds(r["n_seeds"]), nowrap(fmt_params(r["params"])),
                     nowrap(fmt_flops(r["flops_per_image"]))])
        meanings.append(f"<p><b>{esc(r['model'])}: {status}.</b> {ANCHOR_MEANING.get(status, '')}</p>")
    table = html_table(["Model", "ACC (ours)", "Literature ACC", "Ours − literature",
                    f"Within ±{ANCHOR_TOLERANCE * 100:.0f} points?", "Epochs", "Seeds", "Params", "FLOPs / image"],
                   rows, numeric=(1, 2, 3, 5, 7, 8))
    deviations = [d for m in df["model"] for d in ANCHOR_DEVIATIONS.get(m, ())]
    listed = ("<p><b>Where the recipe differs from its reference</b> (all else follows its code: optimizer, rate, "
              "schedule, weight decay on every parameter, crop, flip and a rotation of up to 15°):</p><ul>"
              + "".join(f"<li>{esc(d)}</li>" for d in deviations) + "</ul>" if deviations else "")
    return inputs.section("anchor", table + "".join(meanings) + listed)
