"""What the report notebook calls: each function reads reports/ and returns something to display.

The notebook (workflow/notebooks/replication.ipynb) holds no logic of its own; papermill runs it
and `render` turns it into one self-contained HTML page: no code cells, no script and no request
to the network, its figures embedded, its tables scrolling inside their own boxes on a narrow
screen. Functions that compute return numbers; the section functions turn them into HTML.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML

from msga.claims import COST_TOLERANCE
from msga.errors import Failure
from msga.io import atomic_output
from msga.metrics import DEFINITIONS, HEADLINE, LABELS
from msga.report_page import (
    TITLE, diff_span, esc, figure_html, fmt_flops, fmt_params, fmt_score, fmt_seeds, html_table, is_missing, nowrap,
    page, range_text,
)
from msga.runs import Run

PAPER = "Image Classification via Joint Multi-Scale Convolution and Global Attention Modeling"
SECTIONS = (  # (anchor, heading): the order of the page and of its contents list
    ("verdict", "Verdict"),
    ("claims", "Claims, tested"),
    ("table1", "Table 1"),
    ("compute", "Table 1 at matched compute"),
    ("sweeps", "Sensitivity: heads, batch size, noise"),
    ("ablation", "Ablation"),
    ("anchor", "Calibration anchor"),
    ("tune", "Learning rates, tuned"),
    ("per-class", "msga per class"),
    ("curves", "Training curves"),
    ("problems", "Runs not in the tables"),
    ("consistency", "Is the paper's Table 1 consistent?"),
    ("run", "What was run"),
    ("limits", "Limits"),
    ("reproduce", "How to reproduce"),
)
VERDICTS = ("held", "not held", "within noise", "not tested")  # claims.py's words, in the summary's order
# The anchor's literature value: CIFAR-100 top-1 of ResNet-18 trained from scratch by its recipe.
ANCHOR_REFERENCE = {"resnet18": {"acc": 0.756, "epochs": 200, "source": "weiaicunzai/pytorch-cifar100"}}
# Where the anchor's run cannot follow its reference's code (train.py, utils.py of the repository):
# everything else of the recipe is params.yaml's train.per_model entry, checked by a test.
ANCHOR_DEVIATIONS = {"resnet18": (
    "The reference's 75.6% may not be read the way ours is: its train.py keeps as 'best' the weights of the epoch "
    "after the 120th with the highest test accuracy, and its README tests a weights file, so its number may rest "
    "on a choice made on the test set; ours is the last epoch's, and nothing here is chosen on the test set.",
    "Its code drops the learning rate at the start of epochs 60, 120 and 160 (one epoch before its README's "
    "table says); ours after 60, 120 and 160 full epochs, as the table says.",
    "Its README says Nesterov momentum; its code, which ours follows, uses plain momentum.",
    "Its epochs end with a partial batch (50,000 is not a multiple of 128); ours drop it (390 full steps, not "
    "391), and train under bf16 autocast on a GPU where it trains in float32.",
)}
# Within this many points of top-1 the anchor passes. A margin this project chose, not one derived
# from a measured spread: the reference reports one run and no spread, and the anchor runs one
# seed by default. The report says so beside the verdict.
ANCHOR_TOLERANCE = 0.02
# The aggregation's files the report reads (the sweeps' data besides, named in context.json).
REPORT_INPUTS = ("context.json", "runs.csv", "table1.csv", "compute_matched.csv", "ablation.csv", "anchor.csv",
                 "tune.csv", "claims.csv", "problems.csv", "consistency.csv", "plots/curves.csv",
                 "plots/per_class_recall.csv", "plots/confusion.csv", "figures")


class ReportInputMissing(Failure):
    pass


# ---------------------------------------------------------------- reading reports/


def _csv(reports: str | Path, name: str) -> pd.DataFrame:
    """An aggregate table; a missing or empty file is an error, never an empty table in the report."""
    path = Path(reports) / name
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ReportInputMissing(f"{path} is missing: run `msga aggregate` (or `snakemake`) before the report") from None
    except pd.errors.EmptyDataError:
        raise ReportInputMissing(f"{path} is empty (a damaged aggregate): run `msga aggregate` again") from None


def _context(reports: str | Path) -> dict:
    path = Path(reports) / "context.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportInputMissing(f"{path} is missing: run `msga aggregate` (or `snakemake`) before the report") from None


def _synthetic(reports) -> bool:
    return _context(reports)["dataset"].get("source") == "synthetic"


def _distinct_runs(reports) -> pd.DataFrame:
    runs = _csv(reports, "runs.csv")
    return runs.drop_duplicates(subset=["model", "variant", "seed"]) if not runs.empty else runs


def _section(anchor: str, body: str) -> HTML:
    heading = dict(SECTIONS)[anchor]
    return HTML(f"<section id='{anchor}'><h2>{esc(heading)}</h2>{body}</section>")


# ---------------------------------------------------------------- the top of the page


def title(reports: str | Path) -> HTML:
    """The title, what the numbers come from, the synthetic-data warning, the contents."""
    ctx, runs = _context(reports), _distinct_runs(reports)
    seeds = sorted(runs["seed"].unique().tolist()) if not runs.empty else []
    data = ("the synthetic offline fixture" if _synthetic(reports) else "CIFAR-100 (50,000 training and 10,000 test images)")
    lines = [f"<h1>{esc(TITLE)}</h1>",
             f"<p class='lede'>A replication of <i>{esc(PAPER)}</i>: its Table 1, its Figure 2 and the factors its "
             f"abstract names, retrained from scratch on {data}. {len(runs)} of the grid's {ctx['runs_expected']} "
             f"training runs are in this report (seeds {', '.join(map(str, seeds)) or 'none'}).</p>"]
    if _synthetic(reports):
        lines.append("<p class='warning'><b>These results come from the SYNTHETIC offline fixture, not from "
                     "CIFAR-100.</b> They show that the pipeline runs end to end; they say nothing about the paper's "
                     "claims.</p>")
    items = "".join(f"<li><a href='#{a}'>{esc(h)}</a></li>" for a, h in SECTIONS)
    lines.append(f"<nav aria-label='Contents'><ol>{items}</ol></nav>")
    return HTML("".join(lines))


def verdict_counts(reports) -> dict[str, int]:
    claims = _csv(reports, "claims.csv")
    return {v: int((claims["verdict"] == v).sum()) for v in VERDICTS}


def verdicts(reports: str | Path) -> HTML:
    """The verdict summary, first: counts per verdict and the paragraph computed from the tests."""
    counts = verdict_counts(reports)
    chips = "".join(f"<span class='chip v-{v.replace(' ', '-')}'>{n} {v}</span>" for v, n in counts.items())
    return _section("verdict", f"<p class='chips'>{chips}</p><p>{esc(_context(reports)['summary'])}</p>")


def _sentences(text: str) -> list[str]:
    """Split prose into sentences at '. ' before a capital letter (abbreviations here have none)."""
    return [s.strip() for s in re.split(r"(?<=[.)])\s+(?=[A-Z])", text) if s.strip()]


def _keep_intervals(text: str) -> str:
    """An interval "[-0.01, +0.02]" never breaks across lines."""
    return re.sub(r"(\[[^\]]*\])", r"<span class='nw'>\1</span>", text)


def claims(reports: str | Path) -> HTML:
    """Each claim, its verdict (coloured), its evidence and the smallest difference the seeds
    could detect; then how the verdicts were reached."""
    df = _csv(reports, "claims.csv")
    rows = [[esc(r["claim"]), f"<span class='chip v-{str(r['verdict']).replace(' ', '-')}'>{esc(r['verdict'])}</span>",
             "<br>".join(_keep_intervals(esc(part)) for part in str(r["evidence"]).split("; ")),  # a line each
             fmt_score(r["min_detectable"], 4) or "&ndash;"] for r in df.to_dict("records")]
    table = html_table(["Claim of the paper", "Verdict", "Evidence (differences: mean [95% interval])",
                    "Smallest detectable difference"], rows, numeric=(3,), stack=True, name="claims")
    ctx = _context(reports)
    sentences = _sentences(ctx["methods"])
    methods = (f"<p><b>How the verdicts were reached</b> (alpha = {ctx['alpha']}): {esc(sentences[0])}</p>"
               "<ul class='methods'>" + "".join(f"<li>{esc(s)}</li>" for s in sentences[1:]) + "</ul>")
    note = ("<p class='note'>A smallest detectable difference is the difference the test would find with 80% power "
            "at these seeds' spread: a claim within noise with a large one was barely tested.</p>")
    return _section("claims", table + note + methods)


# ---------------------------------------------------------------- Table 1 and the compute-matched block


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
    t1 = _csv(reports, "table1.csv")
    intro = ("<p>The paper's five models, each beside this replication's result. The baselines are sized to within "
             "about 2× of msga's parameters (the paper gives no sizes).</p>")
    table = html_table(model_header(), _model_rows(t1, "paper_row"), numeric=NUMERIC)
    return _section("table1", intro + table + _model_table_note())


def table1_figure(reports: str | Path) -> HTML:
    t1 = _csv(reports, "table1.csv")
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
    if "msga" in at_params and "msga" in at_compute:
        text += (f" msga ranks {len(at_params) - at_params.index('msga')} of {len(at_params)} at matched parameters "
                 f"and {len(at_compute) - at_compute.index('msga')} of {len(at_compute)} at matched compute.")
    return text + " These are means; the paired tests below say which differences these seeds resolve."


def matched_verdicts_text(verdicts: pd.DataFrame, where: str = "at matched compute") -> str:
    """The paired verdicts on the compute-matched runs, per claim and metric, from claims.csv."""
    rows = verdicts[verdicts["label"].str.contains(f" {where} (", regex=False)] if not verdicts.empty else verdicts
    if rows.empty:
        return "No claim was tested on the compute-matched runs."
    by_claim: dict[str, list[str]] = {}
    for r in rows.to_dict("records"):
        stem, _, metric = str(r["label"]).rpartition(" (")
        by_claim.setdefault(stem.replace(f" {where}", ""), []).append(f"{metric.rstrip(')')} {r['verdict']}")
    found = "; ".join(f"{stem}: {', '.join(parts)}" for stem, parts in by_claim.items())
    return f"Paired tests on the compute-matched runs, verdicts of their own among the claims above: {found}."


def compute_matched(reports: str | Path) -> HTML:
    matched, t1 = _csv(reports, "compute_matched.csv"), _csv(reports, "table1.csv")
    intro = ("<p>Not in the paper. Matching parameters lets a model that spends more compute per parameter win on "
             "compute; here each baseline is scaled (width and depth together) until its forward FLOPs are close to "
             "msga's (the FLOPs column shows how close), and trained with the same recipe and seeds. The paper's value beside each is the row of "
             "the same architecture.</p>")
    if matched.empty:
        return _section("compute", intro + "<p class='note'>No compute-matched run has finished.</p>")
    table = html_table(model_header(), _model_rows(matched, "paper_row"), numeric=NUMERIC)
    tests = matched_verdicts_text(_csv(reports, "claims.csv"))
    return _section("compute", intro + table + f"<p><b>Ranking.</b> {esc(ranking_text(t1, matched))}</p>"
                                        f"<p><b>Tested.</b> {esc(tests)}</p>")


def cost_figure(reports: str | Path) -> HTML:
    t1, matched = _csv(reports, "table1.csv"), _csv(reports, "compute_matched.csv")
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


# ---------------------------------------------------------------- sensitivity sweeps


def metrics_coincide(df: pd.DataFrame, a: str = "acc", b: str = "recall") -> bool:
    """Whether two metric columns are equal in every run (to float32 precision)."""
    return not df.empty and a in df and b in df and bool(np.allclose(df[a], df[b], atol=1e-6))


def _sweep_alt(df: pd.DataFrame, x: str, label: str, metrics: list[str]) -> str:
    shown = ", ".join(LABELS[m] for m in metrics)
    if df.empty:
        return f"Line chart of {shown} against {label}: no finished runs."
    metric = "acc" if "acc" in metrics else metrics[0]
    means = df.groupby(x)[metric].mean()
    return (f"Line chart of msga's {shown} (0 to 1) against {label}, at {', '.join(f'{v:g}' for v in means.index)}. "
            f"{LABELS[metric]} is highest at {means.idxmax():g} ({means.max():.3f}) and lowest at {means.idxmin():g} "
            f"({means.min():.3f}).")


def sweep_figure(reports, experiment: str) -> str:
    """One sweep's figure with its heading, what varies, its seeds and error bars, and whether
    ACC and Recall coincide in it."""
    sweep = next(s for s in _context(reports)["sweeps"] if s["experiment"] == experiment)
    df = _csv(reports, f"plots/{experiment}.csv")
    seeds = int(df["seed"].nunique()) if not df.empty else 0
    bars = f"bars: 95% t-intervals over {seeds} seeds" if seeds > 1 else "one seed, so no error bars"
    parts = [f"msga, {sweep['label']} varied; means over seeds, {bars}."]
    if len(sweep["metrics"]) > 1 and metrics_coincide(df):
        parts.append("ACC (open squares) and Recall (dashed) coincide.")
    if not sweep["in_paper"]:
        parts.append("Not in the paper, whose abstract names this factor in words only.")
    return figure_html(reports, sweep["figure"], sweep["title"], esc(" ".join(parts)),
                   _sweep_alt(df, sweep["x"], sweep["label"], sweep["metrics"]))


def sweeps(reports: str | Path) -> HTML:
    ctx = _context(reports)
    intro = ("<p>Figure 2 of the paper plots Recall against the number of attention heads; its abstract also names "
             "batch size and noise level as sensitive factors. Each sweep trains msga at every value with the same "
             "seeds, everything else fixed; the claims above test them.</p>"
             "<p class='note'>How to read the figures: at each value the metrics' markers are nudged sideways so that "
             "their error bars do not overlap; the y axis spans at least 0.1, so that a difference of a few test "
             "images does not fill it. Where ACC and Recall coincide it is no accident: the test set holds the same "
             "number of images of every class, and on such a set macro recall equals top-1 accuracy exactly.</p>"
             "<p class='note'>The paper also calls the method robust, but names no comparator (it sweeps no baseline, "
             "and neither does this grid) and no threshold, so robustness gives no direction to test: the clean-"
             "training, noisy-test figure is descriptive. What is tested, in both noise arms, is the abstract's claim "
             "that the noise level influences performance.</p>")
    return _section("sweeps", intro + "".join(sweep_figure(reports, s["experiment"]) for s in ctx["sweeps"]))


# ---------------------------------------------------------------- ablation, anchor, tuning


def ablation(reports: str | Path) -> HTML:
    abl = _csv(reports, "ablation.csv")
    intro = ("<p>Not in the paper's tables: its text credits the two components together. Each model differs from "
             "msga in one thing; msga_single and msga_noattn do so at near-equal parameters and FLOPs (see the cost "
             "columns), so a difference there is not one of size.</p>")
    if abl.empty:
        return _section("ablation", intro + "<p class='note'>No ablation run has finished.</p>")
    full = abl[abl["model"] == "msga"]
    reference = full.iloc[0] if not full.empty else None
    table = html_table(model_header("msga"), _model_rows(abl, "role", reference), numeric=NUMERIC)
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
    return _section("ablation", intro + table + note + figure)


def cost_matching_text(abl: pd.DataFrame, full: str = "msga") -> str:
    """Which of the ablation's comparisons with the full model are cost-matched, from the costs."""
    if "cost_matched" not in abl:
        return ""
    others = abl[(abl["model"] != full) & abl["params_ratio"].notna() & abl["flops_ratio"].notna()]
    if others.empty:
        return "The costs of the ablation's models are not known, so no comparison can be called cost-matched."

    def listed(rows):
        return ", ".join(f"{r['model']} ({r['params_ratio']:.2f}× msga's params, {r['flops_ratio']:.2f}× its FLOPs)"
                         for r in rows.to_dict("records"))

    matched, confounded = others[others["cost_matched"].astype(bool)], others[~others["cost_matched"].astype(bool)]
    parts = []
    if not matched.empty:
        parts.append(f"Cost-matched (params and FLOPs within {COST_TOLERANCE:.0%} of msga's): {listed(matched)}: a "
                     "difference from msga there is one of the component it lacks.")
    if not confounded.empty:
        parts.append(f"Not cost-matched: {listed(confounded)}: msga beating these may be a matter of size as much as "
                     "of the component.")
    return " ".join(parts)


