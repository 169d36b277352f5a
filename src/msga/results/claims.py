"""The paper's claims as statistical tests on the table of runs.

Every claim becomes a `Verdict`: "held", "not held", "within noise" or "not tested", with the
estimate, its interval, a p-value and the smallest difference the grid's seeds could detect, so
"within noise" says how large a difference would have been seen.

Two kinds of test, both at level ALPHA:

* Directional claims (an ordering, "best", the ablation, the trends around 8 heads) compare
  models or sweep values run with the same seeds. A seed fixes data order, augmentation and
  initialisation, so the difference is taken per seed (paired) and a t-interval is put on its
  mean. A claim made of several differences is "held" only if every interval lies on the claimed
  side (an intersection-union test: level ALPHA with no correction, because all of them must
  pass). It is "not held" if some difference is significantly reversed, Holm-corrected across
  the differences that could contradict the claim. Otherwise it is "within noise".
* "X influences Y" claims are a randomized-block ANOVA across the sweep values with the seed as
  the block, so the seed-to-seed variation shared by all values is taken out of the error; a
  permutation Friedman test (ranks within seed) is reported beside it as a check.

The array functions (`paired_stats`, `directional_test`, `block_anova`) work on any leading
batch shape, so the error rates can be simulated over thousands of tables at once; `evaluate`
feeds them one run table at a time.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from msga.grid.experiments import (
    ABLATION_HALVES, ANCHOR_REFERENCE, ANCHOR_TOLERANCE, CONTROLS, OURS, SWEEPS, paper_model,
)
from msga.grid.metrics import HEADLINE, LABELS
from msga.results.stats import (  # noqa: F401 (ALPHA, MIN_SEEDS, POWER: the claims' levels, read from here too)
    ALPHA, FRIEDMAN_DRAWS, HELD, MIN_SEEDS, NOT_HELD, NOT_TESTED, POWER, RESOLUTION, WITHIN_NOISE, PairedStats,
    block_anova, directional_test, friedman_p,
)

METRICS = HEADLINE
METRIC_LABELS = LABELS

HEADS_PEAK = 8  # Figure 2: Recall peaks at 8 heads
HEADS_MANY = (10, 12)  # ... and is lower at 10 and 12
HEADS_FEW = (1, 2)  # ... and lower when the heads are few
# the factors the paper names besides heads (which have their own claims). Its "noise level
# influences performance" does not say where the noise is, so both arms test it: noise in training
# and at test, and clean training with a noisy test. Its "robustness" names no comparator and no
# threshold, so it gives no direction to test: the clean-training arm is tested for influence only.
# The fixed-learning-rate batch arm is a diagnostic of the batch-size sweep, not a claim.
INFLUENCE = ("batch_size", "noise", "noise_test")
# Two models' costs are matched when each of parameters and forward FLOPs is within this share of
# the other's: the tolerance the compute-matched block is sized to (params.yaml)
COST_TOLERANCE = 0.15
# Why the anchor is not tested (its verdict's reason), where it is not
ANCHOR_PIPELINE_ONLY, ANCHOR_NOT_COMPARABLE, ANCHOR_NO_REFERENCE = "pipeline only", "not comparable", "no reference"

METHODS = (
    f"Each claim is tested at alpha = {ALPHA}. Runs that share a seed share data order, "
    "augmentation and initialisation, so comparisons between models (Table 1, the ablation) "
    "and between sweep values (the trends around 8 attention heads) are paired: the difference "
    "is taken per seed and a 95% t-interval is put on its mean (so each claimed difference is "
    "a one-sided test at alpha / 2). A claim that needs several "
    "differences (an ordering, 'best', the ablation) is held only if every interval lies on the "
    "claimed side, an intersection-union test whose level is alpha with no correction because "
    "all differences must pass; it is not held if some difference is significantly in the "
    "reverse direction, with a Holm correction across the differences that could contradict "
    "the claim (for an ordering, every pair of its models); otherwise it is within noise. "
    f"The ablation's halves ({', '.join(ABLATION_HALVES)}) cost less than {OURS}, so beating them confounds a "
    "component with size; each control that lacks one component at near-equal cost ("
    f"{', '.join(CONTROLS)}) gets a paired verdict of its own, and every ablation verdict states each model's "
    f"params and FLOPs as multiples of {OURS}'s (cost-matched: both within {COST_TOLERANCE:.0%}). "
    "The ordering and 'Ours best' are tested on Table 1's runs, matched in parameters, and again as "
    "verdicts of their own on the compute-matched block, where each baseline's row is played by a "
    f"larger size of its architecture whose forward FLOPs are close to {OURS}'s. "
    "Claims that a hyperparameter influences a metric use a randomized-block ANOVA over the "
    "sweep values with the seed as the block (a repeated-measures ANOVA): blocking removes the "
    "seed-to-seed variation that every value shares, which a one-way ANOVA would leave in its "
    "error term at a large cost in power. Under the null of no influence (every value draws "
    "from the same distribution, the seed's effect shared) its F test is exact; its level does "
    "lean on an equal run-to-run spread at every value, which a few seeds can neither check nor "
    "correct for, so a Friedman test (ranks within each seed, p from "
    f"{FRIEDMAN_DRAWS:,} within-seed permutations) is reported beside it and a disagreement is "
    "flagged. Influence is held if the ANOVA's p < alpha and is otherwise within noise (there "
    f"is no reverse direction). A comparison needs at least {MIN_SEEDS} seeds with runs on "
    f"both sides (a sweep: {MIN_SEEDS} seeds with a run at every value), the fewest that give "
    "an interval at all: the tests keep their level there, but the interval is wide, and the "
    "minimum detectable effect shows how little such a grid can see. Runs that are missing "
    "or have a NaN metric are left out and named; a claim is not tested only when too few "
    "paired seeds remain or a model or sweep value it names never ran. Every "
    f"tested verdict gives the smallest difference detectable with {POWER:.0%} power at alpha "
    "from the observed spread (the sd of paired differences, or the ANOVA's residual sd, for "
    "which it is the range of means in the least favourable layout: two values apart, the rest "
    f"midway); standard deviations below {RESOLUTION:g} are taken as {RESOLUTION:g}."
)


@dataclass(frozen=True)
class Verdict:
    label: str  # a short name for lists
    claim: str  # the claim as a reader understands it
    verdict: str  # held | not held | within noise | not tested
    method: str
    alpha: float
    estimate: float  # the deciding difference (claimed direction positive) or the range of means
    ci_low: float
    ci_high: float
    p_value: float
    n_seeds: int
    min_detectable: float
    evidence: str  # the numbers, or why the claim was not tested
    reason: str = ""  # a few words on why a claim was not tested
    block: str = ""  # the experiment whose runs it tests (table1, heads, ablation, anchor, ...)
    metric: str = ""  # the metric it tests (msga.grid.metrics)
    kind: str = ""  # a claim made once per metric and block ("Table 1 order"); else its label

    def __post_init__(self):
        if not self.kind:
            object.__setattr__(self, "kind", self.label)

    @property
    def per_metric(self) -> bool:
        """Whether the claim is made once per metric, its label naming the metric: "Ours best (ACC)"."""
        return self.kind != self.label


# ---------------------------------------------------------------- from the run table to arrays


def _fmt_value(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _list(items, limit: int = 6) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _experiment_rows(runs, experiment: str, columns) -> tuple[pd.DataFrame | None, str]:
    """The experiment's rows, or None and a short reason."""
    if runs is None or len(runs) == 0:
        return None, "the run table is empty"
    lacking = [c for c in ("experiment", "seed", *columns) if c not in runs.columns]
    if lacking:
        return None, f"the run table lacks column {', '.join(lacking)}"
    rows = runs[runs["experiment"] == experiment]
    if rows.empty:
        return None, f"no '{experiment}' runs in the table"
    return rows, ""


