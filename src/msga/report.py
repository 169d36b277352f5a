"""What the report notebook calls: each function reads reports/ and returns something to display.

The notebook (workflow/notebooks/replication.ipynb) holds no logic of its own; papermill runs
it and nbconvert turns it into one self-contained HTML file without code cells.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
from IPython.display import HTML, Image, Markdown

from msga.errors import Failure
from msga.io import atomic_output
from msga.metrics import HEADLINE, LABELS


class ReportInputMissing(Failure):
    pass


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


def _pm(mean: float, std: float, ci: float) -> str:
    if pd.isna(mean):
        return "missing"
    if pd.isna(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f} (95% CI ± {ci:.4f})"


def title(reports: str | Path) -> Markdown:
    text = "# Replication: joint multi-scale convolution and global attention on CIFAR-100\n"
    if _context(reports)["dataset"].get("source") == "synthetic":
        text += ("\n> **These results come from the SYNTHETIC offline fixture, not from CIFAR-100.** "
                 "They show that the pipeline runs end to end; they say nothing about the paper's claims.\n")
    return Markdown(text)


def _recipe(r: dict) -> str:
    decay = (f"cosine to {r['min_lr']:g}" if r["schedule"] == "cosine"
             else f"x{r['gamma']:g} at epochs {r['milestones']}")
    optimizer = f"{r['optimizer']}{' (Nesterov)' if r['optimizer'] == 'sgd' and r['nesterov'] else ''}"
    return (f"{optimizer}, peak learning rate {r['effective_lr']:.3g} at batch size {r['batch_size']} "
            f"({r['lr']:g} per 256 images, {r['lr_scaling']} scaling), {r['warmup_epochs']:g} warmup epochs then "
            f"{decay}, weight decay {r['weight_decay']:g}, label smoothing {r['label_smoothing']:g}, gradient "
            f"clipping {r['grad_clip']:g}, {r['epochs']} epochs, augmentation {r['augment']}")


def overview(reports: str | Path) -> Markdown:
    """What was run, as the runs recorded it: dataset, recipe per model, hardware, versions, seeds, time."""
    ctx, runs = _context(reports), _csv(reports, "runs.csv")
    data = ctx["dataset"]
    dataset = (f"synthetic CIFAR-100-format fixture ({data['train_per_class']}/{data['test_per_class']} images per "
               f"class, seed {data['seed']})" if data.get("source") == "synthetic"
               else f"CIFAR-100 (archive md5 {data.get('md5')}): 50,000 train / 10,000 test images")
    lines = ["## What was run",
             f"- **Dataset**: {dataset}; the test set is used once per epoch for the curves and for the final metrics."]
    if not runs.empty:
        uniq = runs.drop_duplicates(subset=["model", "variant", "seed"])
        base = uniq[uniq["variant"] == "base"]
        recipes: dict[str, list[str]] = {}
        for r in base.drop_duplicates(subset=["model"]).to_dict("records"):
            recipes.setdefault(_recipe(r), []).append(r["model"])
        for recipe, models in recipes.items():
            lines.append(f"- **Recipe of {', '.join(models)}** (as the runs recorded it): {recipe}.")
        lines += [
            "- **Noise level**: read as additive Gaussian pixel noise of std sigma (in [0, 1] pixel units) on train "
            "and test images, clamped to valid pixels; the paper does not define it.",
            f"- **Runs**: {len(uniq)} of the {ctx['runs_expected']} distinct training runs of the grid; seeds "
            f"{sorted(uniq['seed'].unique().tolist())}.",
            f"- **Hardware**: {', '.join(sorted(uniq['device'].dropna().unique()))}.",
            f"- **Software**: torch {', '.join(sorted(uniq['torch'].dropna().astype(str).unique()))}; "
            f"code {', '.join(sorted(uniq['git_commit'].dropna().astype(str).unique()))[:120]}.",
            f"- **Compute**: {uniq['wall_seconds'].sum() / 60:.1f} minutes of training-job wall time "
            f"({uniq['train_seconds'].sum() / 60:.1f} in training steps).",
        ]
    return Markdown("\n".join(lines))


def problems(reports: str | Path) -> Markdown:
    df = _csv(reports, "problems.csv")
    if df.empty:
        return Markdown("All runs of the grid finished, each with the configuration the grid gives it.")
    counts = df["status"].value_counts()
    head = "; ".join(f"**{n} {status}**" for status, n in counts.items())
    reasons = "\n".join(f"- {r}" for r in df["reason"])
    stale = ("\n\nA **stale** run was trained with another configuration than the grid now gives; it is left out "
             "of every table until it is trained again." if "stale" in counts else "")
    return Markdown(f"## Runs not in the tables\n\n{head}: the tables below use only the finished, current "
                    f"runs.{stale}\n\n{reasons}")


def table1(reports: str | Path) -> HTML:
    t1 = _csv(reports, "table1.csv")
    rows = []
    for r in t1.to_dict("records"):
        row = {"model": r["model"], "paper row": r["paper_row"], "seeds": r.get("n_seeds", 0)}
        for m in HEADLINE:
            row[f"{LABELS[m]} (ours)"] = _pm(r.get(f"{m}_mean"), r.get(f"{m}_std"), r.get(f"{m}_ci95"))
            row[f"{LABELS[m]} (paper)"] = f"{r[f'paper_{m}']:.3f}"
            diff = r.get(f"diff_{m}")
            row[f"{LABELS[m]} diff"] = "" if diff is None or pd.isna(diff) else f"{diff:+.4f}"
        rows.append(row)
    html = pd.DataFrame(rows).to_html(index=False, escape=True)
    return HTML("<h2>Table 1: this replication beside the paper</h2>"
                "<p>Mean ± std over seeds (95% t-interval); diff = ours − paper.</p>" + html)


def figure(reports: str | Path, name: str) -> Image | Markdown:
    path = Path(reports) / "figures" / name
    if not path.exists():
        return Markdown(f"*figure {name} was not produced*")
    return Image(filename=str(path), embed=True)


def _number(value, digits: int = 4) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def verdicts(reports: str | Path) -> Markdown:
    """The verdict summary, first: one paragraph computed from the claims' tests."""
    ctx = _context(reports)
    return Markdown(f"## Verdict\n\n{ctx['summary']}")


