"""dvc.yaml's generated parts (each stage's code deps, the sweeps' plots) are those the code defines,
and `msga dvc-yaml` writes them anew, keeping the rest of the file, comments included."""

from __future__ import annotations

import pytest
import yaml

from msga.cli import main
from msga.grid import dvcfile
from msga.grid.experiments import SWEEPS
from tests.conftest import REPO


def test_dvc_yaml_holds_what_the_code_defines():
    assert dvcfile.differences(REPO / "dvc.yaml") == []


def test_a_drifted_dvc_yaml_is_named_and_written_anew_with_its_comments(tmp_path, capsys):
    drifted = tmp_path / "dvc.yaml"
    text = (REPO / "dvc.yaml").read_text()
    drifted.write_text(text.replace(SWEEPS["batch_size"].title, "an old title")
                       .replace("      - src/msga/grid/paths.py\n", "", 1))
    with pytest.raises(SystemExit) as check:
        main(["dvc-yaml", "--check", "--file", str(drifted)])
    assert check.value.code == 1
    err = capsys.readouterr().err
    assert "an old title" in err and "src/msga/grid/paths.py" in err
    assert main(["dvc-yaml", "--file", str(drifted)]) == 0
    assert drifted.read_text() == text  # every comment and hand-written entry back as it was
    assert dvcfile.differences(drifted) == []


def test_each_sweep_has_its_plot_with_the_title_and_axes_of_its_figure():
    plots = {next(iter(p)): next(iter(p.values())) for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]}
    for exp, sweep in SWEEPS.items():
        spec = plots[f"reports/plots/{exp}.csv"]
        assert (spec["title"], spec["x"], spec["y"]) == (sweep.title, sweep.x, sweep.metric)
