"""The end of the report: runs left out, the consistency of the paper's own metrics, what was
run, the limits, how to reproduce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML

from msga.grid.experiments import ANCHOR_REFERENCE, OURS
from msga.grid.runs import Run
from msga.report import inputs
from msga.report.page import esc, figure_html, fmt_score, html_table, is_missing, range_text


def problems(reports: str | Path) -> HTML:
    df = inputs.table(reports, "problems.csv")
    if df.empty:
        return inputs.section("problems", "<p>All runs of the grid finished, each with the configuration the grid gives it.</p>")
    counts = df["status"].value_counts()
    head = "; ".join(f"<b>{n} {esc(status)}</b>" for status, n in counts.items())
    stale = ("<p>A <b>stale</b> run was trained with another configuration than the grid now gives; it is left out "
             "of every table until it is trained again.</p>" if "stale" in counts else "")
    rows = [[esc(r["status"]), f"<code>{esc(Run(r['model'], r['variant'], int(r['seed'])).id)}</code>",
             esc(r["experiments"]), esc(r["reason"])] for r in df.to_dict("records")]
    table = html_table(["Status", "Run", "Serves", "Why"], rows, stack=True)
    return inputs.section("problems", f"<p>{head}: the tables use only the finished, current runs.</p>{stale}"
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
    ctx, df = inputs.context(reports), inputs.table(reports, "consistency.csv")
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
    runs, paper = inputs.distinct_runs(reports), inputs.table(reports, "table1.csv")
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
    return inputs.section("consistency", f"<p>{esc(ctx['consistency'])}</p>" + table + note + figure)


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
    runs = inputs.distinct_runs(reports)
    out: dict[str, list[str]] = {}
    if runs.empty:
        return out
    for r in runs[runs["variant"] == "base"].drop_duplicates(subset=["model"]).to_dict("records"):
        out.setdefault(_recipe(r), []).append(r["model"])
    return out


def overview(reports: str | Path) -> HTML:
    """What was run, as the runs recorded it: dataset, recipe per model, hardware, versions, seeds, time."""
    ctx, runs = inputs.context(reports), inputs.distinct_runs(reports)
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
    return inputs.section("run", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def models_per_epochs(reports) -> dict[int, list[str]]:
    """Each training length the runs recorded -> the models with a run of that length."""
    runs = inputs.distinct_runs(reports)
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
    ctx, t1 = inputs.context(reports), inputs.table(reports, "table1.csv")
    budget = "; ".join(f"{e} epochs: {', '.join(m)}" for e, m in models_per_epochs(reports).items()) or "no runs"
    items = [
        "The paper gives no architecture details beyond its Eq. 1-3 and no training recipe: the msga model, the "
        "baseline sizes and the recipe here are this project's choices (<code>params.yaml</code>, "
        "<code>src/msga/models/</code>). Baselines are sized to within 2× of msga's parameters, which the paper may "
        "not have done.",
        f"<b>Budget</b>, as the runs recorded it: {esc(budget)}. Published CIFAR-100 results from "
        f"scratch train 200-300 epochs (ResNet-18: {_reference_text('resnet18')}; "
        "CCT-7/3x1: 80.9% after 300, SHI-Labs/Compact-Transformers). Whether the ranking holds at such budgets is "
        f"not tested here. {esc(late_gain_text(inputs.table(reports, 'plots/curves.csv'), list(t1['model'])))}",
        f"<b>Recipe strength</b>: {esc(augmentation_text(inputs.distinct_runs(reports)))}",
        f"<b>Tuning</b>: {esc(tuning_text(inputs.table(reports, 'tune.csv'), t1))}",
        "The paper reports ACC 0.81-0.89 on CIFAR-100 for all five models, above published from-scratch results for "
        "models of these kinds (MLP-Mixer nano: 67.5% after 300 epochs, omihub777/MLP-Mixer-CIFAR); and its Recall "
        "differs from its ACC in every row, which macro recall over CIFAR-100's class-balanced test set rules out "
        "(see the consistency section).",
        "<b>Noise</b> is this project's reading of the paper's “noise level”: additive Gaussian pixel noise on train "
        "and test images (Figure 4), and on test images only after clean training (Figure 4b).",
    ]
    flops = dict(zip(t1["model"], t1["flops_per_image"]))
    if not is_missing(flops.get(OURS)):
        ratios = ", ".join(f"{m} {flops[OURS] / f:.2f}×" for m, f in flops.items() if m != OURS and not is_missing(f))
        items.append("<b>Parameters or compute</b>: Table 1 matches parameters, not compute; msga's forward FLOPs "
                     f"per image relative to each other model: {esc(ratios)}. The compute-matched block reads the "
                     "comparison at equal FLOPs; neither matches training time.")
    if ctx["dataset"].get("source") == "synthetic":
        items.append("<b>This report was produced on the synthetic fixture: its numbers are not CIFAR-100 "
                     "results.</b>")
    return inputs.section("limits", "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")


def _reference_text(model: str) -> str:
    """A model's literature top-1 as the anchor's reference gives it: '75.6% top-1 after 200 epochs, SOURCE'."""
    ref = ANCHOR_REFERENCE[model]
    return f"{ref['acc']:.1%} top-1 after {ref['epochs']} epochs, {ref['source']}"


def code_commits(reports) -> list[str]:
    runs = inputs.distinct_runs(reports)
    return sorted(runs["git_commit"].dropna().astype(str).unique()) if not runs.empty else []


def reproduce(reports: str | Path) -> HTML:
    ctx = inputs.context(reports)
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
    return inputs.section("reproduce", f"<pre><code>{esc(commands)}</code></pre><ul>"
                                 + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
