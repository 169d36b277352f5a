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
from scipy import stats

from msga import claims, consistency, experiments
from msga.config import Grid, build_grid, load_params, lr_sources
from msga.recipe import scaled_lr
from msga.experiments import COORDINATES, MODEL_SETS, SWEEPS, TUNE
from msga.io import atomic_output, write_json_atomic, write_text_atomic
from msga.metrics import HEADLINE
from msga.models import model_entry
from msga.runfiles import FINISHED, current_state
from msga.runs import Run

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
    serves: dict[Run, list[str]] = {}
    for exp, runs in grid.experiments.items():
        for run in runs:
            serves.setdefault(run, []).append(exp)
    rows, curves, problems, classes = [], [], [], []
    for run, exps in sorted(serves.items()):
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
    recall, confusion = metrics.get("per_class_recall"), metrics.get("confusion_matrix")
    if not isinstance(recall, list) or not isinstance(confusion, list) or not recall:
        return {}
    n = len(recall)
    names = metrics.get("classes")
    if not (isinstance(names, list) and len(names) == n):
        names = [str(i) for i in range(n)]
    try:
        recall = [float(v) for v in recall]
        confusion = [[float(v) for v in row] for row in confusion]
    except (TypeError, ValueError):
        return {}
    if len(confusion) != n or any(len(row) != n for row in confusion) or not all(map(math.isfinite, recall)):
        return {}
    return {"per_class_recall": recall, "confusion_matrix": confusion, "classes": [str(c) for c in names]}


