"""The command line: `msga <subcommand>`. Paths come from argv; hyperparameters from params files
or, for a training job, from the run's resolved configuration file that the DAG wrote.

Exit status: 0 done; 1 the work failed (a download, a non-finite loss, a full disk), with a message that says
what to do; 2 a usage or params error, found before any work started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from msga.grid import paths
from msga.grid.reading import ParamsError
from msga.grid.runs import RunIdError
from msga.infra.errors import Failure


class UsageError(Exception):
    pass


def _params(args) -> list[str]:
    return args.params or [paths.PARAMS]


def _writable_dir(path: str) -> Path:
    """The output folder, created; checked before any work so a long job cannot fail at its end."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create output folder {out}: {err.strerror}; pick another --out")
    if not os.access(out, os.W_OK):
        raise UsageError(f"output folder {out} is not writable; pick another --out or fix its permissions")
    return out


def _writable_file(path: str) -> Path:
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give a file name")
    _writable_dir(str(out.parent))
    return out


def _verified_md5(path: str) -> str:
    record = _json_file(path, "verification record")
    if not isinstance(record.get("md5"), str):
        raise UsageError(f"verification record {path} holds no md5: write it with `msga verify`")
    return record["md5"]


def _json_file(path: str, what: str) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist")
    except (OSError, ValueError) as err:
        raise UsageError(f"{what} {path} is not readable JSON ({err})")
    if not isinstance(value, dict):
        raise UsageError(f"{what} {path} holds a JSON {type(value).__name__}, not an object")
    return value


# ---------------------------------------------------------------- the grid


def cmd_validate(args) -> None:
    from msga.grid.params import load_params
    from msga.grid.resolve import build_grid

    grid = build_grid(load_params(_params(args)))
    print(f"{' + '.join(_params(args))}: valid; {len(grid.runs)} distinct training runs in the grid")


def cmd_runs(args) -> None:
    from msga.grid.params import load_params
    from msga.grid.resolve import build_grid

    grid = build_grid(load_params(_params(args)))
    serves = grid.serves()
    width = max(len(r.id) for r in grid.runs)
    for run, experiments in serves.items():
        print(f"{run.id:<{width}}  {', '.join(experiments)}")
    shared = grid.shared()
    serve = "serves" if len(shared) == 1 else "serve"
    print(f"{len(grid.runs)} distinct runs; {len(shared)} of them {serve} more than one experiment "
          f"({sum(len(e) for e in serves.values())} experiment slots in all)")


def cmd_status(args) -> None:
    from msga.grid.params import load_params
    from msga.grid.resolve import build_grid
    from msga.results import status

    state = status.collect(build_grid(load_params(_params(args))), args.runs)
    if state.running:
        print(f"running here: pid {state.running['pid']} since {state.running['started']}: {state.running['command']}")
    counts: dict[str, int] = {}
    for s in state.states:
        counts[s.status] = counts.get(s.status, 0) + 1
        if s.status != "finished" and (args.all or s.status != "missing"):
            print(f"  {s.status:<12} {s.reason}")
    print(", ".join(f"{n} {status_}" for status_, n in counts.items()) + f" of {len(state.states)} runs")
    if state.seconds_left:
        print(f"training left: about {status.describe(state.seconds_left)} one run at a time, from the epoch "
              "times measured so far")
    elif counts.get("finished", 0) < len(state.states):
        print("training left: no epoch measured yet to estimate it from")


def cmd_resolve(args) -> None:
    from msga.grid.params import load_params
    from msga.grid.resolve import build_grid, resolve_run
    from msga.grid.runs import Run
    from msga.infra.atomic import write_text_atomic

    params = load_params(_params(args))
    run = Run.parse(args.run)
    grid = build_grid(params)
    config = grid.configs.get(run.id) or resolve_run(params, run)  # a run outside the grid, named by hand
    text = json.dumps(config, indent=1, sort_keys=True) + "\n"
    if args.out:
        write_text_atomic(_writable_file(args.out), text)
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------- data steps


