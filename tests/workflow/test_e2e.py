"""The whole demo DAG end to end through Snakemake, in a copy of the repository, then what users do
next: rerun it, override it, move it, edit code, switch to the real data, change a param without
retraining. Each answer is checked against what Snakemake plans and what the report says."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from msga.grid.params import load_params
from msga.grid.resolve import build_grid
from tests.conftest import REPO
from tests.workflow.helpers import MODELS, copy_repo, demo, job_counts, run, run_dir, snakemake, two_run_params

# The demo as a workstation with two GPUs runs it (the ids are what the jobs claim and record; torch
# sees no GPU here, so they train on the CPU), asking for more GPUs than it has
TWO_GPUS = ("--resources", "gpu=3")


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Path:
    """A copy of the repo with the demo params as params.yaml, after one full snakemake run."""
    repo = copy_repo(tmp_path_factory.mktemp("demo"), demo())
    slots = tmp_path_factory.mktemp("gpu-slots")
    done = snakemake("--cores", "2", *TWO_GPUS, cwd=repo, env={"CUDA_VISIBLE_DEVICES": "0,1", "MSGA_GPU_SLOTS": str(slots)})
    (repo / "snakemake.stderr").write_text(done.stderr)
    return repo


@pytest.fixture()
def demo_copy(demo_repo, tmp_path) -> Path:
    """A copy of the finished demo (outputs, Snakemake's records, file times) to change freely."""
    copy = tmp_path / "elsewhere" / "demo"
    shutil.copytree(demo_repo, copy, symlinks=True)
    return copy


def _planned(repo: Path, *args: str) -> dict[str, int]:
    out = snakemake("-n", "--cores", "1", *args, cwd=repo).stdout
    return {} if "Nothing to be done" in out else job_counts(out)


def test_snakemake_renders_the_report_with_table1_and_figures(demo_repo):
    html = (demo_repo / "reports" / "replication.html").read_text()
    assert "Table 1" in html and "Claims" in html and "SYNTHETIC" in html
    for model in MODELS:
        assert model in html
    assert html.count("data:image/png;base64") >= 6  # figures embedded, one self-contained file
    assert "sections.table1(" not in html  # no code cells
    table1 = (demo_repo / "reports" / "table1.csv").read_text()
    assert all(m in table1 for m in MODELS)
    folder = run_dir(demo_repo, "msga/heads=1/seed0")
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["config"] == config and config["model"]["heads"] == 1  # the job trained what the DAG resolved
    # the demo's two Table 1 seeds put its claims through the paired tests, and the report shows their verdicts
    claims = pd.read_csv(demo_repo / "reports" / "claims.csv")
    table1 = claims[claims["label"].str.startswith(("Table 1 order (", "Ours best ("))]
    assert len(table1) == 8 and table1["verdict"].isin(["held", "not held", "within noise"]).all(), table1
    assert (table1["n_seeds"] == 2).all() and table1["ci_low"].notna().all()


def test_every_demo_run_learns_well_above_chance_with_a_rising_curve(demo_repo):
    """The demo's report must not look broken: each of its runs ends at 3x chance or more (100
    classes: chance is 1%), and its test accuracy rises from the first epoch to the last."""
    grid = build_grid(load_params(str(demo_repo / "params.yaml")))
    for run_ in grid.runs:
        folder = demo_repo / grid.folder(run_)
        acc = json.loads((folder / "metrics.json").read_text())["acc"]
        curve = [json.loads(line)["test_acc"] for line in (folder / "history.jsonl").read_text().splitlines()]
        assert acc >= 0.03, (run_.id, acc)
        assert curve[-1] > curve[0], (run_.id, curve)


def test_a_second_run_an_identical_configfile_or_a_moved_repository_plan_nothing(demo_repo, demo_copy, tmp_path):
    assert _planned(demo_repo) == {}
    same = tmp_path / "same-params.yaml"
    shutil.copy(demo_repo / "params.yaml", same)
    assert _planned(demo_repo, "--configfile", str(same)) == {}
    assert _planned(demo_copy) == {}  # the copy sits elsewhere, with new paths and file times


def test_editing_one_model_file_plans_that_models_runs_only(demo_copy):
    with open(demo_copy / "src" / "msga" / "models" / "crossvit.py", "a") as f:
        f.write("\n# an edit\n")
    out = snakemake("-n", "--cores", "1", cwd=demo_copy).stdout
    planned = job_counts(out)
    crossvit = [r for r in build_grid(load_params(str(demo_copy / "params.yaml"))).runs if r.model == "crossvit"]
    assert planned["train"] == len(crossvit) == 2 and planned["aggregate"] == planned["report"] == 1
    models = {line.split("model=")[1].split(",")[0] for line in out.splitlines() if "wildcards: model=" in line}
    assert models == {"crossvit"}  # the train jobs planned are crossvit's runs, and only they
    assert not {"verify", "extract", "pack", "synthesize"} & set(planned)


def test_editing_the_data_code_plans_the_data_steps_again(demo_copy):
    with open(demo_copy / "src" / "msga" / "data" / "cifar.py", "a") as f:  # the packing code
        f.write("\n# an edit\n")
    planned = _planned(demo_copy)
    assert planned["verify"] == planned["extract"] == planned["pack"] == 1
    assert "synthesize" not in planned  # the fixture's generator does not import it: its archive stands


def test_the_real_params_after_the_demo_plan_the_real_data_and_every_run(demo_copy):
    (demo_copy / "params.yaml").write_text((REPO / "params.yaml").read_text())
    planned = _planned(demo_copy)
    runs = len(build_grid(load_params(demo_copy / "params.yaml")).runs)
    assert planned["train"] == runs and all(planned[s] == 1 for s in ("download", "verify", "extract", "pack"))
    # the demo's data stays where it was; the real data gets files of its own
    assert list((demo_copy / "data" / "packed").glob("synthetic-*.pt"))


def test_a_changed_param_without_retraining_makes_every_run_stale(demo_copy):
    params = yaml.safe_load((demo_copy / "params.yaml").read_text())
    params["train"]["epochs"] = 5
    (demo_copy / "changed.yaml").write_text(yaml.safe_dump(params))
    out = demo_copy / "reports"
    proc = run([sys.executable, "-m", "msga.cli", "aggregate", "--params", "changed.yaml", "--out", str(out)], demo_copy)
    before, after = build_grid(load_params(demo_copy / "params.yaml")), build_grid(load_params(demo_copy / "changed.yaml"))
    changed = sum(before.configs[r.id] != after.configs[r.id] for r in after.runs)  # the anchor keeps its own epochs
    problems = (out / "problems.csv").read_text()
    assert problems.count(",stale,") == changed > 0 and "train.epochs: 3 -> 5" in problems
    assert f"aggregated {len(after.runs) - changed} of {len(after.runs)} runs" in proc.stdout
    run([sys.executable, "-m", "msga.cli", "report", "--reports", str(out)], demo_copy)
    html = (out / "replication.html").read_text()
    assert f"{changed} stale" in html and "trained with another configuration" in html


def test_missing_and_truncated_runs_are_named_and_the_report_still_renders(demo_copy):
    (run_dir(demo_copy, "crossvit/base/seed0") / "metrics.json").unlink()
    metrics = run_dir(demo_copy, "convnext/base/seed0") / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[:200])
    history = run_dir(demo_copy, "cnn_lstm/base/seed0") / "history.jsonl"
    history.write_bytes(history.read_bytes()[:-40])
    out = demo_copy / "reports"
    proc = run([sys.executable, "-m", "msga.cli", "aggregate", "--grid", "reports/grid.json", "--out", str(out)], demo_copy)
    for name, file in [("crossvit/base/seed0", "metrics.json"), ("convnext/base/seed0", "metrics.json"),
                       ("cnn_lstm/base/seed0", "history.jsonl")]:
        path = (run_dir(demo_copy, name) / file).relative_to(demo_copy)
        assert f"{name}: {path}" in proc.stdout, name
    run([sys.executable, "-m", "msga.cli", "report", "--reports", str(out)], demo_copy)
    html = (out / "replication.html").read_text()
    assert "Runs not in the tables" in html and "1 missing" in html and "2 damaged" in html
    for name, words in [("crossvit/base/seed0", "is missing"), ("convnext/base/seed0", "metrics.json is unreadable"),
                        ("cnn_lstm/base/seed0", "history.jsonl is unreadable")]:
        assert name in html and words in html, name
    assert "Table 1" in html and "msga" in html  # the finished runs are still reported