def _row(run: Run, metrics: dict) -> dict:
    """The run's scores, its sweep coordinates and its recipe, as it recorded them."""
    config = metrics["config"]
    return {
        "model": run.model, "variant": run.variant, "seed": run.seed, "key": metrics.get("key"),
        **{k: metrics[k] for k in (*HEADLINE, "top5")},
        **{column: _dotted(config, key) for column, key in COORDINATES.items()},
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


def _dotted(config: dict, key: str):
    section, _, leaf = key.partition(".")
    return config[section].get(leaf)


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


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean; NaN with fewer than two seeds."""
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def summarize(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, std and 95% interval over seeds of the four metrics, per value of `by`."""
    columns = [by, "n_seeds", *(f"{m}_{s}" for m in HEADLINE for s in ("mean", "std", "ci95"))]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for key, group in runs.groupby(by, sort=False):
        row = {by: key, "n_seeds": int(group["seed"].nunique())}
        for m in HEADLINE:
            row[f"{m}_mean"] = group[m].mean()
            row[f"{m}_std"] = group[m].std(ddof=1) if len(group) > 1 else float("nan")
            row[f"{m}_ci95"] = ci95(group[m])
        out.append(row)
    return pd.DataFrame(out, columns=columns)


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
    full = claims.ABLATION[0]
    ratios = [claims.cost_ratios(out, m, full) for m in out["model"]]
    out["params_ratio"] = [r[0] for r in ratios]
    out["flops_ratio"] = [r[1] for r in ratios]
    out["cost_matched"] = [claims.cost_matched(*r) for r in ratios]
    return out


ANCHOR_COLUMNS = ["model", "role", "n_seeds", "acc_mean", "acc_std", "acc_ci95", "top5_mean", "epochs",
                  "batch_size", "optimizer", "params", "flops_per_image"]


def anchor(runs: pd.DataFrame) -> pd.DataFrame:
    """The calibration anchor's top-1 (and top-5) over seeds, with the budget it trained."""
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
    return out.merge(model_costs(runs), on="model", how="left")[ANCHOR_COLUMNS]


PER_CLASS_COLUMNS = ["model", "class_index", "class_name", "recall_mean", "recall_min", "recall_max", "n_seeds"]


def per_class_recall(classes: list[dict], model: str = "msga") -> pd.DataFrame:
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


def confusion(classes: list[dict], model: str = "msga") -> pd.DataFrame:
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


TUNE_COLUMNS = ["model", "lr", "val_acc_mean", "val_acc_std", "n_seeds", "best", "table1_lr", "params",
                "flops_per_image"]


def tune(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy per model and learning rate (per 256 images), the best one marked, beside
    the learning rate Table 1's runs trained with and the model's costs (a learning rate changes
    no cost, so the tune runs' own serve)."""
    part = runs[runs.experiment == TUNE] if not runs.empty else runs
    if part.empty:
        return pd.DataFrame(columns=TUNE_COLUMNS)
    table1_lr = runs[runs.experiment == "table1"].groupby("model")["lr"].first()
    grouped = part.groupby(["model", "lr"], sort=True)["acc"]
    out = pd.DataFrame({"val_acc_mean": grouped.mean(), "val_acc_std": grouped.std(ddof=1),
                        "n_seeds": grouped.count()}).reset_index()
    best = out.loc[out.groupby("model")["val_acc_mean"].idxmax(), ["model", "lr"]]  # ties: the smaller lr
    out["best"] = out.set_index(["model", "lr"]).index.isin(best.set_index(["model", "lr"]).index)
    out["table1_lr"] = out["model"].map(table1_lr)
    costs = part.groupby("model")[["params", "flops_per_image"]].first()
    out = out.join(costs, on="model")
    return out[TUNE_COLUMNS]


def inherited_rates(params: dict, tune_table: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    """Each model that trains at a tuned model's winner (config.lr_sources): the winner, and the
    learning rate its base runs trained with (None where none ran), so the report can say whether
    every block compares models tuned alike."""
    winners = tune_table[tune_table["best"].astype(bool)].set_index("model")["lr"] if not tune_table.empty else {}
    base = runs[runs.variant == "base"].groupby("model")["lr"].first() if not runs.empty else pd.Series(dtype=float)
    out = []
    for model, source in lr_sources(params, list(winners.index) if len(winners) else []).items():
        trained = base.get(model)
        out.append({"model": model, "source": source, "winner": float(winners[source]),
                    "trained": None if trained is None or pd.isna(trained) else float(trained)})
    return out


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
    verdict summary, the methods of the claims, the consistency finding."""
    return {
        "dataset": grid.configs[grid.runs[0].id]["data"] if grid.runs else {},
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


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, index=False)


def load_grid(args) -> Grid:
    if args.grid:
        return Grid.from_json(Path(args.grid).read_text())
    return build_grid(load_params(args.params or ["params.yaml"]))


def main(args) -> None:
    from msga import plots

    grid = load_grid(args)
    out = Path(args.out)
    runs, curves, problems, classes = collect(grid, Path(args.runs))
    paper = pd.read_csv(args.paper)
    if runs.empty:
        runs = pd.DataFrame(columns=["experiment", "model", "variant", "seed", *HEADLINE, "top5",
                                     *COORDINATES, *RECIPE_KEYS, "params", "flops_per_image"])
    t1 = table1(runs, paper)
    abl = ablation(runs, grid_models(grid, "ablation"))
    verdicts = claims.evaluate(runs, paper)
    gaps = consistency.our_gaps(runs, Path(args.runs))
    frames = {
        "table1.csv": t1, "ablation.csv": abl, "costs.csv": costs(runs), "claims.csv": claims.to_frame(verdicts),
        "consistency.csv": consistency.paper_gaps(paper).merge(gaps, on="model", how="left", suffixes=("_paper", "_ours")),
        "tune.csv": tune(runs), "runs.csv": runs, "problems.csv": problems,
        "compute_matched.csv": compute_matched(runs, paper, grid_models(grid, "compute_matched")), "anchor.csv": anchor(runs),
        **{f"plots/{exp}.csv": sweep(runs, exp) for exp in SWEEPS},
        "plots/curves.csv": curves if not curves.empty else pd.DataFrame(columns=["model", "variant", "seed", "epoch"]),
        "plots/per_class_recall.csv": per_class_recall(classes), "plots/confusion.csv": confusion(classes),
    }
    for name, df in frames.items():
        _write_csv(df, out / name)
    plots.draw_all(frames, out / "figures", paper)
    write_json_atomic(out / "metrics.json", dvc_metrics(t1, runs, problems))
    inherited = inherited_rates(grid.params, frames["tune.csv"], runs)
    finding = consistency.finding(paper, gaps)
    write_json_atomic(out / "context.json", context(grid, problems, verdicts, finding, inherited))
    write_text_atomic(out / "grid.json", grid.to_json())
    print(f"aggregated {runs[['model', 'variant', 'seed']].drop_duplicates().shape[0]} of {len(grid.runs)} runs "
          f"into {out}; {len(problems)} not aggregated")
    for reason in problems["reason"]:
        print(f"  {reason}")