@dataclass(frozen=True)
class GroupMatrix:
    """One metric as groups x seeds; NaN where a run is missing or its metric is NaN."""

    groups: list
    seeds: list
    values: np.ndarray
    nan_runs: int  # rows present whose metric was NaN

    def missing(self, names=None) -> list[str]:
        names = names or [str(g) for g in self.groups]
        out = []
        for name, row in zip(names, self.values):
            absent = [s for s, v in zip(self.seeds, row) if not np.isfinite(v)]
            if len(absent) == len(self.seeds):
                out.append(f"{name}: no runs")
            elif absent:
                out.append(f"{name} seed {', '.join(str(s) for s in absent)}")
        return out


def _group_matrix(rows: pd.DataFrame, column: str, groups, metric: str) -> GroupMatrix:
    metric_values = pd.to_numeric(rows[metric], errors="coerce")
    frame = rows.assign(_metric=metric_values, _seed=rows["seed"])
    seeds = sorted(pd.unique(frame["_seed"].dropna()))
    table = frame.groupby([column, "_seed"])["_metric"].mean().unstack("_seed")  # duplicates: averaged
    table = table.reindex(index=list(groups), columns=seeds)
    return GroupMatrix(list(groups), seeds, table.to_numpy(dtype=float), int(metric_values.isna().sum()))