def anchor_check(row: dict, synthetic: bool) -> dict:
    """The anchor's result against its literature value: status 'pass', 'fail', 'not comparable'
    (another budget than the reference's) or 'pipeline only' (synthetic data), with the numbers."""
    reference = ANCHOR_REFERENCE.get(row["model"])
    out = {"reference": reference, "difference": None, "status": "no reference"}
    if reference is None:
        return out
    out["difference"] = row["acc_mean"] - reference["acc"]
    if synthetic:
        out["status"] = "pipeline only"
    elif int(row["epochs"]) < reference["epochs"]:
        out["status"] = "not comparable"
    else:
        out["status"] = "pass" if abs(out["difference"]) <= ANCHOR_TOLERANCE else "fail"
    return out


ANCHOR_MEANING = {
    "pass": "Data, augmentation and evaluation reproduce the literature: the other numbers of this report come "
            "from a pipeline that gets a well-known result right.",
    "fail": "The pipeline does not reproduce a well-known result: look for a fault in data, augmentation or "
            "evaluation before reading the other numbers.",
    "not comparable": "The anchor trained fewer epochs than the reference, so its ACC is not held against the "
                      "reference's: the check applies at the reference's budget only.",
    "pipeline only": "On the synthetic fixture the anchor only shows that its recipe and the pipeline run end to "
                     "end; the literature value is a CIFAR-100 result and is no test here.",
}


