"""dvc.yaml's generated parts, written from the code that defines them so that they cannot drift:
each stage's code deps under src/msga (msga.grid.codedeps.dvc_stage_files) and the sweeps' plots
(msga.grid.experiments.SWEEPS: data file, title, axes). `msga dvc-yaml` rewrites them in place,
comments and everything else of the file kept; `msga dvc-yaml --check` names what differs, and a
test runs the check. Torch-free."""

from __future__ import annotations

import io
from pathlib import Path

from msga.grid.codedeps import DVC_STAGES, dvc_stage_files
from msga.grid.experiments import SWEEPS
from msga.grid.paths import REPORTS, sweep_data

CODE = "src/msga/"


def code_deps(stage: str) -> list[str]:
    return [f"{CODE}{f}" for f in dvc_stage_files(stage)]


def sweep_plots() -> dict[str, dict]:
    """Each sweep's plot for `dvc plots`: its data file -> title and axes."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString as quoted  # titles hold colons

    return {f"{REPORTS}/{sweep_data(exp)}": {"title": quoted(s.title), "x": s.x, "y": s.metric, "template": "scatter"}
            for exp, s in SWEEPS.items()}


def _name(entry) -> str:
    """A deps, outs or plots entry's path: the entry itself, or the key of its one-entry mapping."""
    return entry if isinstance(entry, str) else next(iter(entry))


def _sync_deps(deps: list, stage: str) -> None:
    """Replace the stage's code deps by the generated ones, where the first of them stood."""
    at = next((i for i, d in enumerate(deps) if _name(d).startswith(CODE)), len(deps))
    kept = [d for d in deps if not _name(d).startswith(CODE)]
    deps[:] = kept[:at] + code_deps(stage) + kept[at:]


def _sync_plots(plots: list) -> None:
    """Replace the sweeps' plots by the generated ones, where the first of them stood; other plots stay."""
    wanted = sweep_plots()
    at = next((i for i, p in enumerate(plots) if _name(p) in wanted), len(plots))
    kept = [p for p in plots if _name(p) not in wanted]
    plots[:] = kept[:at] + [{path: spec} for path, spec in wanted.items()] + kept[at:]


def synced(text: str) -> str:
    """dvc.yaml's text with its generated parts written anew."""
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, quotes and layout stay
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc = yaml.load(text)
    for stage in DVC_STAGES:
        _sync_deps(doc["stages"][stage]["deps"], stage)
    _sync_plots(doc["plots"])
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def differences(path: str | Path) -> list[str]:
    """What dvc.yaml at `path` lacks or has beyond its generated parts, line by line ('' if none)."""
    import difflib

    text = Path(path).read_text()
    return [line for line in difflib.unified_diff(text.splitlines(), synced(text).splitlines(), str(path),
                                                  "as generated", lineterm="", n=0)]