# ---------------------------------------------------------------- verdicts from arrays


def _not_tested(label: str, claim: str, method: str, reason: str, detail: str = "", n_seeds: int = 0) -> Verdict:
    nan = float("nan")
    evidence = reason + (f"; {detail}" if detail else "")
    return Verdict(label=label, claim=claim, verdict=NOT_TESTED, method=method, alpha=ALPHA, estimate=nan,
                   ci_low=nan, ci_high=nan, p_value=nan, n_seeds=n_seeds, min_detectable=nan, evidence=evidence,
                   reason=reason)


def _difference_text(name: str, stats_: PairedStats, i: int) -> str:
    return f"{name}: {stats_.mean[i]:+.4f} [{stats_.ci_low[i]:+.4f}, {stats_.ci_high[i]:+.4f}]"


def _too_few_seeds(seeds: int) -> str:
    return f"{seeds} seed{'' if seeds == 1 else 's'} only; needs {MIN_SEEDS}+ seeds"


def _shortfall(matrix: GroupMatrix, names, pairs, missing: list[str]) -> str:
    """A few words on why some comparison has fewer than MIN_SEEDS paired seeds."""
    if not np.isfinite(matrix.values).any():
        return "no runs with a finite metric"
    if len(matrix.seeds) < MIN_SEEDS:
        return _too_few_seeds(len(matrix.seeds))
    absent = [m.split(":")[0] for m in missing if m.endswith("no runs")]
    if absent:
        return "runs missing for " + _list(absent)
    finite = np.isfinite(matrix.values)
    short = [f"{names[b]} - {names[a]}" for a, b in dict.fromkeys(pairs) if (finite[a] & finite[b]).sum() < MIN_SEEDS]
    return f"fewer than {MIN_SEEDS} paired seeds for {_list(short, 3)}"


def _directional_verdict(label, claim, matrix: GroupMatrix, names, claimed_pairs, opposing_pairs=None) -> Verdict:
    """Paired comparisons of matrix rows; names label the rows in the evidence."""
    opposing_pairs = list(claimed_pairs) if opposing_pairs is None else list(opposing_pairs)
    result = directional_test(matrix.values, claimed_pairs, opposing_pairs)
    n_seeds = int(min(result.claimed.n.min(), result.opposing.n.min()))
    method = (f"paired t over {n_seeds} seeds, 95% CI; held if all {len(claimed_pairs)} intervals > 0 "
              f"(intersection-union); not held if a reversal has Holm p < {ALPHA} over {len(opposing_pairs)}")
    missing = matrix.missing(names)
    if result.verdict[()] == NOT_TESTED:
        reason = _shortfall(matrix, names, [*claimed_pairs, *opposing_pairs], missing)
        return _not_tested(label, claim, method, reason, _missing_text(missing, matrix), n_seeds)

    verdict = str(result.verdict[()])
    steps = [_difference_text(f"{names[b]} - {names[a]}", result.claimed, i) for i, (a, b) in enumerate(claimed_pairs)]
    evidence = "; ".join(steps)
    if verdict == NOT_HELD:
        key = int(np.argmin(result.opposing_holm))
        low, high = opposing_pairs[key]
        side = result.opposing
        p_value = float(result.opposing_holm[key])
        evidence += f"; reversed: {names[high]} - {names[low]} = {side.mean[key]:+.4f}, Holm p = {p_value:.3g}"
    else:
        key = int(np.nanargmax(np.nan_to_num(result.claimed.p_above, nan=1.0)))
        side, p_value = result.claimed, float(result.iut_p)
        # a reversal whose own interval excludes 0 but that the correction for the pairs does not confirm:
        # said in words, so the interval above does not read as a verdict the table does not give
        below = np.nan_to_num(result.opposing.ci_high, nan=1.0) < 0
        if below.any():
            worst = int(np.argmin(np.where(below, result.opposing_holm, np.inf)))
            low, high = opposing_pairs[worst]
            evidence += (f"; {names[high]} - {names[low]} is below 0 on its own, but its Holm p over the "
                         f"{len(opposing_pairs)} pairs is {float(result.opposing_holm[worst]):.3g} (not < {ALPHA})")
    min_detectable = float(np.nanmax(result.claimed.min_detectable))
    evidence += f"; detectable difference with {n_seeds} seeds: {min_detectable:.4f}"
    evidence += _missing_text(missing, matrix, prefix="; ")
    return Verdict(label=label, claim=claim, verdict=verdict, method=method, alpha=ALPHA,
                   estimate=float(side.mean[key]), ci_low=float(side.ci_low[key]), ci_high=float(side.ci_high[key]),
                   p_value=p_value, n_seeds=n_seeds, min_detectable=min_detectable, evidence=evidence)


