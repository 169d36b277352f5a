"""The DAG on the real params, by dry runs: it builds, lint passes, bad params fail first, overrides
reach the plan, and the DVC stages list the code their rules hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from msga.grid import codedeps
from msga.grid.params import load_params
from msga.grid.resolve import build_grid
from tests.conftest import REPO
from tests.workflow.helpers import copy_repo, job_counts, run_dir, snakemake, two_run_params, write_outputs

DATA_STEPS = ("expected_md5", "download", "verify", "extract", "pack")


def test_dry_run_builds_the_full_dag_one_job_per_distinct_run(tmp_path):
    repo = copy_repo(tmp_path)  # a clean tree: outputs in the working copy would shrink the DAG
    counts = job_counts(snakemake("-n", "--cores", "1", cwd=repo).stdout)
    assert counts["train"] == counts["run_config"] == len(build_grid(load_params(REPO / "params.yaml")).runs)
    assert all(counts[step] == 1 for step in DATA_STEPS), counts
    assert counts["grid"] == counts["aggregate"] == counts["report"] == 1


def test_lint_passes(tmp_path):
    proc = snakemake("--lint", cwd=copy_repo(tmp_path))
    assert "Congratulations" in proc.stdout + proc.stderr


def test_bad_params_fail_before_any_job_naming_the_key(tmp_path):
    bad = yaml.safe_load((REPO / "params.yaml").read_text())
    bad["train"]["epochz"] = bad["train"].pop("epochs")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake("-n", "--configfile", str(path), cwd=copy_repo(tmp_path / "repo"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "train: Additional properties" in out and "'epochz' was unexpected" in out
    assert "Job stats" not in out


def test_yaml_syntax_error_in_params_names_the_line(tmp_path):
    repo = copy_repo(tmp_path)
    with open(repo / "params.yaml", "a") as f:
        f.write("extra: [unclosed\n")
    proc = snakemake("-n", cwd=repo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "params.yaml is not valid YAML" in out and "line" in out
    assert "Job stats" not in out


def test_a_configfile_with_a_duplicate_key_is_refused_naming_it(tmp_path):
    path = tmp_path / "override.yaml"
    path.write_text("train:\n  epochs: 3\n  epochs: 300\n")  # Snakemake alone would keep 300, silently
    proc = snakemake("-n", "--configfile", str(path), cwd=copy_repo(tmp_path / "repo"), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{path} is not valid YAML" in out and "found the key 'epochs' twice" in out
    assert "Job stats" not in out


def test_config_overrides_are_typed_and_validated(tmp_path):
    repo = copy_repo(tmp_path)
    ok = snakemake("-n", "--config", "train={epochs: 2, lr: 1.0e-3}", cwd=repo)  # nested values arrive as text
    assert job_counts(ok.stdout)["train"] == len(build_grid(load_params(REPO / "params.yaml")).runs)
    bad = snakemake("-n", "--config", "train={epochs: 2.5}", cwd=repo, check=False)
    assert bad.returncode != 0 and "train.epochs: 2.5 is not of type 'integer'" in bad.stdout + bad.stderr


def test_a_quoted_config_override_stays_text(tmp_path):
    repo = copy_repo(tmp_path)
    (repo / "2024").write_bytes(b"")  # a local tarball named like a number
    out = snakemake("-n", "--cores", "1", "--config", 'data={tarball: "2024"}', cwd=repo).stdout
    assert job_counts(out)["import_tarball"] == 1 and "msga download --source 2024 " in out


def _stage_deps(stage: str) -> set[str]:
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    return {d if isinstance(d, str) else next(iter(d)) for d in deps}


def test_each_dvc_stage_lists_exactly_the_code_its_rules_hash():
    """Snakemake reruns a step when a file its rule hashes changes; DVC reruns the stage that runs
    the step only if the file is one of its deps, and a dep the rules do not hash reruns it for
    nothing. The two lists must be equal, file by file."""
    for stage in codedeps.DVC_STAGES:
        listed = {d.removeprefix("src/msga/") for d in _stage_deps(stage) if d.startswith("src/msga")}
        computed = set(codedeps.dvc_stage_files(stage))
        assert listed == computed, f"{stage}: missing {sorted(computed - listed)}, extra {sorted(listed - computed)}"


def test_a_url_with_shell_syntax_reaches_the_download_intact_and_runs_nothing(tmp_path):
    import yaml as yaml_

    params = yaml_.safe_load((REPO / "params.yaml").read_text())
    params["data"]["url"] = "http://127.0.0.1:9/cifar.tar.gz?a=1&b=$(touch${IFS}pwned)`touch${IFS}pwned2`;touch${IFS}pwned3"
    params["data"]["retries"] = 1
    repo = copy_repo(tmp_path / "repo", params)
    proc = snakemake("data", "--cores", "1", cwd=repo, check=False)
    assert proc.returncode != 0
    log = (repo / "logs" / "data" / "download.log").read_text()
    assert f"cannot reach {params['data']['url']}" in log  # the URL arrived whole, as one argument
    assert "cannot reach" in proc.stdout + proc.stderr  # the failed job's log is shown on the terminal
    assert not [p for p in repo.rglob("pwned*")] and not list(tmp_path.rglob("pwned*"))


def test_a_complete_configfile_replaces_params_yaml_and_a_partial_one_merges_into_it(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    demo = load_params(REPO / "workflow" / "demo.yaml")
    complete = job_counts(snakemake("-n", "--cores", "1", "--configfile", "workflow/demo.yaml", cwd=repo).stdout)
    assert complete["train"] == len(build_grid(demo).runs)  # nothing of params.yaml's grid leaks into the demo's
    partial = tmp_path / "partial.yaml"
    partial.write_text("train:\n  epochs: 2\n")
    merged = job_counts(snakemake("-n", "--cores", "1", "--configfile", str(partial), cwd=repo).stdout)
    assert merged["train"] == len(build_grid(load_params(REPO / "params.yaml")).runs)


def test_the_dvc_plots_name_the_columns_the_aggregation_writes():
    from msga.grid.experiments import SWEEPS

    plots = {next(iter(p)): p[next(iter(p))] for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]}
    for exp, sweep in SWEEPS.items():
        assert plots[f"reports/plots/{exp}.csv"]["x"] == sweep.x, exp


# ---------------------------------------------------------------- jobs whose outputs exist, run all the same


@pytest.fixture()
def finished(tmp_path) -> Path:
    """A two-run grid whose every job is done as far as the DAG can tell: each output a dry run
    plans is there (but the temporary ones, which a finished DAG has removed)."""
    repo = copy_repo(tmp_path, two_run_params(epochs=1))
    write_outputs(repo, *(rule for rule in ALL_RULES if rule not in ("verify", "extract")))
    assert "Nothing to be done" in snakemake("-n", "--cores", "1", cwd=repo).stdout
    return repo


ALL_RULES = ("synthesize", "verify", "extract", "pack", "grid", "run_config", "train", "aggregate", "report")


def _plan(repo: Path, *args: str) -> tuple[dict[str, int], str]:
    out = snakemake("-n", "--cores", "1", *args, cwd=repo).stdout
    return {rule: n for rule, n in job_counts(out).items() if rule != "total"}, out


def test_a_forced_run_is_planned_with_its_real_inputs_made_first(finished):
    folder = run_dir(finished, "msga/base/seed0").relative_to(finished)
    packed = next((finished / "data" / "packed").glob("*.pt"))
    packed.unlink()  # the forced job needs its data: the plan makes it again
    counts, out = _plan(finished, "-f", f"{folder}/metrics.json")
    assert counts == {"verify": 1, "extract": 1, "pack": 1, "train": 1}, counts  # not the other run
    assert f"msga train --config {folder}/config.json --data data/packed/{packed.name} --out {folder}" in out
    assert f"> logs/train/msga/base/seed0/{folder.name}.log" in out  # the log beside the run's id and key


def test_forcerun_train_plans_every_run_and_what_depends_on_them(finished):
    counts, out = _plan(finished, "--forcerun", "train")
    assert counts == {"train": 2, "aggregate": 1, "report": 1, "all": 1}, counts  # as Snakemake does in any DAG
    assert out.count("msga train --config ") == 2


@pytest.mark.parametrize("rule", ["report", "aggregate"])
def test_forcerun_of_a_later_step_retrains_nothing_when_the_data_is_gone(finished, rule):
    """After `dvc gc` or to save space the packed data may be gone: forcing the report (or the
    aggregation) must not make the training runs ask for it, rebuild it, and so retrain."""
    next((finished / "data" / "packed").glob("*.pt")).unlink()
    counts, _ = _plan(finished, "--forcerun", rule)
    expected = {"report": 1, "all": 1} if rule == "report" else {"aggregate": 1, "report": 1, "all": 1}
    assert counts == expected, counts


def test_a_forced_report_is_planned_alone_with_its_command(finished):
    counts, out = _plan(finished, "-f", "reports/replication.html")
    assert counts == {"report": 1}, counts
    assert "msga report --reports reports --notebook workflow/notebooks/replication.ipynb --stamp " in out


def test_a_run_killed_before_snakemake_recorded_it_reruns_with_the_plain_command(finished):
    """Snakemake marks a job's outputs incomplete when it starts the job and clears the marks once it
    has recorded the job as done; a kill in between leaves complete-looking outputs marked. The
    profile's rerun-incomplete makes the plain command run that job again."""
    from snakemake.persistence.file import FilePersistence

    folder = run_dir(finished, "msga/base/seed0").relative_to(finished)
    marks = FilePersistence(path=finished / ".snakemake")
    for name in ("metrics.json", "history.jsonl", "predictions.npz"):
        marks._mark_incomplete(f"{folder}/{name}", None)
    counts, out = _plan(finished, f"{folder}/metrics.json")
    assert counts == {"train": 1}, counts
    assert f"msga train --config {folder}/config.json --data data/packed/" in out