def cmd_synth(args) -> None:
    import time

    from msga.data.synthetic import write_archive

    out = _writable_file(args.out)
    t0 = time.perf_counter()
    path, md5 = write_archive(out, args.train_per_class, args.test_per_class, args.seed)
    print(f"{path}  md5 {md5}  ({path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s)")


def cmd_download(args) -> None:
    from msga.data.download import obtain

    if args.retries < 1:
        raise UsageError(f"--retries must be at least 1, got {args.retries}")
    path = obtain(args.source, _writable_file(args.out), args.md5, args.timeout, args.retries)
    print(f"{path}: obtained, md5 {args.md5}")


def cmd_verify(args) -> None:
    from msga.data.archive import read_md5_file, verify
    from msga.infra.atomic import write_json_atomic

    md5 = verify(args.archive, read_md5_file(args.md5_file))
    write_json_atomic(_writable_file(args.out), {"archive": str(args.archive), "md5": md5})
    print(f"{args.archive}: md5 {md5} verified")


def cmd_extract(args) -> None:
    from msga.data.archive import extract

    folder = extract(args.archive, _writable_dir(args.out), _verified_md5(args.verified))
    print(f"{folder}: train, test, meta extracted")


def cmd_fetch(args) -> None:
    from msga.data.fetch import fetch

    if args.url and args.tarball:
        raise UsageError("give either --url or --tarball, not both")
    if args.retries < 1:
        raise UsageError(f"--retries must be at least 1, got {args.retries}")
    md5 = args.md5
    if args.url and not md5:
        raise UsageError("--url needs --md5: nothing downloaded is unpickled before its checksum matches")
    if args.tarball and not md5 and Path(f"{args.tarball}.md5").is_file():
        from msga.data.archive import read_md5_file

        md5 = read_md5_file(f"{args.tarball}.md5")
    folder = fetch(_writable_dir(args.out), url=args.url, md5=md5, tarball=args.tarball,
                   timeout=args.timeout, retries=args.retries)
    print(f"{folder}: train, test, meta verified")


def cmd_pack(args) -> None:
    from msga.data.cifar import pack

    md5 = _verified_md5(args.verified)
    path = pack(args.root, _writable_file(args.out), args.dataset, md5)
    print(f"{path}: packed")


# ---------------------------------------------------------------- training


def cmd_train(args) -> None:
    config = _json_file(args.config, "run configuration")
    for key in ("run", "model", "train", "noise", "data", "seed"):
        if key not in config:
            raise UsageError(f"run configuration {args.config} lacks '{key}': write it with `msga resolve`")
    if not Path(args.data).is_file():  # before any folder is made or torch loaded
        raise UsageError(f"packed data {args.data} does not exist; the run trains on it: make it first "
                         "(`snakemake data`, or `msga pack`)")
    out = _writable_dir(args.out)
    gpu = _placed(args.device, args.runs_per_gpu, args.gpu_wait)  # before torch starts CUDA: it sees one GPU
    from msga.data.cifar import load_packed
    from msga.grid.metrics import HEADLINE
    from msga.train.device import pick_device
    from msga.train.loop import train_run

    data = load_packed(args.data)
    metrics = train_run(config, data, out, pick_device(args.device), args.data, gpu=gpu)
    print(f"{config['run']}: " + "  ".join(f"{k} {metrics[k]:.4f}" for k in HEADLINE))


def _placed(device: str, runs_per_gpu: int, wait_minutes: float) -> str | None:
    """The GPU this job trains on (msga.infra.gpus): with --device auto, a slot of one of this
    machine's GPUs, claimed and held while the process lives, and made the only GPU the job sees;
    under SLURM, the GPU the scheduler gave. None where there is no GPU (or --device names one)."""
    from msga.infra import gpus

    if runs_per_gpu < 1:
        raise UsageError(f"--runs-per-gpu must be at least 1, got {runs_per_gpu}")
    visible = gpus.machine_gpus()
    if device != "auto" or not visible:
        return None
    if gpus.under_slurm():
        return ",".join(visible)
    slot = gpus.claim(visible, runs_per_gpu, gpus.slots_folder(), wait_minutes * 60)
    os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu
    return slot.gpu


