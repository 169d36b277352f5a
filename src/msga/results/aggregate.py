"""All runs -> Table 1, the sensitivity data, the ablation, costs, the claims' verdicts and the
consistency check of the paper's metrics.

Reads only what the runs wrote (metrics.json, history.jsonl), checked against the grid the DAG
resolved: a missing, unfinished, damaged or stale run is named in problems.csv and the rest is
aggregated anyway, so a partial replication still reports, and says what it lacks.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import pandas as pd

from msga.grid import experiments
from msga.grid.experiments import MODEL_SETS, OURS, SWEEPS
from msga.grid.metrics import HEADLINE, SCORES
from msga.grid.paths import aggregate_files, sweep_data
from msga.grid.recipe import scaled_lr
from msga.grid.resolve import Grid, setting
from msga.grid.runs import COORDINATES, Run
from msga.infra.atomic import atomic_output, write_json_atomic, write_text_atomic
from msga.models import model_entry
from msga.results import claims, consistency, plots
from msga.results.runfiles import FINISHED, current_state
from msga.results.stats import ci95, summarize
from msga.results.tuning import inherited_rates, tune_table

log = logging.getLogger("msga.aggregate")

RECIPE_KEYS = ("epochs", "optimizer", "nesterov", "schedule", "min_lr", "milestones", "gamma", "warmup_epochs",
               "weight_decay", "weight_decay_all", "label_smoothing", "grad_clip")
PROBLEM_COLUMNS = ["experiments", "model", "variant", "seed", "status", "reason"]


def collect(grid: Grid, runs_root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict]]:
    """(one row per experiment x finished current run, training curves, runs not aggregated,
    the per-class scores of Table 1's runs).

    Each run is read once; only runs whose recorded configuration is the one the grid resolves
    for them are aggregated. Missing, in-progress, stale and damaged runs are listed instead.
    """
    rows, curves, problems, classes = [], [], [], []
    for run, exps in grid.serves().items():
        state = current_state(runs_root, run, grid.key(run), grid.configs[run.id])
        if state.status != FINISHED:
            log.warning("%s", state.reason)
            problems.append({"experiments": ", ".join(exps), "model": run.model, "variant": run.variant,
                             "seed": run.seed, "status": state.status, "reason": state.reason})
            continue
        row = _row(run, state.metrics)
        rows += [{"experiment": exp, **row} for exp in exps]
        if set(exps) & set(MODEL_SETS):
            curves += [{"model": run.model, "variant": run.variant, "seed": run.seed, **h} for h in state.history]
        if "table1" in exps:
            scores = class_scores(state.metrics)
            if scores:
                classes.append({"model": run.model, "seed": run.seed, **scores})
    return pd.DataFrame(rows), pd.DataFrame(curves), pd.DataFrame(problems, columns=PROBLEM_COLUMNS), classes


def class_scores(metrics: dict) -> dict:
    """A run's per-class recall, confusion matrix (rows: true class) and class names, or {} when
    its metrics.json lacks them or they do not fit together (written by older code, or damaged):
    the figures then leave the run out rather than fail."""
    recall, matrix = metrics.get("per_class_recall"), metrics.get("confusion_matrix")
    if not isinstance(recall, list) or not isinstance(matrix, list) or not recall:
        return {}
    n = len(recall)
    names = metrics.get("classes")
    if not (isinstance(names, list) and len(names) == n):
        names = [str(i) for i in range(n)]
    try:
        recall = [float(v) for v in recall]
        matrix = [[float(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return {}
    if len(matrix) != n or any(len(row) != n for row in matrix) or not all(map(math.isfinite, recall)):
        return {}
    return {"per_class_recall": recall, "confusion_matrix": matrix, "classes": [str(c) for c in names]}


def _row(run: Run, metrics: dict) -> dict:
    """The run's scores, its sweep coordinates and its recipe, as it recorded them."""
    config = metrics["config"]
    return {
        "model": run.model, "variant": run.variant, "seed": run.seed, "key": metrics.get("key"),
        **{k: metrics[k] for k in SCORES},
        **{column: setting(config, key) for column, key in COORDINATES.items()},
        **{k: config["train"].get(k) for k in RECIPE_KEYS},
        "effective_lr": scaled_lr(config["train"]),
        "augment": describe_augment(config["train"]["augment"]),
        "data": config.get("data", {}).get("id"),
        "params": metrics.get("params"),
        "flops_per_image": metrics.get("flops_per_image"),
        "train_seconds": metrics.get("train_seconds"),
        "train_images_per_s": metrics.get("train_images_per_s"),
        "wall_seconds": metrics.get("wall_seconds"),
        "device": metrics.get("device"),
        "git_commit": metrics.get("git_commit"),
        "torch": (metrics.get("versions") or {}).get("torch"),
    }


def describe_augment(augment: dict) -> str:
    """A recipe's augmentation in a few words."""
    parts = ["random crop (pad 4) + horizontal flip"] if augment.get("crop_flip") else []
    if augment.get("rotate_degrees"):
        parts.append(f"random rotation (±{augment['rotate_degrees']:g}°)")
    if augment.get("trivial_augment"):
        parts.append("TrivialAugment-wide")
    for kind in ("mixup", "cutmix"):
        if augment.get(f"{kind}_alpha"):
            parts.append(f"{kind} (alpha {augment[f'{kind}_alpha']:g})")
    return " + ".join(parts) or "none"


def model_costs(runs: pd.DataFrame) -> pd.DataFrame:
    """Each model's role (the row of Table 1 or the ablation it stands for), parameters and forward
    FLOPs per image, as its base runs recorded them: every table that compares models shows them."""
    part = runs[runs.variant == "base"] if not runs.empty else runs
    if part.empty or "params" not in part:
        return pd.DataFrame(columns=["model", "role", "params", "flops_per_image"])
    out = part.groupby("model", sort=False)[["params", "flops_per_image"]].first().reset_index()
    out.insert(1, "role", [_role(m) for m in out["model"]])
    return out


def _role(model: str) -> str:
    try:
        return model_entry(model).paper_row
    except KeyError:
        return ""


def table1(runs: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's rows, each beside our mean, spread and interval over seeds and its costs."""
    ours = summarize(runs[runs.experiment == "table1"], "model")
    table = paper[["model", "paper_row"]].merge(ours, on="model", how="left")
    for m in HEADLINE:
        table[f"paper_{m}"] = paper[m].values
        table[f"diff_{m}"] = table[f"{m}_mean"] - table[f"paper_{m}"]
    return table.merge(model_costs(runs), on="model", how="left")


def paper_model(model: str, paper: pd.DataFrame) -> str | None:
    """The paper's row a model stands for: itself, or the row built by the same architecture."""
    return experiments.paper_model(model, paper["model"])


def in_order(df: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Rows in the order the grid lists the models (models it does not list last)."""
    rank = {m: i for i, m in enumerate(models)}
    return df.sort_values("model", key=lambda col: col.map(lambda m: rank.get(m, len(rank))), kind="stable")


def grid_models(grid: Grid, experiment: str) -> list[str]:
    return list((grid.params["experiments"].get(experiment) or {}).get("models", []))


def compute_matched(runs: pd.DataFrame, paper: pd.DataFrame, order: list[str] = ()) -> pd.DataFrame:
    """The compute-matched block: each model's summary and costs beside the paper's value for
    the architecture it is (the paper gives no sizes, so its one row serves both budgets)."""
    part = runs[runs.experiment == "compute_matched"] if not runs.empty else runs
    ours = in_order(summarize(part, "model"), list(order)).reset_index(drop=True)
    if ours.empty:
        return pd.DataFrame(columns=[*ours.columns, "paper_model", "paper_row",
                                     *(f"{p}_{m}" for p in ("paper", "diff") for m in HEADLINE),
                                     "role", "params", "flops_per_image"])
    ours.insert(1, "paper_model", [paper_model(m, paper) for m in ours["model"]])
    rows = paper.set_index("model")
    ours.insert(2, "paper_row", [rows.loc[p, "paper_row"] if p else None for p in ours["paper_model"]])
    for m in HEADLINE:
        ours[f"paper_{m}"] = [rows.loc[p, m] if p else float("nan") for p in ours["paper_model"]]
        ours[f"diff_{m}"] = ours[f"{m}_mean"] - ours[f"paper_{m}"]
    return ours.merge(model_costs(runs), on="model", how="left")


def ablation(runs: pd.DataFrame, order: list[str] = ()) -> pd.DataFrame:
    """The ablation's models: summary over seeds beside each model's costs, as multiples of the full
    model's, and whether its comparison with the full model is cost-matched."""
    part = runs[runs.experiment == "ablation"] if not runs.empty else runs
    ours = in_order(summarize(part, "model"), list(order)).reset_index(drop=True)
    out = ours.merge(model_costs(runs), on="model", how="left")
    ratios = [claims.cost_ratios(out, m, OURS) for m in out["model"]]
    out["params_ratio"] = [r[0] for r in ratios]
    out["flops_ratio"] = [r[1] for r in ratios]
    out["cost_matched"] = [claims.cost_matched(*r) for r in ratios]
    return out


ANCHOR_COLUMNS = ["model", "role", "n_seeds", "acc_mean", "acc_std", "acc_ci95", "top5_mean", "epochs",
                  "batch_size", "optimizer", "params", "flops_per_image", "reference_acc", "reference_epochs",
                  "reference_source", "difference", "status"]


def anchor(runs: pd.DataFrame, synthetic: bool = False) -> pd.DataFrame:
    """The calibration anchor's top-1 (and top-5) over seeds, with the budget it trained and its
    check against the literature (claims.anchor_check: status pass, fail, not comparable, ...)."""
    part = runs[runs.experiment == "anchor"] if not runs.empty else runs
    if part.empty:
        return pd.DataFrame(columns=ANCHOR_COLUMNS)
    grouped = part.groupby("model", sort=False)
    out = pd.DataFrame({
        "n_seeds": grouped["seed"].nunique(), "acc_mean": grouped["acc"].mean(),
        "acc_std": grouped["acc"].std(ddof=1), "acc_ci95": grouped["acc"].apply(ci95),
        "top5_mean": grouped["top5"].mean(), "epochs": grouped["epochs"].first(),
        "batch_size": grouped["batch_size"].first(), "optimizer": grouped["optimizer"].first(),
    }).reset_index()
    checks = [claims.anchor_check(r, synthetic) for r in out.to_dict("records")]
    for column, field in (("reference_acc", "acc"), ("reference_epochs", "epochs"), ("reference_source", "source")):
        out[column] = [(c["reference"] or {}).get(field) for c in checks]
    out["difference"] = [c["difference"] for c in checks]
    out["status"] = [c["status"] for c in checks]
    return out.merge(model_costs(runs), on="model", how="left")[ANCHOR_COLUMNS]


PER_CLASS_COLUMNS = ["model", "class_index", "class_name", "recall_mean", "recall_min", "recall_max", "n_seeds"]


def per_class_recall(classes: list[dict], model: str = OURS) -> pd.DataFrame:
    """One model's recall per class over its Table 1 seeds (mean and range), hardest class first."""
    mine = [c for c in classes if c["model"] == model]
    if not mine:
        return pd.DataFrame(columns=PER_CLASS_COLUMNS)
    names = mine[0]["classes"]
    per_seed = pd.DataFrame([c["per_class_recall"] for c in mine if len(c["per_class_recall"]) == len(names)])
    out = pd.DataFrame({"model": model, "class_index": range(len(names)), "class_name": names,
                        "recall_mean": per_seed.mean().values, "recall_min": per_seed.min().values,
                        "recall_max": per_seed.max().values, "n_seeds": len(per_seed)})
    return out.sort_values(["recall_mean", "class_index"]).reset_index(drop=True)[PER_CLASS_COLUMNS]


def confusion(classes: list[dict], model: str = OURS) -> pd.DataFrame:
    """One model's confusion matrix summed over its Table 1 seeds, each row divided by its total:
    the share of a true class's test images given each predicted class. Rows and columns are
    named by class."""
    mine = [c for c in classes if c["model"] == model]
    if not mine:
        return pd.DataFrame(columns=["true_class"])
    names = mine[0]["classes"]
    total = sum(pd.DataFrame(c["confusion_matrix"]).values for c in mine if len(c["confusion_matrix"]) == len(names))
    rows = total.sum(axis=1, keepdims=True)
    shares = pd.DataFrame(total / rows.clip(min=1), columns=names)
    shares.insert(0, "true_class", names)
    return shares


def sweep(runs: pd.DataFrame, exp: str) -> pd.DataFrame:
    """One row per (value, seed) of a sensitivity sweep: the data of Figures 2-4."""
    col = SWEEPS[exp].x
    part = runs[runs.experiment == exp] if not runs.empty else runs
    if part.empty:
        return pd.DataFrame(columns=[col, "seed", *HEADLINE])
    return part[[col, "seed", *HEADLINE]].sort_values([col, "seed"]).reset_index(drop=True)


def costs(runs: pd.DataFrame) -> pd.DataFrame:
    part = runs[runs.experiment.isin(MODEL_SETS) & (runs.variant == "base")]
    part = part.drop_duplicates(subset=["model", "seed"])
    if part.empty:
        return pd.DataFrame(columns=["model"])
    return part.groupby("model", sort=False).agg(
        params=("params", "first"), flops_per_image=("flops_per_image", "first"),
        train_seconds=("train_seconds", "mean"), train_images_per_s=("train_images_per_s", "mean"),
        epochs=("epochs", "first"), device=("device", "first"),
    ).reset_index()


def dvc_metrics(t1: pd.DataFrame, runs: pd.DataFrame, problems: pd.DataFrame) -> dict:
    out = {"table1": {}, "runs": int(runs[["model", "variant", "seed"]].drop_duplicates().shape[0]) if not runs.empty else 0,
           "runs_not_aggregated": int(len(problems))}
    for r in t1.to_dict("records"):
        if not pd.isna(r.get("acc_mean", float("nan"))):
            out["table1"][r["model"]] = {m: round(float(r[f"{m}_mean"]), 5) for m in HEADLINE}
    return out


def context(grid: Grid, problems: pd.DataFrame, verdicts: list, consistency_finding: str,
            inherited: list[dict] = ()) -> dict:
    """What the report needs beyond the tables: the data, the runs expected and missing, the
    verdict summary of the paper's claims, the methods of the claims, the consistency finding."""
    return {
        "dataset": dataset_of(grid),
        "runs_expected": len(grid.runs),
        "shared_runs": grid.shared(),
        "problems": {status: int(n) for status, n in problems["status"].value_counts().items()},
        "alpha": claims.ALPHA,
        "summary": claims.summary(verdicts),
        "methods": claims.METHODS,
        "consistency": consistency_finding,
        "lr_inherited": list(inherited),
        "grid_sha256": hashlib.sha256(grid.to_json().encode()).hexdigest(),  # of reports/grid.json's bytes
        "sweeps": [{"experiment": exp, "figure": s.figure, "title": s.title, "label": s.label, "x": s.x,
                    "name": s.name, "metrics": list(s.metrics), "in_paper": s.in_paper} for exp, s in SWEEPS.items()],
    }


def dataset_of(grid: Grid) -> dict:
    """The data the grid's runs train on (every run of a grid trains on the same)."""
    return grid.configs[grid.runs[0].id]["data"] if grid.runs else {}


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


EMPTY_RUNS = ["experiment", "model", "variant", "seed", *SCORES, *COORDINATES, *RECIPE_KEYS, "params",
              "flops_per_image"]


def tables(grid: Grid, collected: tuple, paper: pd.DataFrame, runs_root: Path) -> tuple[dict, list, str]:
    """The tables and plot data the aggregation writes (file name under reports/ -> frame), the
    verdicts on the paper's claims, and the finding on the consistency of its metrics."""
    runs, curves, problems, classes = collected
    synthetic = dataset_of(grid).get("source") == "synthetic"
    verdicts = claims.evaluate(runs, paper)
    gaps = consistency.our_gaps(runs, runs_root)
    anchor_table = anchor(runs, synthetic)
    frames = {
        "table1.csv": table1(runs, paper), "ablation.csv": ablation(runs, grid_models(grid, "ablation")),
        "costs.csv": costs(runs),
        "claims.csv": claims.to_frame([*verdicts, *claims.anchor_claims(anchor_table, synthetic)]),
        "consistency.csv": consistency.paper_gaps(paper).merge(gaps, on="model", how="left", suffixes=("_paper", "_ours")),
        "tune.csv": tune_table(runs), "runs.csv": runs, "problems.csv": problems,
        "compute_matched.csv": compute_matched(runs, paper, grid_models(grid, "compute_matched")),
        "anchor.csv": anchor_table,
        **{sweep_data(exp): sweep(runs, exp) for exp in SWEEPS},
        "plots/curves.csv": curves if not curves.empty else pd.DataFrame(columns=["model", "variant", "seed", "epoch"]),
        "plots/per_class_recall.csv": per_class_recall(classes), "plots/confusion.csv": confusion(classes),
    }
    declared = [f for f in aggregate_files(SWEEPS) if f.endswith(".csv")]
    if sorted(frames) != sorted(declared):  # the files are declared once, in msga.grid.paths
        raise RuntimeError(f"the aggregation makes {sorted(frames)}, msga.grid.paths declares {sorted(declared)}")
    return frames, verdicts, consistency.finding(paper, gaps)


def aggregate(grid: Grid, runs_root: Path, out: Path, paper_table: Path) -> tuple[int, pd.DataFrame]:
    """Every run of the grid -> every file of reports/ (msga.grid.paths.aggregate_files); returns
    (how many runs were aggregated, the runs that were not and why)."""
    runs, curves, problems, classes = collect(grid, Path(runs_root))
    if runs.empty:
        runs = pd.DataFrame(columns=EMPTY_RUNS)
    paper = pd.read_csv(paper_table)
    frames, verdicts, finding = tables(grid, (runs, curves, problems, classes), paper, Path(runs_root))
    for name, df in frames.items():
        _write_csv(df, out / name)
    plots.draw_all(frames, out / "figures", paper)
    write_json_atomic(out / "metrics.json", dvc_metrics(frames["table1.csv"], runs, problems))
    inherited = inherited_rates(grid.params, frames["tune.csv"], runs)
    write_json_atomic(out / "context.json", context(grid, problems, verdicts, finding, inherited))
    write_text_atomic(out / "grid.json", grid.to_json())
    return runs[["model", "variant", "seed"]].drop_duplicates().shape[0], problems