def anchor(reports: str | Path) -> HTML:
    df = _csv(reports, "anchor.csv")
    intro = ("<p>Not in the paper. A model with a well-established CIFAR-100 result, trained by its own literature "
             f"recipe through the same data, augmentation and evaluation code: the check that those are right. "
             f"Tolerance: ±{ANCHOR_TOLERANCE * 100:.0f} points of top-1, a margin this project chose: the reference "
             "reports a single run with no spread, so the margin is not derived from one. A pass says the pipeline "
             "lands within that margin of the published number under its recipe; a fail, that data, augmentation and "
             "evaluation deserve a look before the other numbers are read.</p>")
    if df.empty:
        return _section("anchor", intro + "<p class='note'>The anchor has not finished.</p>")
    rows, meanings = [], []
    for r in df.to_dict("records"):
        check = anchor_check(r, _synthetic(reports))
        ref = check["reference"]
        literature = (f"{fmt_score(ref['acc'])}<br><span class='sub'>{ref['epochs']} epochs, {esc(ref['source'])}"
                      "</span>" if ref else "none")
        difference = (diff_span(check["difference"]) if check["status"] in ("pass", "fail")  # colour only a real check
                      else f"<span class='sub'>{round(check['difference'], 3) + 0.0:+.3f}</span>"
                      if check["difference"] is not None else "")
        rows.append([f"<b>{esc(r['model'])}</b>", _score_cell(r["acc_mean"], r["acc_ci95"]), literature, difference,
                     f"<span class='chip a-{check['status'].replace(' ', '-')}'>{check['status']}</span>",
                     f"{int(r['epochs'])}", fmt_seeds(r["n_seeds"]), nowrap(fmt_params(r["params"])),
                     nowrap(fmt_flops(r["flops_per_image"]))])
        meanings.append(f"<p><b>{esc(r['model'])}: {check['status']}.</b> {ANCHOR_MEANING.get(check['status'], '')}</p>")
    table = html_table(["Model", "ACC (ours)", "Literature ACC", "Ours − literature",
                    f"Within ±{ANCHOR_TOLERANCE * 100:.0f} points?", "Epochs", "Seeds", "Params", "FLOPs / image"],
                   rows, numeric=(1, 2, 3, 5, 7, 8))
    deviations = [d for m in df["model"] for d in ANCHOR_DEVIATIONS.get(m, ())]
    listed = ("<p><b>Where the recipe differs from its reference</b> (all else follows its code: optimizer, rate, "
              "schedule, weight decay on every parameter, crop, flip and a rotation of up to 15°):</p><ul>"
              + "".join(f"<li>{esc(d)}</li>" for d in deviations) + "</ul>" if deviations else "")
    return _section("anchor", intro + table + "".join(meanings) + listed)