def cmd_models(args) -> None:
    from msga.grid.params import load_params
    from msga.models import list_models, model_entry
    from msga.train.costs import model_costs

    sizes = load_params(_params(args))["models"]
    names = list_models()
    wide, row = max(map(len, names)), max(len(model_entry(n).paper_row) for n in names)
    print(f"{'model':<{wide}}  {'paper row':<{row}}  {'params':>8}  {'MFLOPs/img':>10}")
    for name in names:
        params, flops = model_costs(name, sizes.get(name, {}))  # counted once per model, sizes and code
        print(f"{name:<{wide}}  {model_entry(name).paper_row:<{row}}  {params / 1e6:>7.2f}M  {flops / 1e6:>10.0f}",
              flush=True)


def cmd_bench(args) -> None:
    from msga.grid.params import load_params
    from msga.timing.bench import Settings, run

    if args.json:
        _writable_file(args.json)
    settings = Settings(models=args.models, data=args.data, images=args.images, batch_size=args.batch_size,
                        windows=args.windows, steps=args.steps, warmup=args.warmup, workers=args.workers,
                        compile=args.compile, device=args.device, project=args.project)
    result = run(load_params(_params(args)), settings, show=lambda line: print(line, flush=True))
    if args.json:
        from msga.infra.atomic import write_json_atomic

        write_json_atomic(args.json, result)


# ---------------------------------------------------------------- results


def cmd_aggregate(args) -> None:
    from msga.grid.params import load_params
    from msga.grid.resolve import Grid, build_grid
    from msga.results.aggregate import aggregate

    out = _writable_dir(args.out)
    grid = Grid.from_json(Path(args.grid).read_text()) if args.grid else build_grid(load_params(_params(args)))
    done, problems = aggregate(grid, Path(args.runs), out, Path(args.paper))
    print(f"aggregated {done} of {len(grid.runs)} runs into {out}; {len(problems)} not aggregated")
    for reason in problems["reason"]:
        print(f"  {reason}")
    if args.stamp:
        from msga.infra.atomic import write_stamp

        write_stamp(args.stamp)


def cmd_tune(args) -> None:
    from msga.grid.params import load_params
    from msga.results import tuning

    best = tuning.winners(Path(args.reports) / "tune.csv")
    print("best learning rate per 256 images, on the validation split:")
    for model, lr in sorted(best.items()):
        print(f"  {model:<16} {lr:g}")
    heirs = tuning.inherited(load_params(args.params), best)
    if heirs:
        print("models that train at a tuned model's winner (its controls and other sizes):")
        for model, (source, lr) in sorted(heirs.items()):
            print(f"  {model:<16} {lr:g} ({source}'s)")
    if not args.apply:
        print(f"to train Table 1 with them: msga tune --apply --params {args.params}")
        return
    changes = tuning.apply(args.params, best)
    print("\n".join(f"{args.params}: {c}" for c in changes) or f"{args.params} already holds them")


def cmd_report(args) -> None:
    from msga.report.notebook import render

    render(_writable_dir(args.reports), args.notebook)
    if args.stamp:
        from msga.infra.atomic import write_stamp

        write_stamp(args.stamp)


def cmd_dvc_yaml(args) -> None:
    from msga.grid import dvcfile
    from msga.infra.atomic import write_text_atomic

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path} does not exist; run from the repository's root or pass --file")
    if args.check:
        differences = dvcfile.differences(path)
        if differences:
            raise Failure(f"{path} differs from the code that defines its code deps and sweep plots:\n"
                          + "\n".join(differences) + "\nrun `msga dvc-yaml` to write them anew")
        print(f"{path}: its code deps and sweep plots are those the code defines")
        return
    text = path.read_text()
    new = dvcfile.synced(text)
    if new != text:
        write_text_atomic(path, new)
    print(f"{path}: code deps and sweep plots {'written anew' if new != text else 'already current'}")