def _missing_text(missing: list[str], matrix: GroupMatrix, prefix: str = "") -> str:
    parts = []
    if missing:
        parts.append("missing: " + _list(missing, 4))
    if matrix.nan_runs:
        parts.append(f"{matrix.nan_runs} run(s) with a NaN metric left out")
    return prefix + "; ".join(parts) if parts else ""


def _rank_check_note(anova_p: float, rank_p: float) -> str:
    """Say when the rank test disagrees, since the ANOVA's level leans on equal spread across values."""
    if anova_p < ALPHA <= rank_p:
        return (" (the rank check does not confirm: the effect may sit in one value, or the values' "
                "spreads may differ, which the ANOVA assumes they do not)")
    if rank_p < ALPHA <= anova_p:
        return " (the rank check finds an effect the ANOVA does not)"
    return ""


def _sweep_verdict(label, claim, matrix: GroupMatrix, value_name: str) -> Verdict:
    names = [f"{value_name}={_fmt_value(g)}" for g in matrix.groups]
    complete = np.isfinite(matrix.values).all(axis=0)
    seeds = [s for s, c in zip(matrix.seeds, complete) if c]
    k = len(matrix.groups)
    method = f"randomized-block ANOVA (seed = block), {k} values x {len(seeds)} seeds; Friedman as check"
    missing = matrix.missing(names)
    if k < 2:
        return _not_tested(label, claim, method, "fewer than two values ran", _missing_text(missing, matrix))
    if len(seeds) < MIN_SEEDS:
        reason = (_too_few_seeds(len(matrix.seeds)) if len(matrix.seeds) < MIN_SEEDS
                  else f"{len(seeds)} seed(s) with a run at every value; needs {MIN_SEEDS}+")
        return _not_tested(label, claim, method, reason, _missing_text(missing, matrix), len(seeds))
    values = matrix.values[:, complete]
    result = block_anova(values)
    means = ", ".join(f"{_fmt_value(g)}: {m:.4f}" for g, m in zip(matrix.groups, result.value_means))
    rank_p = friedman_p(values)
    evidence = (f"F({result.df_between}, {result.df_error}) = {float(result.f):.2f}, p = {float(result.p_value):.3g}; "
                f"Friedman p = {rank_p:.3g}{_rank_check_note(float(result.p_value), rank_p)}; means {means}; "
                f"range {float(result.spread):.4f}, detectable range with {len(seeds)} seeds: "
                f"{float(result.min_detectable):.4f}")
    if len(seeds) < len(matrix.seeds):
        evidence += "; seeds left out for missing runs: " + _list(s for s, c in zip(matrix.seeds, complete) if not c)
    evidence += _missing_text(missing, matrix, prefix="; ")
    nan = float("nan")
    return Verdict(label=label, claim=claim, verdict=str(result.verdict[()]), method=method, alpha=ALPHA,
                   estimate=float(result.spread), ci_low=nan, ci_high=nan, p_value=float(result.p_value),
                   n_seeds=len(seeds), min_detectable=float(result.min_detectable), evidence=evidence)


# ---------------------------------------------------------------- the claims


def _paper_order(paper) -> tuple[list[str], list[str], str]:
    """Models in the paper's claimed ranking (lowest first), their short labels, or a reason."""
    if paper is None or len(paper) == 0 or "model" not in paper.columns:
        return [], [], "the paper's Table 1 is missing"
    models = [str(m) for m in paper["model"]]
    rows = paper["paper_row"] if "paper_row" in paper.columns else paper["model"]
    labels = [re.sub(r"\s*\[\d+\]", "", str(r)).strip() for r in rows]  # "MLP [8]" -> "MLP"
    return models, labels, ""