def tune_summary(reports) -> pd.DataFrame:
    """Per tuned model: the winning learning rate, the one Table 1 trained with, and whether they agree."""
    tune = _csv(reports, "tune.csv")
    if tune.empty:
        return pd.DataFrame(columns=["model", "best_lr", "table1_lr", "agrees"])
    best = tune[tune["best"].astype(bool)].set_index("model")
    out = pd.DataFrame({"model": best.index, "best_lr": best["lr"].values, "table1_lr": best["table1_lr"].values})
    out["agrees"] = [not is_missing(t) and math.isclose(b, t, rel_tol=1e-9) for b, t in zip(out["best_lr"], out["table1_lr"])]
    return out


def inherited_text(inherited: list[dict]) -> tuple[str, list[str]]:
    """(which untuned models train at which tuned model's winner, and those whose runs did not)."""
    by_source: dict[str, list[str]] = {}
    for r in inherited:
        by_source.setdefault(r["source"], []).append(r["model"])
    listed = "; ".join(f"{', '.join(models)} at {source}'s" for source, models in by_source.items())
    text = (f"Not tuned themselves, these models train at the winner of the model they are a control or another "
            f"size of, with the same recipe: {listed}. A control tuned on its own would differ from msga in its "
            "learning rate too; a larger baseline's own best rate may differ from its Table 1 twin's, which the "
            "grid does not test." if inherited else "")
    off = [f"{r['model']} (winner {r['winner']:g}, trained "
           f"{'not yet' if r['trained'] is None else format(r['trained'], 'g')})"
           for r in inherited if r["trained"] is None or not math.isclose(r["winner"], r["trained"], rel_tol=1e-9)]
    return text, off


def tune(reports: str | Path) -> HTML:
    df = _csv(reports, "tune.csv")
    intro = ("<p>The paper gives no learning rates. Each model's peak learning rate (per 256 images) is picked on a "
             "validation split: 10% of the training images, 10% per class, never the test set. Cells: validation "
             "ACC, mean over seeds; ★ marks each model's best.</p>")
    if df.empty:
        return _section("tune", intro + "<p class='note'>No tune run has finished.</p>")
    rates = sorted(df["lr"].unique())
    summary = tune_summary(reports).set_index("model")
    rows = []
    for model, group in df.groupby("model", sort=False):
        by_lr = group.set_index("lr")
        cells = [f"<b>{esc(model)}</b>"]
        for lr in rates:
            if lr not in by_lr.index:
                cells.append("")
                continue
            r = by_lr.loc[lr]
            star = " ★" if bool(r["best"]) else ""
            cells.append(nowrap(f"{'<b>' if star else ''}{r['val_acc_mean']:.3f}{star}{'</b>' if star else ''}"))
        used = summary.loc[model]
        cells += [f"{used['table1_lr']:g}" if not is_missing(used["table1_lr"]) else "not run",
                  "yes" if used["agrees"] else "<span class='under'>no</span>",
                  nowrap(fmt_params(group["params"].iloc[0])), nowrap(fmt_flops(group["flops_per_image"].iloc[0]))]
        rows.append(cells)
    table = html_table(["Model", *(f"lr {lr:g}" for lr in rates), "Table 1 trained with", "The winner?", "Params",
                        "FLOPs / image"], rows, numeric=(*range(1, len(rates) + 2), len(rates) + 3, len(rates) + 4))
    heirs, heirs_off = inherited_text(_context(reports).get("lr_inherited", []))
    off = summary[~summary["agrees"]]
    names = [f"{m} (winner {r['best_lr']:g}, Table 1 "
             f"{'not run yet' if is_missing(r['table1_lr']) else format(r['table1_lr'], 'g')})"
             for m, r in off.iterrows()] + heirs_off
    advice = ""
    if names:
        advice = (f"<p class='warning'>Not trained at its winning learning rate: {esc(', '.join(names))}. Run "
                  "<code>msga tune --apply</code> (it writes each winner, and each inherited one, into "
                  "<code>train.per_model</code> of params.yaml; review and commit it), then "
                  "<code>snakemake --cores all --resources gpu=1</code> to retrain the runs that change.</p>")
    return _section("tune", intro + table + (f"<p>{esc(heirs)}</p>" if heirs else "") + advice)