# ---------------------------------------------------------------- the commands and their arguments


def arg(*flags, **kwargs) -> tuple:
    return flags, kwargs


def one_of(*arguments) -> tuple:
    """Arguments of which a command takes at most one."""
    return ("one of", arguments)


PARAMS = arg("--params", action="append", help="params file (default params.yaml); repeat to merge several, later "
                                               "ones win (as Snakemake merges --configfile files)")
RUNS = arg("--runs", default=paths.RUNS_ROOT, help="folder of the run folders")
OUT_FILE = arg("--out", required=True, help="the file to write")
TIMEOUT = arg("--timeout", type=float, default=60.0, help="seconds without data before a download fails")
RETRIES = arg("--retries", type=int, default=3, help="attempts in all for transient failures")
STAMP = arg("--stamp", help="write this stamp file last (the DAG's record of what the outputs were made from)")
REPORTS = arg("--reports", default=paths.REPORTS, help="folder with the aggregate outputs")

# name -> (help, function, arguments), in the order `msga --help` lists them
COMMANDS = {
    "validate": ("check a params file against the schema and the cross-field rules", cmd_validate, [PARAMS]),
    "runs": ("list the distinct training runs of the grid and the experiments each serves", cmd_runs, [PARAMS]),
    "status": ("which runs are finished, in progress, stale, damaged or missing; time left", cmd_status, [
        PARAMS, RUNS, arg("--all", action="store_true", help="also list each missing run")]),
    "resolve": ("write one run's resolved configuration (what `msga train --config` takes)", cmd_resolve, [
        PARAMS, arg("--run", required=True, help="run id MODEL/VARIANT/seedN, e.g. msga/heads=4/seed0"),
        arg("--out", help="output .json file (default: standard output)")]),
    "synth": ("write the synthetic CIFAR-100-format archive (the offline fixture) and its .md5", cmd_synth, [
        arg("--out", required=True, help="the archive to write, e.g. data/archives/synthetic.tar.gz"),
        arg("--train-per-class", type=int, default=500), arg("--test-per-class", type=int, default=100),
        arg("--seed", type=int, default=0)]),
    "download": ("obtain the archive from a URL or a local file, md5-checked", cmd_download, [
        arg("--source", required=True, help="a URL (http, https, file) or the path of a local archive"),
        arg("--md5", required=True, help="expected md5 of the archive"),
        arg("--out", required=True, help="the archive file to write"), TIMEOUT, RETRIES]),
    "verify": ("check an archive against its md5 file; write a verification record", cmd_verify, [
        arg("--archive", required=True), arg("--md5-file", required=True, help="a file whose first word is the expected md5"),
        arg("--out", required=True, help="the verification record (.json) to write")]),
    "extract": ("safely extract a verified archive", cmd_extract, [
        arg("--archive", required=True), arg("--verified", required=True, help="the record `msga verify` wrote for this archive"),
        arg("--out", required=True, help="folder that receives cifar-100-python/{train,test,meta}")]),
    "fetch": ("obtain, verify and extract in one step (outside the DAG)", cmd_fetch, [
        arg("--out", required=True, help="folder that receives the archive and cifar-100-python/"),
        arg("--url", help="archive URL (a mirror); needs --md5"),
        arg("--md5", help="expected md5 of the archive (for a --tarball, default: its .md5 file)"),
        arg("--tarball", help="a local cifar-100-python.tar.gz instead of a download"), TIMEOUT, RETRIES]),
    "pack": ("pack the extracted splits into one tensor file", cmd_pack, [
        arg("--root", required=True, help="folder holding cifar-100-python/"),
        arg("--verified", required=True, help="the record `msga verify` wrote for the archive"),
        arg("--dataset", required=True, help="the dataset id the packed file records"),
        arg("--out", required=True, help="output .pt file")]),
    "train": ("train and evaluate one run, exactly as its configuration file says", cmd_train, [
        arg("--config", required=True, help="the run's resolved configuration (`msga resolve` writes one)"),
        arg("--data", required=True, help="packed data file"),
        arg("--out", required=True, help="run folder, named by the run's key: metrics.json, history.jsonl, "
                                         "predictions.npz"),
        arg("--device", default="auto", help="auto (a free GPU slot of this machine, else the CPU) | cpu | cuda | "
                                             "cuda:N"),
        arg("--runs-per-gpu", type=int, default=1, help="training jobs that may share one GPU (devices.runs_per_gpu)"),
        arg("--gpu-wait", type=float, default=1440, help="minutes to wait for a free GPU slot before failing")]),
    "models": ("table of the registered models: paper row, parameters, FLOPs", cmd_models, [PARAMS]),
    "bench": ("training throughput: device-resident path vs a DataLoader loop", cmd_bench, [
        PARAMS, arg("--models", nargs="*", help="models to compare the two data paths on (default: all; none: skip)"),
        arg("--data", help="packed data file (default: a synthetic set of --images images)"),
        arg("--images", type=int, default=10_000, help="synthetic training images when no --data"),
        arg("--batch-size", type=int, help="default: train.batch_size of params"),
        arg("--windows", type=int, default=5, help="timed windows per path"),
        arg("--steps", type=int, default=20, help="optimizer steps per timed window"),
        arg("--warmup", type=int, default=5, help="untimed steps before timing"),
        arg("--workers", type=int, default=None, help="DataLoader workers (default: CPU count)"),
        arg("--compile", action="store_true", help="also time torch.compile (CUDA)"), arg("--device", default="auto"),
        arg("--project", action="store_true", help="also project the grid's wall time here: every (model, batch) of "
            "params' grid, the evaluation speed and a real job's start-up, measured"),
        arg("--json", help="also write the results to this JSON file")]),
    "aggregate": ("runs -> Table 1, figures, claims, reports/metrics.json", cmd_aggregate, [
        one_of(arg("--grid", help="the resolved grid the DAG wrote (results/grids/KEY.json)"),
               arg("--params", action="append", help="params files to resolve the grid from (default params.yaml)")),
        RUNS, arg("--out", default=paths.REPORTS, help="output folder"), arg("--paper", default=paths.PAPER_TABLE),
        STAMP]),
    "tune": ("the tune experiment's best learning rates; --apply writes them into params", cmd_tune, [
        arg("--reports", default=paths.REPORTS, help="folder holding tune.csv (msga aggregate writes it)"),
        arg("--params", default=paths.PARAMS, help="the params file to update with --apply"),
        arg("--apply", action="store_true", help="write train.per_model.<model>.lr for each tuned model and each "
                                                 "model that inherits a winner")]),
    "report": ("execute the notebook with papermill and render reports/replication.html", cmd_report, [
        REPORTS, arg("--notebook", default=paths.NOTEBOOK), STAMP]),
    "dvc-yaml": ("write dvc.yaml's code deps and sweep plots from the code (--check: say what differs)", cmd_dvc_yaml, [
        arg("--file", default="dvc.yaml"), arg("--check", action="store_true", help="change nothing; exit 1 if the "
                                                                                      "file differs")]),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command in COMMANDS."""
    parser = argparse.ArgumentParser(prog="msga", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, func, arguments) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        for flags, kwargs in arguments:
            if flags == "one of":
                group = command.add_mutually_exclusive_group()
                for inner_flags, inner_kwargs in kwargs:
                    group.add_argument(*inner_flags, **inner_kwargs)
            else:
                command.add_argument(*flags, **kwargs)
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ParamsError, UsageError, RunIdError) as err:
        parser.exit(2, f"msga {args.command}: error: {err}\n")
    except Failure as err:
        parser.exit(1, f"msga {args.command}: {err}\n")
    except KeyboardInterrupt:
        kept = " (a training run keeps the checkpoint of its last finished epoch and resumes from it)"
        parser.exit(130, f"msga {args.command}: interrupted; nothing half-written was left{kept if args.command == 'train' else ''}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
