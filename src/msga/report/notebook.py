"""The report as a page: papermill executes the notebook, nbconvert renders its outputs, `page`
wraps them into one self-contained HTML file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from msga.infra.atomic import atomic_output
from msga.report.inputs import REPORT_INPUTS, ReportInputMissing
from msga.report.page import TITLE, page


def render(reports: str | Path, notebook: str | Path) -> Path:
    """papermill executes the notebook into reports/replication.ipynb; nbconvert's body-only
    ("basic") template makes the HTML of its outputs, and `page` wraps it: nbconvert's full
    templates load require.js, MathJax and mermaid from the network, which a report needs none of."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    reports = Path(reports).resolve()
    for name in REPORT_INPUTS:  # fail before executing, with a message rather than a notebook traceback
        if not (reports / name).exists():
            raise ReportInputMissing(f"{reports / name} is missing: run `msga aggregate` (or `snakemake`) first")
    # No output path: papermill returns the executed notebook, which is written below through a
    # temp file. Given the temp file itself it warns, since the temp name does not end in .ipynb.
    # The kernel talks to papermill over unix sockets in a private folder (IPC transport): over
    # TCP, unencrypted, any local user could read or send to it, and the kernel warns of that.
    with tempfile.TemporaryDirectory(prefix="msga-kernel-") as sockets:
        transport = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        nb = papermill.execute_notebook(
            str(notebook), None, parameters={"reports": str(reports)}, kernel_name="python3",
            progress_bar=False, cwd=str(reports.parent), language="python", config=transport,
        )
    nb.metadata["title"] = TITLE
    executed = reports / "replication.ipynb"
    with atomic_output(executed) as tmp:
        nbformat.write(nb, str(tmp))
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    out = reports / "replication.html"
    with atomic_output(out) as tmp:
        tmp.write_text(page(body))
    return out