# ---------------------------------------------------------------- msga per class, training curves


def confused_pairs(shares: pd.DataFrame, top: int = 5) -> list[tuple[str, str, float]]:
    """The largest off-diagonal shares: (true class, predicted class, share of the true class)."""
    if shares.empty or len(shares.columns) < 2:
        return []
    matrix = shares.drop(columns="true_class").to_numpy(dtype=float).copy()
    np.fill_diagonal(matrix, 0)
    flat = np.argsort(matrix, axis=None)[::-1][:top]
    names = list(shares["true_class"])
    return [(names[i], names[j], float(matrix[i, j])) for i, j in zip(*np.unravel_index(flat, matrix.shape))
            if matrix[i, j] > 0]


def _seeds_text(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _recall_figure(reports, df: pd.DataFrame) -> str:
    """msga's recall per class, sorted, with its hardest and easiest classes named."""
    seeds = int(df["n_seeds"].max())
    band = "the band is the range over its seeds" if seeds > 1 else "one seed, so no band"
    alt = (f"Step chart of msga's recall for each of its {len(df)} classes, sorted from lowest to highest on a 0 to "
           f"1 axis: from {df['recall_mean'].min():.2f} to {df['recall_mean'].max():.2f}, mean "
           f"{df['recall_mean'].mean():.3f}.")
    figure = figure_html(reports, "per_class_recall.png", "Figure: msga's recall per class",
                     esc(f"Classes sorted by recall (mean over {_seeds_text(seeds)}); {band}; the dashed line is the "
                          "mean over classes, which equals ACC on a class-balanced test set."), alt)
    hardest = ", ".join(f"{r['class_name']} {r['recall_mean']:.2f}" for r in df.head(5).to_dict("records"))
    easiest = ", ".join(f"{r['class_name']} {r['recall_mean']:.2f}" for r in df.tail(5)[::-1].to_dict("records"))
    return figure + f"<p><b>Hardest classes</b> (recall): {esc(hardest)}.<br><b>Easiest</b>: {esc(easiest)}.</p>"


def _confusion_figure(reports, shares: pd.DataFrame, seeds: int) -> str:
    """msga's confusion matrix, with the pairs of classes it confuses most named."""
    pairs = "; ".join(f"{t} → {p} ({s:.0%})" for t, p, s in confused_pairs(shares)) or "none"
    diagonal = float(np.mean(np.diag(shares.drop(columns="true_class").to_numpy(dtype=float))))
    alt = (f"Heat map of msga's {len(shares)} by {len(shares)} confusion matrix, true class down, predicted class "
           f"across, each row as shares of that class's test images. Mean diagonal share {diagonal:.3f}. "
           f"Largest confusions: {pairs}.")
    figure = figure_html(reports, "confusion.png", "Figure: msga's confusion matrix",
                     esc(f"Summed over {_seeds_text(seeds)}, each row divided by its total; classes by index; a "
                          "square-root colour scale so that confusions of a few percent show."), alt)
    return figure + f"<p><b>Most confused</b> (true → predicted, share of the true class): {esc(pairs)}.</p>"


def per_class(reports: str | Path) -> HTML:
    df, shares = _csv(reports, "plots/per_class_recall.csv"), _csv(reports, "plots/confusion.csv")
    intro = ("<p>Where msga's accuracy comes from: its Table 1 runs' recall of each class and what it mistakes "
             "classes for.</p>")
    if df.empty:
        return _section("per-class", intro + "<p class='note'>No Table 1 run of msga with per-class scores has "
                                             "finished.</p>")
    return _section("per-class", intro + _recall_figure(reports, df)
                    + _confusion_figure(reports, shares, int(df["n_seeds"].max())))


def curves(reports: str | Path) -> HTML:
    df, t1 = _csv(reports, "plots/curves.csv"), _csv(reports, "table1.csv")
    part = df[df["model"].isin(t1["model"])] if not df.empty else df
    if part.empty:
        return _section("curves", "<p class='note'>No Table 1 run has finished.</p>")
    seeds = int(part.groupby("model")["seed"].nunique().max())
    last = part[part["epoch"] == part.groupby("model")["epoch"].transform("max")]
    final = last.groupby("model")["test_acc"].mean()
    alt = (f"Two line charts over {int(part['epoch'].max())} epochs for the {part['model'].nunique()} models of Table "
           "1: training loss, and test accuracy. Final test ACC: "
           + ", ".join(f"{m} {v:.3f}" for m, v in final.items()) + ".")
    band = f"bands: the range over {seeds} seeds" if seeds > 1 else "one seed, so no bands"
    caption = esc(f"Table 1's models, per epoch: training loss (cross-entropy with the recipe's label smoothing, on "
                   f"augmented images) and test ACC; lines are means over seeds, {band}.")
    return _section("curves", figure_html(reports, "curves.png", "Figure: training curves", caption, alt))


# ---------------------------------------------------------------- problems, consistency


def problems(reports: str | Path) -> HTML:
    df = _csv(reports, "problems.csv")
    if df.empty:
        return _section("problems", "<p>All runs of the grid finished, each with the configuration the grid gives it.</p>")
    counts = df["status"].value_counts()
    head = "; ".join(f"<b>{n} {esc(status)}</b>" for status, n in counts.items())
    stale = ("<p>A <b>stale</b> run was trained with another configuration than the grid now gives; it is left out "
             "of every table until it is trained again.</p>" if "stale" in counts else "")
    rows = [[esc(r["status"]), f"<code>{esc(Run(r['model'], r['variant'], int(r['seed'])).id)}</code>",
             esc(r["experiments"]), esc(r["reason"])] for r in df.to_dict("records")]
    table = html_table(["Status", "Run", "Serves", "Why"], rows, stack=True)
    return _section("problems", f"<p>{head}: the tables use only the finished, current runs.</p>{stale}"
                                f"<details{' open' if len(df) <= 8 else ''}><summary>The {len(df)} run(s)</summary>"
                                f"{table}</details>")


def auc_acc_text(runs: pd.DataFrame, paper: pd.DataFrame) -> str:
    """What our runs' (ACC, AUC) pairs say about the paper's: their ranges, whether AUC rises with
    ACC here, and for how many of the paper's rows some run of ours has a lower ACC and yet a higher
    AUC (the paper's AUC is then low for its ACC, by what our runs show)."""
    ours = runs.dropna(subset=["acc", "auc"]) if not runs.empty else runs
    if ours.empty:
        return "No run has finished, so there is nothing to set beside the paper's pairs."
    text = (f"Our {len(ours)} runs span ACC {ours['acc'].min():.3f} to {ours['acc'].max():.3f} with AUC "
            f"{ours['auc'].min():.3f} to {ours['auc'].max():.3f}; the paper's rows, ACC {paper['paper_acc'].min():.3f} "
            f"to {paper['paper_acc'].max():.3f} with AUC {paper['paper_auc'].min():.3f} to "
            f"{paper['paper_auc'].max():.3f}.")
    rho = ours["acc"].corr(ours["auc"], method="spearman") if len(ours) >= 3 else float("nan")
    if np.isfinite(rho):
        text += f" Across our runs AUC {'rises' if rho > 0 else 'falls'} with ACC (Spearman rho {rho:.2f})."
    below = [r["model"] for r in paper.to_dict("records")
             if ((ours["acc"] < r["paper_acc"]) & (ours["auc"] > r["paper_auc"])).any()]
    if below:
        return text + (f" For {len(below)} of the paper's {len(paper)} rows ({', '.join(below)}) some run of ours has "
                       "a lower ACC and yet a higher AUC: by our runs, the paper's AUC is low for its ACC.")
    reach = "" if ours["acc"].max() >= paper["paper_acc"].min() else \
        f", and none reaches the paper's lowest ACC ({paper['paper_acc'].min():.3f})"
    return text + (f" No run of ours has both a lower ACC and a higher AUC than a row of the paper{reach}: our runs "
                   "do not contradict the paper's pairs.")


def per_batch_text(df: pd.DataFrame, batches: list[int]) -> str:
    """Whether macro recall averaged over test batches gives Recall below ACC on our runs."""
    columns = [f"acc_minus_recall_batch{b}" for b in batches if f"acc_minus_recall_batch{b}" in df]
    gaps = df[columns].to_numpy(dtype=float).ravel() if columns else np.array([])
    gaps = gaps[np.isfinite(gaps)]
    if gaps.size == 0:
        return "no saved predictions were read, so it was not computed on our runs"
    spread = f"ACC − Recall {gaps.min():+.3f} to {gaps.max():+.3f}"
    below = int((gaps > 0).sum())
    if below == gaps.size:
        return f"on our runs it gives Recall below ACC for every model and batch size ({spread})"
    if below == 0:
        return f"on our runs it does not give Recall below ACC ({spread})"
    return f"on our runs it gives Recall below ACC in {below} of {gaps.size} model and batch-size pairs ({spread})"


def consistency(reports: str | Path) -> HTML:
    ctx, df = _context(reports), _csv(reports, "consistency.csv")
    rows = []
    batches = sorted(int(c.rsplit("batch", 1)[1]) for c in df.columns if c.startswith("acc_minus_recall_batch"))
    for r in df.to_dict("records"):
        rows.append([f"<b>{esc(r['model'])}</b>", fmt_score(r["acc_minus_recall_paper"]),
                     fmt_score(r.get("acc_minus_recall_ours")) or "&ndash;",
                     *(fmt_score(r.get(f"acc_minus_recall_batch{b}")) or "&ndash;" for b in batches),
                     fmt_score(r["acc_minus_precision_paper"]), fmt_score(r.get("acc_minus_precision_ours")) or "&ndash;"])
    table = html_table(["Model", "ACC − Recall: paper", "ours, whole test set",
                    *(f"ours, per test batch of {b}" for b in batches), "ACC − Precision: paper",
                    "ours, whole test set"],
                   rows, numeric=tuple(range(1, 5 + len(batches))))
    runs, paper = _distinct_runs(reports), _csv(reports, "table1.csv")
    alt = (f"Scatter plot of AUC (0.5 to 1) against ACC (0 to 1): {len(runs)} runs of this replication, ACC "
           f"{range_text(runs['acc'], runs['model']) if not runs.empty else 'none'}; and the paper's {len(paper)} "
           f"rows, ACC {paper['paper_acc'].min():.3f} to {paper['paper_acc'].max():.3f} with AUC "
           f"{paper['paper_auc'].min():.3f} to {paper['paper_auc'].max():.3f}.")
    figure = figure_html(reports, "auc_vs_acc.png", "Figure: AUC against ACC",
                     "Every finished run of this replication (dots) and the five rows of the paper's Table 1 (stars): "
                     "how AUC goes with ACC here, beside the pairs the paper reports. "
                     + esc(auc_acc_text(runs, paper)), alt)
    note = ("<p class='note'>Means over seeds of our Table 1 runs, recomputed from their saved test predictions. "
            "‘Per test batch’: macro recall computed on each consecutive test batch, then averaged, an undisclosed "
            f"computation; {esc(per_batch_text(df, batches))}.</p>")
    return _section("consistency", f"<p>{esc(ctx['consistency'])}</p>" + table + note + figure)


# ---------------------------------------------------------------- what was run, limits, reproduce


def _recipe(r: dict) -> str:
    decay = (f"cosine to {r['min_lr']:g}" if r["schedule"] == "cosine"
             else f"x{r['gamma']:g} at epochs {r['milestones']}")
    optimizer = f"{r['optimizer']}{' (Nesterov)' if r['optimizer'] == 'sgd' and r['nesterov'] else ''}"
    return (f"{optimizer}, peak learning rate {r['effective_lr']:.3g} at batch size {r['batch_size']} "
            f"({r['lr']:g} per 256 images, {r['lr_scaling']} scaling), {r['warmup_epochs']:g} warmup epochs then "
            f"{decay}, weight decay {r['weight_decay']:g} "
            f"({'on every parameter' if r.get('weight_decay_all') in (True, 'True') else 'not on norms and biases'}), "
            f"label smoothing {r['label_smoothing']:g}, gradient "
            f"clipping {r['grad_clip']:g}, {r['epochs']} epochs, augmentation {r['augment']}")


def recipes(reports) -> dict[str, list[str]]:
    """Each distinct recipe the base runs recorded -> the models trained with it."""
    runs = _distinct_runs(reports)
    out: dict[str, list[str]] = {}
    if runs.empty:
        return out
    for r in runs[runs["variant"] == "base"].drop_duplicates(subset=["model"]).to_dict("records"):
        out.setdefault(_recipe(r), []).append(r["model"])
    return out


def overview(reports: str | Path) -> HTML:
    """What was run, as the runs recorded it: dataset, recipe per model, hardware, versions, seeds, time."""
    ctx, runs = _context(reports), _distinct_runs(reports)
    data = ctx["dataset"]
    dataset = (f"synthetic CIFAR-100-format fixture ({data['train_per_class']}/{data['test_per_class']} images per "
               f"class, seed {data['seed']})" if data.get("source") == "synthetic"
               else f"CIFAR-100 (archive md5 {data.get('md5')}): 50,000 train / 10,000 test images")
    items = [f"<b>Dataset</b>: {esc(dataset)}; the test set is used once per epoch for the curves and for the "
             "final metrics, never to choose anything (learning rates are tuned on a validation split)."]
    if not runs.empty:
        for recipe, models in recipes(reports).items():
            items.append(f"<b>Recipe of {esc(', '.join(models))}</b> (as the runs recorded it): {esc(recipe)}.")
        items += [
            "<b>Noise level</b>: read as additive Gaussian pixel noise of std sigma (in [0, 1] pixel units) on train "
            "and test images, clamped to valid pixels; the paper does not define it.",
            f"<b>Runs</b>: {len(runs)} of the {ctx['runs_expected']} distinct training runs of the grid; seeds "
            f"{esc(sorted(runs['seed'].unique().tolist()))}.",
            f"<b>Hardware</b>: {esc(', '.join(sorted(runs['device'].dropna().unique())))}.",
            f"<b>Software</b>: torch {esc(', '.join(sorted(runs['torch'].dropna().astype(str).unique())))}.",
            f"<b>Compute</b>: {runs['wall_seconds'].sum() / 60:.1f} minutes of training-job wall time "
            f"({runs['train_seconds'].sum() / 60:.1f} in training steps).",
        ]
    return _section("run", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def models_per_epochs(reports) -> dict[int, list[str]]:
    """Each training length the runs recorded -> the models with a run of that length."""
    runs = _distinct_runs(reports)
    if runs.empty:
        return {}
    return {int(e): sorted(g["model"].unique()) for e, g in runs.dropna(subset=["epochs"]).groupby("epochs")}


STRONG_AUGMENTATION = ("TrivialAugment", "mixup", "cutmix")  # as aggregate.describe_augment names them


def late_gain_text(curves: pd.DataFrame, models: list[str], share: float = 0.2) -> str:
    """How much each model's mean test ACC still rose over the last fifth of its epochs, largest first:
    what our runs show of how far from converged each model stopped."""
    part = curves[curves["model"].isin(models) & (curves["variant"] == "base")] if not curves.empty else curves
    if part.empty:
        return "No Table 1 run has a training curve yet."
    gains, spans = {}, set()
    for model, group in part.groupby("model"):
        by_epoch = group.groupby("epoch")["test_acc"].mean()
        last = int(by_epoch.index.max())
        back = max(1, round(share * last))
        if last - back in by_epoch.index:
            gains[model] = float(by_epoch[last] - by_epoch[last - back])
            spans.add((back, last))
    if not gains:
        return "No Table 1 run has trained long enough to show a late trend."
    listed = ", ".join(f"{m} {g:+.3f}" for m, g in sorted(gains.items(), key=lambda kv: -kv[1]))
    span = (f"the last {next(iter(spans))[0]} of {next(iter(spans))[1]} epochs" if len(spans) == 1
            else "the last fifth of each model's epochs")
    return f"What our runs show: over {span}, mean test ACC changed by {listed} (the training curves)."


def augmentation_text(runs: pd.DataFrame) -> str:
    """Strong augmentation: available, and which runs (if any) trained with it."""
    available = ("Mixup, CutMix and TrivialAugment run on the device (train.augment in params.yaml) but are off by "
                 "default, and the recipe is the same for every model but the anchor")
    if runs.empty or "augment" not in runs:
        return available + "."
    base = runs[runs["variant"] == "base"].drop_duplicates(subset=["model"])
    strong = base[base["augment"].astype(str).str.contains("|".join(STRONG_AUGMENTATION), case=False)]
    if strong.empty:
        used = "; ".join(sorted(set(base["augment"].astype(str))))
        return (f"{available}: no run here used them (augmentation as recorded: {used}). A stronger recipe may "
                "change the ranking; this grid does not test it.")
    return f"{available}; these models trained with them: {', '.join(strong['model'])}."


def tuning_text(tune: pd.DataFrame, t1: pd.DataFrame) -> str:
    """What was tuned (the learning rate only), on how many seeds, and which winners are within seed noise."""
    if tune.empty:
        return "no tune run finished: every model trained at the learning rate params.yaml gives it."
    seeds = int(tune["n_seeds"].max())
    rates = ", ".join(f"{lr:g}" for lr in sorted(tune["lr"].unique()))
    text = (f"only the peak learning rate is tuned ({rates} per 256 images), on {seeds} seed{'s' if seeds != 1 else ''}"
            " of a validation split; weight decay, warmup, schedule, label smoothing, augmentation and epochs are not "
            "tuned.")
    std = dict(zip(t1["model"], t1["acc_std"])) if "acc_std" in t1 else {}
    close = []
    for model, group in tune.groupby("model"):
        scores = group["val_acc_mean"].sort_values(ascending=False).to_numpy()
        if len(scores) > 1 and not is_missing(std.get(model)) and scores[0] - scores[1] < std[model]:
            close.append(model)
    if seeds == 1 and close:
        text += (f" With one seed, the winner's margin over the next rate is below the seed-to-seed sd of Table 1's "
                 f"ACC for {', '.join(close)}: {'those picks are' if len(close) > 1 else 'that pick is'} within seed "
                 "noise.")
    return text


def limits(reports: str | Path) -> HTML:
    ctx, t1 = _context(reports), _csv(reports, "table1.csv")
    budget = "; ".join(f"{e} epochs: {', '.join(m)}" for e, m in models_per_epochs(reports).items()) or "no runs"
    items = [
        "The paper gives no architecture details beyond its Eq. 1-3 and no training recipe: the msga model, the "
        "baseline sizes and the recipe here are this project's choices (<code>params.yaml</code>, "
        "<code>src/msga/models/</code>). Baselines are sized to within 2× of msga's parameters, which the paper may "
        "not have done.",
        f"<b>Budget</b>, as the runs recorded it: {esc(budget)}. Published CIFAR-100 results from "
        "scratch train 200-300 epochs (ResNet-18: 75.6% top-1 after 200 epochs, weiaicunzai/pytorch-cifar100; "
        "CCT-7/3x1: 80.9% after 300, SHI-Labs/Compact-Transformers). Whether the ranking holds at such budgets is "
        f"not tested here. {esc(late_gain_text(_csv(reports, 'plots/curves.csv'), list(t1['model'])))}",
        f"<b>Recipe strength</b>: {esc(augmentation_text(_distinct_runs(reports)))}",
        f"<b>Tuning</b>: {esc(tuning_text(_csv(reports, 'tune.csv'), t1))}",
        "The paper reports ACC 0.81-0.89 on CIFAR-100 for all five models, above published from-scratch results for "
        "models of these kinds (MLP-Mixer nano: 67.5% after 300 epochs, omihub777/MLP-Mixer-CIFAR); and its Recall "
        "differs from its ACC in every row, which macro recall over CIFAR-100's class-balanced test set rules out "
        "(see the consistency section).",
        "<b>Noise</b> is this project's reading of the paper's “noise level”: additive Gaussian pixel noise on train "
        "and test images (Figure 4), and on test images only after clean training (Figure 4b).",
    ]
    flops = dict(zip(t1["model"], t1["flops_per_image"]))
    if not is_missing(flops.get("msga")):
        ratios = ", ".join(f"{m} {flops['msga'] / f:.2f}×" for m, f in flops.items() if m != "msga" and not is_missing(f))
        items.append("<b>Parameters or compute</b>: Table 1 matches parameters, not compute; msga's forward FLOPs "
                     f"per image relative to each other model: {esc(ratios)}. The compute-matched block reads the "
                     "comparison at equal FLOPs; neither matches training time.")
    if ctx["dataset"].get("source") == "synthetic":
        items.append("<b>This report was produced on the synthetic fixture: its numbers are not CIFAR-100 "
                     "results.</b>")
    return _section("limits", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def code_commits(reports) -> list[str]:
    runs = _distinct_runs(reports)
    return sorted(runs["git_commit"].dropna().astype(str).unique()) if not runs.empty else []


def reproduce(reports: str | Path) -> HTML:
    ctx = _context(reports)
    commits = code_commits(reports)
    commands = ("# the whole replication: data, every run, aggregation, this report\n"
                "snakemake --cores all --resources gpu=1\n"
                "# or through DVC, which versions params, data, metrics, plots and the report\n"
                "dvc repro\n"
                "# the offline demo on the synthetic fixture (minutes on a CPU)\n"
                "snakemake --cores all --configfile workflow/demo.yaml")
    items = [f"<b>Params hash</b> (sha256 of the resolved grid, <code>reports/grid.json</code>): "
             f"<code>{esc(ctx['grid_sha256'])}</code>",
             "<b>Code commit(s) the runs recorded</b>: " + (", ".join(f"<code>{esc(c)}</code>" for c in commits)
                                                             or "none recorded") +
             (" (<code>+dirty</code>: the working tree differed from the commit)" if any("dirty" in c for c in commits)
              else "")]
    return _section("reproduce", f"<pre><code>{esc(commands)}</code></pre><ul>"
                                 + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def render(reports: str | Path, notebook: str | Path) -> Path:
    """papermill executes the notebook into reports/replication.ipynb; nbconvert's body-only
    ("basic") template makes the HTML of its outputs, and `page` wraps it: nbconvert's full
    templates load require.js, MathJax and mermaid from the network, which a report needs none of."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    reports = Path(reports).resolve()
    for name in REPORT_INPUTS:  # fail before executing, with a message rather than a notebook traceback
        if not (reports / name).exists():
            raise ReportInputMissing(f"{reports / name} is missing: run `msga aggregate` (or `snakemake`) first")
    # No output path: papermill returns the executed notebook, which is written below through a
    # temp file. Given the temp file itself it warns, since the temp name does not end in .ipynb.
    # The kernel talks to papermill over unix sockets in a private folder (IPC transport): over
    # TCP, unencrypted, any local user could read or send to it, and the kernel warns of that.
    with tempfile.TemporaryDirectory(prefix="msga-kernel-") as sockets:
        transport = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        nb = papermill.execute_notebook(
            str(notebook), None, parameters={"reports": str(reports)}, kernel_name="python3",
            progress_bar=False, cwd=str(reports.parent), language="python", config=transport,
        )
    nb.metadata["title"] = TITLE
    executed = reports / "replication.ipynb"
    with atomic_output(executed) as tmp:
        nbformat.write(nb, str(tmp))
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    out = reports / "replication.html"
    with atomic_output(out) as tmp:
        tmp.write_text(page(body))
    return out