def claims(reports: str | Path) -> HTML:
    df = _csv(reports, "claims.csv")
    colors = {"held": "#d9f2d9", "not held": "#f9d6d5", "within noise": "#fff4cc", "not tested": "#eeeeee"}
    body = "".join(
        f"<tr style='background:{colors.get(r['verdict'], '#fff')}'><td>{html.escape(str(r['claim']))}</td>"
        f"<td><b>{html.escape(str(r['verdict']))}</b></td><td>{html.escape(str(r['evidence']))}</td>"
        f"<td>{_number(r['min_detectable'])}</td></tr>"
        for r in df.to_dict("records")
    )
    return HTML("<h2>Claims, tested</h2><table><tr><th>claim</th><th>verdict</th><th>evidence</th>"
                f"<th>smallest detectable difference</th></tr>{body}</table>"
                f"<p><b>Methods.</b> {html.escape(_context(reports)['methods'])}</p>")


def consistency(reports: str | Path) -> Markdown:
    return Markdown(f"## Is the paper's Table 1 consistent with its metrics?\n\n{_context(reports)['consistency']}")


def table(reports: str | Path, name: str, caption: str) -> HTML:
    df = _csv(reports, name)
    if df.empty:
        return HTML(f"<h3>{caption}</h3><p>no finished runs</p>")
    return HTML(f"<h3>{caption}</h3>" + df.to_html(index=False, float_format=lambda v: f"{v:.4g}"))


def limits(reports: str | Path) -> Markdown:
    ctx, runs, costs = _context(reports), _csv(reports, "runs.csv"), _csv(reports, "costs.csv")
    epochs = sorted(runs["epochs"].dropna().astype(int).unique().tolist()) if not runs.empty else []
    lines = [
        "## Limits of this replication",
        "- The paper gives no architecture details beyond Eq. 1-3 and no training recipe; the msga model, "
        "the baseline sizes and the recipe here are our choices (documented in `params.yaml` and "
        "`src/msga/models/msga.py`). Baselines are sized to within 2x of msga's parameters, so Table 1 "
        "compares architectures at similar size, which the paper may not have done.",
        f"- Training budget: {', '.join(map(str, epochs)) or 'no'} epochs per run (as the runs recorded it). Published "
        "CIFAR-100 results from scratch train for 200-300 epochs (ResNet-18: 75.6% top-1 after 200 epochs, "
        "weiaicunzai/pytorch-cifar100; CCT-7/3x1: 80.9% after 300, SHI-Labs/Compact-Transformers); absolute numbers "
        "here are lower where the budget is shorter, while the comparisons use one budget for all.",
        "- The paper reports ACC 0.81-0.89 on CIFAR-100 for all five models, above published results for "
        "models of these kinds trained from scratch; and its Recall differs from its ACC in every row, which "
        "macro recall over CIFAR-100's class-balanced test set rules out (see the claims).",
        "- The noise level is our interpretation (additive Gaussian pixel noise on train and test images).",
    ]
    if not costs.empty and "msga" in set(costs["model"]):
        flops = dict(zip(costs["model"], costs["flops_per_image"]))
        ratios = ", ".join(f"{m}: {flops['msga'] / f:.1f}x" for m, f in flops.items() if m != "msga" and f)
        lines.append(f"- Sizes are matched by parameters, not compute: msga's forward FLOPs per image relative to "
                     f"each other model are {ratios}. A gain of msga may partly be a gain of compute.")
    if ctx["dataset"].get("source") == "synthetic":
        lines.append("- **This report was produced on the synthetic fixture: its numbers are not CIFAR-100 results.**")
    return Markdown("\n".join(lines))


def render(reports: str | Path, notebook: str | Path) -> Path:
    """papermill executes the notebook into reports/replication.ipynb; nbconvert makes the HTML."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    reports = Path(reports).resolve()
    for name in ("context.json", "runs.csv", "table1.csv", "claims.csv", "problems.csv"):  # fail before executing
        if not (reports / name).is_file():
            raise ReportInputMissing(f"{reports / name} is missing: run `msga aggregate` (or `snakemake`) first")
    executed = reports / "replication.ipynb"
    with atomic_output(executed) as tmp:
        papermill.execute_notebook(
            str(notebook), str(tmp), parameters={"reports": str(reports)},
            kernel_name="python3", progress_bar=False, cwd=str(reports.parent), language="python",
        )
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # library warnings on stderr belong in the executed notebook, not the report
        cell["outputs"] = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(nb)
    out = reports / "replication.html"
    with atomic_output(out) as tmp:
        tmp.write_text(html)
    return out
