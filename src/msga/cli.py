"""The command line: `msga <subcommand>`. Paths come from argv, hyperparameters from params.yaml.

Exit status: 0 done; 1 the work failed (a download, a non-finite loss, a full disk), with a message that says
what to do; 2 a usage or params error, found before any work started.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from msga.config import ParamsError


class UsageError(Exception):
    pass


def _params_arg(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--params", action="append", required=required,
                   help="params file (default params.yaml); repeat to merge several, later ones win "
                        "(as Snakemake merges --configfile files)")


def _params(args) -> list[str]:
    return args.params or ["params.yaml"]


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


# ---------------------------------------------------------------- subcommands


def cmd_validate(args) -> None:
    from msga.config import all_runs, load_params

    params = load_params(_params(args))
    print(f"{' + '.join(_params(args))}: valid; {len(all_runs(params))} distinct training runs in the grid")


def cmd_synth(args) -> None:
    import time

    from msga.data.synthetic import write_archive

    out = _writable_dir(args.out)
    t0 = time.perf_counter()
    path, md5 = write_archive(out, args.train_per_class, args.test_per_class, args.seed)
    print(f"{path}  md5 {md5}  ({path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s)")


def cmd_fetch(args) -> None:
    from msga.config import load_params
    from msga.data.cifar import fetch

    if args.url and args.tarball:
        raise UsageError("give either --url or --tarball, not both")
    url, md5, tarball, timeout, retries = args.url, args.md5, args.tarball, args.timeout, args.retries
    if url is None and tarball is None:  # defaults from params.yaml
        data = load_params(_params(args))["data"]
        url, tarball = data["url"], data["tarball"]
        md5 = md5 or data["md5"]
        timeout = timeout or data["timeout"]
        retries = retries or data["retries"]
    if retries is not None and retries < 1:
        raise UsageError(f"--retries must be at least 1, got {retries}")
    if url and not md5:
        raise UsageError("--url needs --md5: nothing downloaded is unpickled before its checksum matches")
    if tarball and not md5:
        sidecar = Path(f"{tarball}.md5")
        if sidecar.is_file():
            md5 = sidecar.read_text().split()[0]
    folder = fetch(_writable_dir(args.out), url=None if tarball else url, md5=md5, tarball=tarball,
                   timeout=timeout or 60, retries=retries or 3)
    print(f"{folder}: train, test, meta verified")


def cmd_pack(args) -> None:
    from msga.data.cifar import pack

    path = pack(args.root, _writable_file(args.out))
    print(f"{path}: packed")


def cmd_train(args) -> None:
    from msga.config import format_value, load_params, parse_set, resolve_run
    from msga.data.cifar import load_packed
    from msga.train import pick_device, train_run

    params = load_params(_params(args))
    overrides = parse_set(args.set or [])
    config = resolve_run(params, args.model, overrides, args.seed)
    out = _writable_dir(args.out)
    data = load_packed(args.data)
    variant = ",".join(f"{k}={format_value(v)}" for k, v in sorted(overrides.items())) or "base"
    run = args.run or f"{args.model}/{variant}/seed{args.seed}"
    metrics = train_run(config, data, out, pick_device(args.device), run)
    print(f"{run}: " + "  ".join(f"{k} {metrics[k]:.4f}" for k in ("auc", "acc", "precision", "recall")))


def cmd_models(args) -> None:
    from msga.config import load_params
    from msga.models import build_model, list_models, model_entry
    from msga.models.cost import count_params, forward_flops

    sizes = load_params(_params(args))["models"]
    print(f"{'model':<12} {'paper row':<42} {'params':>10} {'MFLOPs/img':>11}")
    for name in list_models():
        model = build_model(name, **sizes.get(name, {}))
        print(f"{name:<12} {model_entry(name).paper_row:<42} {count_params(model) / 1e6:>9.2f}M "
              f"{forward_flops(model) / 1e6:>11.0f}")


def cmd_runs(args) -> None:
    from msga.config import experiment_runs, load_params

    params = load_params(_params(args))
    for exp, runs in experiment_runs(params).items():
        for run in runs:
            print(f"{exp:<11} {run.path}")


def cmd_bench(args) -> None:
    from msga.bench import main as bench_main

    if args.json:
        _writable_file(args.json)
    bench_main(args)


def cmd_aggregate(args) -> None:
    from msga.aggregate import main as aggregate_main

    _writable_dir(args.out)
    aggregate_main(args)


def cmd_report(args) -> None:
    from msga.report import render

    render(_params(args), _writable_dir(args.reports), args.notebook)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msga", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a params file against the schema and the cross-field rules")
    _params_arg(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("synth", help="write the synthetic CIFAR-100-format archive (the offline fixture)")
    p.add_argument("--out", required=True, help="folder that receives cifar-100-python.tar.gz and its .md5")
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("fetch", help="download (or take a local tarball), verify and safely extract CIFAR-100")
    p.add_argument("--out", required=True, help="folder that receives cifar-100-python/{train,test,meta}")
    p.add_argument("--url", help="archive URL (a mirror); needs --md5")
    p.add_argument("--md5", help="expected md5 of the archive")
    p.add_argument("--tarball", help="a local cifar-100-python.tar.gz instead of a download")
    p.add_argument("--timeout", type=float, help="seconds without data before the download fails")
    p.add_argument("--retries", type=int, help="attempts in all for transient failures (default 3)")
    _params_arg(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("pack", help="pack the extracted splits into one tensor file")
    p.add_argument("--root", required=True, help="folder holding cifar-100-python/")
    p.add_argument("--out", required=True, help="output .pt file")
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("train", help="train and evaluate one run")
    _params_arg(p, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override, e.g. model.heads=4, train.batch_size=64, noise.sigma=0.1 (repeatable)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="run folder: metrics.json, history.jsonl, predictions.npz")
    p.add_argument("--data", default="data/cifar100.pt", help="packed data file")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--run", help="name of the run in logs and errors")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("models", help="table of the registered models: paper row, parameters, FLOPs")
    _params_arg(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("runs", help="list the training runs of the experiment grid")
    _params_arg(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("bench", help="training throughput: device-resident path vs a DataLoader loop")
    _params_arg(p)
    p.add_argument("--models", nargs="+", help="models to benchmark (default: all registered)")
    p.add_argument("--data", help="packed data file (default: a synthetic set of --images images)")
    p.add_argument("--images", type=int, default=10_000, help="synthetic training images when no --data")
    p.add_argument("--batch-size", type=int, help="default: train.batch_size of params")
    p.add_argument("--windows", type=int, default=5, help="timed windows per path")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per timed window")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: CPU count)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("aggregate", help="runs -> Table 1, figures, audit, reports/metrics.json")
    _params_arg(p)
    p.add_argument("--runs", default="results/runs", help="folder of the run folders")
    p.add_argument("--out", default="reports", help="output folder")
    p.add_argument("--paper", default="workflow/resources/paper_table1.csv")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("report", help="execute the notebook with papermill and render reports/replication.html")
    _params_arg(p)
    p.add_argument("--reports", default="reports", help="folder with the aggregate outputs")
    p.add_argument("--notebook", default="workflow/notebooks/replication.ipynb")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    parser = build_parser()
    args = parser.parse_args(argv)
    from msga.data.cifar import FetchError
    from msga.io import WriteFailed
    from msga.train import NonFiniteLoss

    try:
        args.func(args)
    except (ParamsError, UsageError) as err:
        parser.exit(2, f"msga {args.command}: error: {err}\n")
    except (FetchError, NonFiniteLoss, WriteFailed) as err:
        parser.exit(1, f"msga {args.command}: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
