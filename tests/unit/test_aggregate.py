"""Aggregation with nothing or little finished, from fabricated run folders, and the report's refusal of
missing inputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msga.cli import main
from msga.grid.experiments import SWEEPS
from msga.grid.paths import aggregate_outputs
from tests.conftest import REPO

DEMO = str(REPO / "workflow" / "demo.yaml")
PAPER = str(REPO / "workflow" / "resources" / "paper_table1.csv")


def _exit(argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_aggregate_with_no_finished_run_writes_every_output_and_names_every_run(tmp_path, capsys):
    from msga.grid.params import load_params
    from msga.grid.resolve import build_grid

    runs = len(build_grid(load_params(DEMO)).runs)
    out = tmp_path / "reports"
    assert main(["aggregate", "--params", DEMO, "--runs", str(tmp_path / "runs"), "--out", str(out), "--paper", PAPER]) == 0
    for name in aggregate_outputs(SWEEPS):
        assert (out / name.removeprefix("reports/")).is_file(), name
    problems = pd.read_csv(out / "problems.csv")
    assert len(problems) == runs and set(problems["status"]) == {"missing"}
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["verdict"]) == {"not tested"}
    context = json.loads((out / "context.json").read_text())
    assert context["runs_expected"] == runs and "could be tested" in context["summary"]
    assert f"aggregated 0 of {runs} runs" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["table1.csv", "context.json", "claims.csv"])
def test_the_report_refuses_a_missing_aggregate_file(tmp_path, capsys, missing):
    out = tmp_path / "reports"
    main(["aggregate", "--params", DEMO, "--runs", str(tmp_path / "runs"), "--out", str(out), "--paper", PAPER])
    (out / missing).unlink()
    assert _exit(["report", "--reports", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out / missing} is missing" in err and "msga aggregate" in err
    assert not (out / "replication.html").exists()


# ---------------------------------------------------------------- from fabricated run folders


def fabricate_runs(params: dict, root: Path, skip: tuple[str, ...] = (), classes: int = 100, per_class: int = 5,
                   seed: int = 0):
    """Finished folders, as training writes them (metrics.json with per-class scores,
    history.jsonl, predictions.npz), for every run of params' grid but those in `skip`. The
    predictions are drawn, not trained: each model gets a skill, each seed some noise."""
    from msga.grid.resolve import build_grid
    from msga.models import list_models

    grid = build_grid(params)
    rng = np.random.default_rng(seed)
    skill = {m: 0.2 + 0.05 * i for i, m in enumerate(list_models())}
    labels = np.repeat(np.arange(classes), per_class)
    for run in grid.runs:
        if run.id in skip:
            continue
        config = grid.configs[run.id]
        folder = Path(grid.folder(run, str(root)))
        folder.mkdir(parents=True)
        right = rng.random(len(labels)) < skill[run.model] + rng.normal(0, 0.02)
        pred = np.where(right, labels, rng.integers(0, classes, len(labels)))
        probs = rng.dirichlet(np.ones(classes), len(labels)).astype(np.float32)
        probs[np.arange(len(labels)), pred] += 1.0
        probs /= probs.sum(axis=1, keepdims=True)
        np.savez_compressed(folder / "predictions.npz", probs=probs, labels=labels)
        confusion = np.zeros((classes, classes), dtype=int)
        np.add.at(confusion, (labels, pred), 1)
        recall = np.diag(confusion) / confusion.sum(axis=1)
        precision = np.diag(confusion) / np.maximum(confusion.sum(axis=0), 1)
        acc = float(np.mean(pred == labels))
        epochs = config["train"]["epochs"]
        metrics = {
            "run": run.id, "config": config, "key": grid.key(run), "auc": 0.5 + acc / 2, "acc": acc,
            "precision": float(precision.mean()), "recall": float(recall.mean()), "top5": min(1.0, 2 * acc),
            "per_class_recall": recall.tolist(), "confusion_matrix": confusion.tolist(),
            "classes": [f"class{c:02d}" for c in range(classes)],
            "params": 10_000 * (1 + list_models().index(run.model)), "flops_per_image": 2e6 * (1 + len(run.model)),
            "train_seconds": 1.0 * epochs, "wall_seconds": 2.0 * epochs, "train_images_per_s": 1000.0,
            "device": "cpu: fabricated", "git_commit": "0123456789abcdef", "versions": {"torch": "2.x"},
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))
        (folder / "history.jsonl").write_text("".join(json.dumps(
            {"epoch": e, "train_loss": 4.0 / e, "train_acc": acc * e / epochs, "test_acc": acc * e / epochs,
             "lr": 0.001, "seconds": 1.0}) + "\n" for e in range(1, epochs + 1)))
    return grid


def test_aggregate_writes_costs_beside_results_and_msgas_per_class_scores(tmp_path):
    from msga.grid.params import load_params

    params = load_params(DEMO)
    fabricate_runs(params, tmp_path / "runs", skip=("convnext_flops/base/seed0",))
    out = tmp_path / "reports"
    assert main(["aggregate", "--params", DEMO, "--runs", str(tmp_path / "runs"), "--out", str(out), "--paper", PAPER]) == 0
    table1 = pd.read_csv(out / "table1.csv")
    assert table1[["params", "flops_per_image"]].notna().all().all()
    matched = pd.read_csv(out / "compute_matched.csv")
    assert list(matched["model"]) == ["msga"]  # convnext_flops did not finish
    assert matched.loc[0, "paper_acc"] == table1.set_index("model").loc["msga", "paper_acc"]
    anchor = pd.read_csv(out / "anchor.csv")
    assert anchor.loc[0, "model"] == "resnet18" and anchor.loc[0, "epochs"] == 3 and anchor.loc[0, "n_seeds"] == 1
    ablation = pd.read_csv(out / "ablation.csv")
    assert set(ablation["model"]) == set(params["experiments"]["ablation"]["models"]) and ablation["role"].notna().all()
    per_class = pd.read_csv(out / "plots" / "per_class_recall.csv")
    assert len(per_class) == 100 and per_class["recall_mean"].is_monotonic_increasing
    confusion = pd.read_csv(out / "plots" / "confusion.csv")
    shares = confusion.drop(columns="true_class").to_numpy()
    assert shares.shape == (100, 100) and np.allclose(shares.sum(axis=1), 1)
    context = json.loads((out / "context.json").read_text())
    assert context["grid_sha256"] == hashlib.sha256((out / "grid.json").read_bytes()).hexdigest()


def test_compute_matched_baselines_stand_for_their_architectures_row():
    from msga.results.aggregate import paper_model

    paper = pd.read_csv(PAPER)
    assert paper_model("convnext_flops", paper) == "convnext" and paper_model("msga", paper) == "msga"
    assert paper_model("resnet18", paper) is None


def test_the_ablation_table_says_which_comparison_is_cost_matched():
    from msga.results.aggregate import ablation

    costs = {"msga": (3.11e6, 9.94e8), "msga_local": (2.05e6, 8.5e8), "msga_single": (3.10e6, 9.89e8)}
    runs = pd.DataFrame([{"experiment": "ablation", "model": m, "variant": "base", "seed": s, "auc": 0.9, "acc": 0.6,
                          "precision": 0.6, "recall": 0.6, "params": p, "flops_per_image": f}
                         for m, (p, f) in costs.items() for s in (0, 1)])
    table = ablation(runs, list(costs)).set_index("model")
    assert table.loc["msga_local", "params_ratio"] == pytest.approx(2.05 / 3.11)
    assert list(table["cost_matched"]) == [True, False, True]  # msga is matched with itself


def test_the_tune_table_carries_costs_and_the_inherited_rates_are_checked_against_the_runs():
    from msga.grid.params import load_params
    from msga.results.tuning import inherited_rates
    from msga.results.tuning import tune_table as tune

    def run(experiment, model, variant, lr, acc):
        return {"experiment": experiment, "model": model, "variant": variant, "seed": 0, "lr": lr, "acc": acc,
                "params": 3e6, "flops_per_image": 1e9}

    runs = pd.DataFrame([run("tune", "msga", "lr=0.001+val=true", 1e-3, 0.5),
                         run("tune", "msga", "lr=0.004+val=true", 4e-3, 0.6),
                         run("table1", "msga", "base", 4e-3, 0.6),
                         run("ablation", "msga_local", "base", 4e-3, 0.5),
                         run("ablation", "msga_single", "base", 2e-3, 0.5)])
    table = tune(runs)
    assert table[["params", "flops_per_image"]].notna().all().all()
    rates = {r["model"]: r for r in inherited_rates(load_params(DEMO), table, runs)}
    assert rates["msga_local"] == {"model": "msga_local", "source": "msga", "winner": 4e-3, "trained": 4e-3}
    assert rates["msga_single"]["trained"] == 2e-3  # trained before the winner was applied
    assert rates["msga_noattn"]["trained"] is None  # no run of it yet
    assert inherited_rates(load_params(DEMO), tune(runs.iloc[2:]), runs) == []  # nothing tuned, nothing inherited