@dataclass(frozen=True)
class ModelBlock:
    """A block of models compared as Table 1's rows: the paper's ordering and "Ours best" are
    tested on each."""

    experiment: str  # its section under `experiments:`
    label: str  # "" for Table 1 itself, else how its verdicts' labels and claims say which block
    stand_ins: bool  # the paper's rows are played by models of the same architecture at another size


MODEL_BLOCKS = (ModelBlock("table1", "", stand_ins=False),
                ModelBlock("compute_matched", "at matched compute", stand_ins=True))


def _block_models(rows: pd.DataFrame, models: list[str], block: ModelBlock) -> tuple[list[str], str]:
    """The model of the block's runs that plays each of the paper's rows (the row's own model when
    none does, which then counts as missing), or a reason why the rows cannot be told apart.

    At matched compute a row is played by another size of its architecture (convnext_flops for
    convnext); the paper's own model plays it only when no other size ran (msga, the reference).
    """
    if not block.stand_ins:
        return list(models), ""
    ran = [str(m) for m in pd.unique(rows["model"])]
    out, ambiguous = [], []
    for model in models:
        others = [m for m in ran if m != model and paper_model(m, models) == model]
        if len(others) > 1:
            ambiguous.append(f"{' and '.join(others)} both stand for {model}")
        out.append(others[0] if others else model)
    return out, "; ".join(ambiguous)


def _block_texts(block: ModelBlock, kind: str, metric: str, claim: str, players: list[str], models: list[str]):
    """(label, claim) of one block's verdict on one metric."""
    where = f" {block.label}" if block.label else ""
    label = f"{kind}{where} ({METRIC_LABELS[metric]})"
    if block.label and players != models:
        claim += f", {block.label} ({', '.join(p for p, m in zip(players, models) if p != m)} in the paper's rows)"
    elif block.label:
        claim += f", {block.label}"
    return label, claim


def _block_claims(runs, paper, block: ModelBlock, kind: str, claim_of, pairs_of) -> list[Verdict]:
    """One verdict per metric on the block's runs: claim_of(ours, order) says the claim, pairs_of(n)
    gives the (claimed, opposing) pairs over the paper's n rows, lowest first."""
    models, labels, problem = _paper_order(paper)
    order = " < ".join(labels) if labels else "MLP < CNN < LSTM < Transformer < Ours"
    ours = models[-1] if models else OURS
    out = []
    for metric in METRICS:
        rows, reason = _experiment_rows(runs, block.experiment, ("model", metric))
        players, ambiguous = _block_models(rows, models, block) if rows is not None else (models, "")
        label, claim = _block_texts(block, kind, metric, claim_of(ours, order, METRIC_LABELS[metric]), players, models)
        if problem or rows is None or len(models) < 2 or ambiguous:
            verdict = _not_tested(label, claim, "paired t", problem or reason or ambiguous or "fewer than two models")
        else:
            claimed, opposing = pairs_of(len(models))
            matrix = _group_matrix(rows, "model", players, metric)
            verdict = _directional_verdict(label, claim, matrix, players, claimed, opposing)
        out.append(replace(verdict, block=block.experiment, metric=metric, kind=kind))
    return out


def _ordering_pairs(n: int):
    return [(i, i + 1) for i in range(n - 1)], [(i, j) for i in range(n) for j in range(i + 1, n)]


def _best_pairs(n: int):
    return [(i, n - 1) for i in range(n - 1)], None


def ordering_claims(runs, paper, block: ModelBlock = MODEL_BLOCKS[0]) -> list[Verdict]:
    """Claim 1: Table 1's rows increase in the paper's order, one verdict per metric."""
    return _block_claims(runs, paper, block, "Table 1 order",
                         lambda ours, order, metric: f"Table 1 ordering {order} on {metric}", _ordering_pairs)


def best_claims(runs, paper, block: ModelBlock = MODEL_BLOCKS[0]) -> list[Verdict]:
    """Claim 2: the paper's last row (its own model) beats every other row, per metric."""
    return _block_claims(runs, paper, block, "Ours best",
                         lambda ours, order, metric: f"Ours ({ours}) is best on {metric}, above every other "
                                                     "Table 1 model", _best_pairs)