def test_a_config_override_reaches_the_jobs_metrics_and_the_report_in_a_path_a_shell_would_split(tmp_path):
    repo = copy_repo(tmp_path / "a folder's name & $HOME $(touch pwned)" / "repo", two_run_params(epochs=1))
    snakemake("--cores", "2", "--config", "train={epochs: 2}", cwd=repo)
    for name in ("convnext/base/seed0", "msga/base/seed0"):
        [path] = (repo / "results" / "runs" / name).glob("*/metrics.json")  # trained with the override's key
        metrics = json.loads(path.read_text())
        assert metrics["config"]["train"]["epochs"] == 2 and len(metrics["config"]) > 0
    html = (repo / "reports" / "replication.html").read_text()
    assert "2 epochs" in html
    assert _planned(repo, "--config", "train={epochs: 2}") == {}
    assert _planned(repo)["train"] == 2  # without the override, params.yaml's 1 epoch is another configuration
    assert not list(tmp_path.rglob("pwned"))  # nothing in a path reached a shell unquoted


def test_each_run_trained_on_a_gpu_of_its_own_and_gpu_3_was_capped_to_the_2_there_are(demo_repo):
    """Two GPUs (CUDA_VISIBLE_DEVICES=0,1) and --resources gpu=3: Snakemake is told it may run two
    training jobs at once, each claims a GPU of its own, and every run records the GPU it had and
    when; no two runs whose times overlap had the same GPU."""
    assert "gpu=3 asks for 3 training jobs at once, but this machine has 2 GPU(s) (0, 1)" in \
        (demo_repo / "snakemake.stderr").read_text()
    records = [json.loads(p.read_text()) for p in (demo_repo / "results" / "runs").glob("*/*/*/*/metrics.json")]
    assert len(records) > 10 and {r["gpu"] for r in records} == {"0", "1"}
    spans = sorted((r["started_at"], r["ended_at"], r["gpu"], r["run"]) for r in records)
    for i, (start, end, gpu, run) in enumerate(spans):
        for later_start, _, later_gpu, later_run in spans[i + 1:]:
            if later_start < end:  # their times overlap
                assert later_gpu != gpu, f"{run} and {later_run} trained on GPU {gpu} at once"
