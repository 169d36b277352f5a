# Whether a job must run: the DAG's staleness, in one place.
#
# By content, never by file times or Snakemake's records (a fresh clone after `dvc pull` has
# neither right): each output's path names what it was made from, a run's folder the key of its
# configuration and code (msga.grid.keys), the data its id, the aggregation and the report a stamp
# of their inputs' keys and their code. Done means the path for the current content exists.
#
# So a job asks for its inputs only when it must run (its input functions return nothing
# otherwise), and no file time of an input ever triggers one. A job whose outputs all exist runs
# all the same when it is forced or was left incomplete (must_run): then it asks for its real
# inputs, which are made first if they are not there. Shell commands take their paths from
# params, never from `input`, which is empty for a job that need not run.
#
# forced() and incomplete() read Snakemake's settings and its persistence records: the one place
# this workflow depends on Snakemake internals (the versions pyproject.toml allows).


def missing(*paths) -> bool:
    return not all(Path(p).exists() for p in paths)


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(os.path.relpath(a)) == os.path.normpath(os.path.relpath(b))


def upstream(rule: str) -> set[str]:
    """The rules whose jobs a job of `rule` may wait for, itself included; forcing one reruns it."""
    data_rules = {r.name for r in workflow.rules if Path(r.snakefile).name == "data.smk"}
    train = {"train", "run_config", *data_rules}
    return {"train": train, "aggregate": {"aggregate", "grid", *train},
            "report": {"report", "aggregate", "grid", *train}}[rule]


def forced(rule: str, outputs) -> bool:
    """Whether this run of Snakemake may force the job of `rule` that makes `outputs`, or one it
    depends on. --force forces only the targets: this job if it is one. --forceall forces every job;
    --forcerun the jobs of the rules it names and what depends on them, so a job of a named rule, or
    of a rule downstream of one, asks for its inputs, and no other job does. So `--forcerun report`
    does not make the training runs ask for data that may not be there, and retrain."""
    settings = workflow.dag_settings
    if settings.forceall or (settings.forcerun and set(settings.forcerun) & upstream(rule)):
        return True
    targets = set(settings.targets) if settings.forcetargets else set()
    return rule in targets or any(_same_path(t, o) for t in targets for o in outputs)


def incomplete(outputs) -> bool:
    """Whether Snakemake marked any of `outputs` incomplete: its job was killed after writing them
    and before Snakemake recorded it as done. The profile's rerun-incomplete runs such a job again."""
    marked = getattr(workflow.persistence, "_filter_incomplete_keys", None)  # every persistence backend's query
    return True if marked is None else bool(marked([str(o) for o in outputs]))  # unknown: ask for the inputs


def must_run(rule: str, outputs) -> bool:
    """Whether the job of `rule` that makes `outputs` runs in this invocation of Snakemake."""
    return missing(*outputs) or forced(rule, outputs) or incomplete(outputs)