def _heads_trend(label, claim, matrix: GroupMatrix, lower_values) -> Verdict:
    """Recall at HEADS_PEAK heads above Recall at each of lower_values (paired by seed)."""
    present = [float(g) for g in matrix.groups]
    absent = [v for v in (HEADS_PEAK, *lower_values) if float(v) not in present]
    ran = f"the sweep ran {', '.join(_fmt_value(v) for v in present)} heads"
    if absent:
        reason = f"heads = {_list(_fmt_value(v) for v in absent)} not in the sweep"
        return _not_tested(label, claim, "paired t", reason, ran)
    if not lower_values:
        return _not_tested(label, claim, "paired t", f"no head count besides {HEADS_PEAK} in the sweep", ran)
    names = [f"{_fmt_value(g)} heads" for g in matrix.groups]
    peak = present.index(float(HEADS_PEAK))
    pairs = [(present.index(float(v)), peak) for v in lower_values]
    return _directional_verdict(label, claim, matrix, names, pairs)


def heads_claims(runs) -> list[Verdict]:
    """Claim 3 (Figure 2): heads influence Recall, peak at 8, fall at 10/12, are low when few."""
    stated = [
        ("heads influence Recall", "The number of attention heads influences Recall (across all values)"),
        (f"Recall peak at {HEADS_PEAK} heads", f"Recall peaks at {HEADS_PEAK} heads (above every other count)"),
        (f"Recall lower at {', '.join(map(str, HEADS_MANY))} heads",
         f"Recall is lower at {' and '.join(map(str, HEADS_MANY))} heads than at {HEADS_PEAK}"),
        (f"Recall lower at {', '.join(map(str, HEADS_FEW))} heads",
         f"Recall is lower at few heads ({' and '.join(map(str, HEADS_FEW))}) than at {HEADS_PEAK}"),
    ]
    sweep = SWEEPS["heads"]
    rows, reason = _experiment_rows(runs, sweep.experiment, (sweep.x, sweep.metric))
    if rows is None:
        verdicts = [_not_tested(label, claim, "see METHODS", reason) for label, claim in stated]
    else:
        heads = pd.to_numeric(rows[sweep.x], errors="coerce")
        values = sorted(pd.unique(heads.dropna()))
        matrix = _group_matrix(rows.assign(**{sweep.x: heads}), sweep.x, values, sweep.metric)
        others = [v for v in values if float(v) != HEADS_PEAK]
        verdicts = [
            _sweep_verdict(*stated[0], matrix, sweep.x),
            _heads_trend(*stated[1], matrix, others),
            _heads_trend(*stated[2], matrix, HEADS_MANY),
            _heads_trend(*stated[3], matrix, HEADS_FEW),
        ]
    return [replace(v, block=sweep.experiment, metric=sweep.metric) for v in verdicts]


def sweep_claims(runs) -> list[Verdict]:
    """Claim 4: batch size and noise level (in both arms) influence ACC (across each sweep's values)."""
    out = []
    for sweep in (SWEEPS[experiment] for experiment in INFLUENCE):
        column, shown = sweep.x, METRIC_LABELS[sweep.metric]
        label = f"{sweep.name.lower()} influences {shown}"
        claim = f"{sweep.name} influences performance ({shown}, across the sweep's values of {sweep.label})"
        rows, reason = _experiment_rows(runs, sweep.experiment, (column, sweep.metric))
        if rows is None:
            verdict = _not_tested(label, claim, "randomized-block ANOVA", reason)
        else:
            rows = rows.assign(**{column: pd.to_numeric(rows[column], errors="coerce")})
            values = sorted(pd.unique(rows[column].dropna()))
            verdict = _sweep_verdict(label, claim, _group_matrix(rows, column, values, sweep.metric), column)
        out.append(replace(verdict, block=sweep.experiment, metric=sweep.metric))
    return out


def cost_ratios(runs, model: str, reference: str) -> tuple[float, float]:
    """model's parameters and forward FLOPs per image as multiples of reference's, from the run
    table's cost columns (NaN where either is unknown). Costs depend on the architecture only, so
    any run of the model serves."""
    def cost(name, column):
        if runs is None or column not in runs.columns or "model" not in runs.columns:
            return float("nan")
        values = pd.to_numeric(runs.loc[runs["model"] == name, column], errors="coerce").dropna()
        return float(values.iloc[0]) if len(values) else float("nan")

    return tuple(cost(model, c) / cost(reference, c) for c in ("params", "flops_per_image"))


def cost_matched(params_ratio: float, flops_ratio: float) -> bool:
    """Whether both costs are within COST_TOLERANCE of the reference's (unknown costs: not matched)."""
    slack = 1e-9  # in floats 0.85 - 1 is not -0.15
    return all(np.isfinite(r) and abs(r - 1) <= COST_TOLERANCE + slack for r in (params_ratio, flops_ratio))


def cost_text(runs, models, reference: str) -> str:
    """Each model's cost beside the reference's, and whether the comparison is cost-matched."""
    parts = []
    for model in models:
        params_ratio, flops_ratio = cost_ratios(runs, model, reference)
        if not (np.isfinite(params_ratio) and np.isfinite(flops_ratio)):
            parts.append(f"cost of {model} unknown")
            continue
        matched = ("cost-matched" if cost_matched(params_ratio, flops_ratio)
                   else "not cost-matched: the difference may be one of size")
        parts.append(f"{model}: {params_ratio:.2f}x {reference}'s params, {flops_ratio:.2f}x its FLOPs ({matched})")
    return "; ".join(parts)


def _with_costs(verdict: Verdict, runs, models, reference: str) -> Verdict:
    if verdict.verdict == NOT_TESTED:
        return verdict
    return replace(verdict, evidence=f"{verdict.evidence}; {cost_text(runs, models, reference)}")


def ablation_claims(runs) -> list[Verdict]:
    """Claim 5: the full model beats each half on ACC, so the two components are complementary
    (the halves cost less, so this confounds component and size); and, at near-equal cost, it
    beats each control that lacks one component."""
    full, parts = OURS, ABLATION_HALVES
    rows, reason = _experiment_rows(runs, "ablation", ("model", "acc"))
    halves_label = "ablation: full beats both halves"
    halves_claim = (f"Multi-scale convolution and global attention are complementary: {full} beats "
                    f"{' and '.join(parts)} on ACC (the halves are not sized to {full}'s cost: size is confounded)")
    controls = [(f"ablation at equal cost: {full} beats {control}",
                 f"{component[0].upper()}{component[1:]} matters at equal cost: {full} beats {control} "
                 f"({change}, near-equal params and FLOPs) on ACC", control)
                for control, (component, change) in CONTROLS.items()]
    if rows is None:
        out = [_not_tested(halves_label, halves_claim, "paired t", reason),
               *(_not_tested(label, claim, "paired t", reason) for label, claim, _ in controls)]
    else:
        models = [*parts, full]
        matrix = _group_matrix(rows, "model", models, "acc")
        above_each = [(i, len(parts)) for i in range(len(parts))]
        halves = _directional_verdict(halves_label, halves_claim, matrix, models, above_each)
        out = [_with_costs(halves, rows, parts, full)]
        for label, claim, control in controls:
            pair = [control, full]
            verdict = _directional_verdict(label, claim, _group_matrix(rows, "model", pair, "acc"), pair, [(0, 1)])
            out.append(_with_costs(verdict, rows, [control], full))
    return [replace(v, block="ablation", metric="acc") for v in out]


def evaluate(runs: pd.DataFrame, paper: pd.DataFrame) -> list[Verdict]:
    """Every claim's verdict, in a stable order: Table 1 ordering, best, heads, sweeps, the ablation
    and its cost-matched controls, then the ordering and best at matched compute."""
    table1, matched = MODEL_BLOCKS
    return [*ordering_claims(runs, paper, table1), *best_claims(runs, paper, table1), *heads_claims(runs),
            *sweep_claims(runs), *ablation_claims(runs), *ordering_claims(runs, paper, matched),
            *best_claims(runs, paper, matched)]


# ---------------------------------------------------------------- the calibration anchor (not a claim of the paper)


def anchor_check(row: dict, synthetic: bool) -> dict:
    """An anchor model's mean ACC (row: model, acc_mean, epochs) against its literature value:
    status 'pass' or 'fail' (within ANCHOR_TOLERANCE or not), 'not comparable' (fewer epochs than
    the reference's), 'pipeline only' (synthetic data) or 'no reference', with the numbers."""
    reference = ANCHOR_REFERENCE.get(row["model"])
    out = {"reference": reference, "difference": None, "status": ANCHOR_NO_REFERENCE}
    if reference is None:
        return out
    out["difference"] = row["acc_mean"] - reference["acc"]
    if synthetic:
        out["status"] = ANCHOR_PIPELINE_ONLY
    elif int(row["epochs"]) < reference["epochs"]:
        out["status"] = ANCHOR_NOT_COMPARABLE
    else:
        out["status"] = "pass" if abs(out["difference"]) <= ANCHOR_TOLERANCE else "fail"
    return out


def anchor_claims(anchor: pd.DataFrame, synthetic: bool) -> list[Verdict]:
    """Each anchor model of the aggregated anchor table (model, n_seeds, acc_mean, epochs) as a
    verdict: held when its ACC is within ANCHOR_TOLERANCE of the literature's, not held when it
    is not, not tested (the reason: its status) where the check does not apply."""
    out = []
    for row in anchor.to_dict("records"):
        check = anchor_check(row, synthetic)
        reference = check["reference"] or {}
        verdict = {"pass": HELD, "fail": NOT_HELD}.get(check["status"], NOT_TESTED)
        literature = (f"{reference['acc']:.3f} after {reference['epochs']} epochs ({reference['source']})"
                      if reference else "none known")
        difference = check["difference"]
        evidence = (f"mean ACC {row['acc_mean']:.4f} over {int(row['n_seeds'])} seed(s) after {int(row['epochs'])} "
                    f"epochs; literature {literature}"
                    + (f"; difference {difference:+.4f}" if difference is not None else ""))
        nan = float("nan")
        out.append(Verdict(
            label=f"calibration anchor: {row['model']}",
            claim=f"{row['model']}, trained by its own literature recipe, reaches the literature's top-1 within "
                  f"±{ANCHOR_TOLERANCE * 100:.0f} points (a check of data, augmentation and evaluation, not a "
                  "claim of the paper)",
            verdict=verdict, method=f"|mean ACC - literature ACC| <= {ANCHOR_TOLERANCE} (a margin, not a test)",
            alpha=nan, estimate=nan if difference is None else difference, ci_low=nan, ci_high=nan, p_value=nan,
            n_seeds=int(row["n_seeds"]), min_detectable=nan, evidence=evidence,
            reason=check["status"] if verdict == NOT_TESTED else "", block="anchor", metric="acc"))
    return out


# ---------------------------------------------------------------- output


def to_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    columns = [f.name for f in fields(Verdict)]
    return pd.DataFrame([asdict(v) for v in verdicts], columns=columns)


def _labels(verdicts) -> str:
    """Short names joined, with per-metric claims folded: "Ours best (AUC, ACC)"."""
    folded: dict[str, list[str]] = {}
    for v in verdicts:
        shown = METRIC_LABELS[v.metric] if v.per_metric else ""
        folded.setdefault(v.label.removesuffix(f" ({shown})"), []).append(shown)
    return "; ".join(f"{stem} ({', '.join(m)})" if all(m) else stem for stem, m in folded.items())


def summary(verdicts: list[Verdict]) -> str:
    """One quotable paragraph: how many claims held, which not, which within noise, which untested."""
    if not verdicts:
        return "No claims were evaluated."
    by = {kind: [v for v in verdicts if v.verdict == kind] for kind in (HELD, NOT_HELD, WITHIN_NOISE, NOT_TESTED)}
    tested = len(verdicts) - len(by[NOT_TESTED])
    parts = [f"Of {len(verdicts)} claims of the paper, {tested} could be tested at alpha = {ALPHA}" if tested
             else f"None of the {len(verdicts)} claims of the paper could be tested"]
    if tested:
        found = [f"{len(by[HELD])} held" + (f" ({_labels(by[HELD])})" if by[HELD] else ""),
                 f"{len(by[NOT_HELD])} did not hold" + (f" ({_labels(by[NOT_HELD])})" if by[NOT_HELD] else "")]
        within = by[WITHIN_NOISE]
        if within:
            detectable = [v.min_detectable for v in within if np.isfinite(v.min_detectable)]
            scale = (f"; with these seeds only differences above about {min(detectable):.3f}-{max(detectable):.3f} "
                     "could have been seen" if detectable else "")
            found.append(f"{len(within)} were within seed noise ({_labels(within)}{scale})")
        else:
            found.append("none was within seed noise")
        parts[0] += ": " + ", ".join(found)
    if by[NOT_TESTED]:
        reasons: dict[str, list[Verdict]] = {}
        for v in by[NOT_TESTED]:
            reasons.setdefault(v.reason or "no data", []).append(v)
        listed = "; ".join(f"{_labels(group)}: {reason}" for reason, group in reasons.items())
        parts.append(f"{len(by[NOT_TESTED])} were not tested ({listed})")
    return ". ".join(parts) + "."
