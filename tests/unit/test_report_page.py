"""The rendered report as a reader's browser shows it: headless Chromium (Debian's chromium and
chromium-driver, through selenium) at a desktop and a phone width, on a report aggregated from
fabricated run folders (a few seconds, no training). Also: one self-contained file, and no
warning from papermill, the kernel or nbconvert on the way."""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from msga.cli import main
from msga.grid.params import validate_params
from tests.conftest import REPO
from tests.unit.test_aggregate import PAPER, fabricate_runs

NOTEBOOK = str(REPO / "workflow" / "notebooks" / "replication.ipynb")
WIDTHS = {"desktop": (1280, 900, False), "narrow": (800, 900, False), "phone": (390, 844, True)}  # px wide, high, mobile
MISSING = "msga/heads=1/seed0"  # left unfinished, so the page lists a run not in the tables

# Every element outside a sideways-scrolling box must fit inside its parent and the window; a
# scrolling box (a wide table's) may hold wider content, which is what it is for.
OVERFLOWING = """
const width = document.documentElement.clientWidth;
function scrolls(el) {
  for (let p = el.parentElement; p; p = p.parentElement) {
    const x = getComputedStyle(p).overflowX;
    if (x === 'auto' || x === 'scroll' || x === 'hidden') return true;
  }
  return false;
}
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if ((r.width === 0 && r.height === 0) || scrolls(el)) continue;
  const p = el.parentElement.getBoundingClientRect();
  if (r.right > Math.min(p.right, width) + 1 || r.left < Math.max(p.left, 0) - 1) {
    out.push(`${el.tagName.toLowerCase()}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}] in ` +
             `[${Math.round(p.left)}, ${Math.round(p.right)}]: ${(el.textContent || '').slice(0, 60)}`);
  }
}
return out;
"""
IMAGES = """
return Array.from(document.images).map(img => ({
  loaded: img.complete && img.naturalWidth > 0, alt: img.getAttribute('alt') || '',
  shown: img.getBoundingClientRect().width, parent: img.parentElement.getBoundingClientRect().width}));
"""


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("headless Chromium is needed to check the report page: install Debian's `chromium` and "
                    "`chromium-driver` (apt-get install chromium chromium-driver), as .ci/run does", pytrace=False)
    return chromium, driver


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list]:
    """A report from fabricated runs: three seeds where claims compare, one where they do not,
    one run missing. Returns (reports folder, warnings raised while rendering)."""
    root = tmp_path_factory.mktemp("page")
    raw = yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())
    for experiment in ("table1", "compute_matched", "heads", "batch_size", "noise", "ablation"):
        raw["experiments"][experiment]["seeds"] = [0, 1, 2]
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    grid = fabricate_runs(validate_params(raw), root / "runs", skip=(MISSING,))
    assert MISSING in {r.id for r in grid.runs}
    out = root / "reports"
    assert main(["aggregate", "--params", str(params_file), "--runs", str(root / "runs"), "--out", str(out),
                 "--paper", PAPER]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["report", "--reports", str(out), "--notebook", NOTEBOOK]) == 0
    return out, caught


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_rendering_warns_of_nothing_and_hides_nothing(rendered):
    out, caught = rendered
    assert [str(w.message) for w in caught] == []  # papermill's temp-file suffix, nbformat's cell ids
    executed = json.loads((out / "replication.ipynb").read_text())
    streams = [o for cell in executed["cells"] for o in cell.get("outputs", []) if o["output_type"] in ("stream", "error")]
    assert streams == []  # no stderr, no traceback in the executed notebook (and none removed from the HTML)


def test_rendering_logs_no_warning(rendered, caplog, capfd):
    """The kernel's own log (its TCP warning) goes to the terminal, nbconvert's to logging."""
    out, _ = rendered
    with caplog.at_level(logging.INFO):
        assert main(["report", "--reports", str(out), "--notebook", NOTEBOOK]) == 0
    captured = capfd.readouterr()
    text = captured.out + captured.err + caplog.text
    assert not re.search(r"warn", text, re.IGNORECASE), text


def test_the_page_is_one_file_that_fetches_nothing(rendered):
    page = (Path(rendered[0]) / "replication.html").read_text()
    assert re.search(r"<title>[^<]*CIFAR-100[^<]*</title>", page)
    assert "<script" not in page.lower()  # no require.js, MathJax or mermaid: nothing runs, nothing loads
    fetched = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", page, re.IGNORECASE)
    fetched += re.findall(r"""(?:@import|url\()\s*["']?\s*(?:https?:)?//[^"'\s)]*""", page, re.IGNORECASE)
    assert fetched == []
    assert page.count("data:image/png;base64,") >= 10  # the figures are inside the file
    assert "sections.table1(" not in page  # no code cells


@pytest.mark.parametrize("view", list(WIDTHS))
def test_the_page_reads_at_desktop_and_phone_width(rendered, browser, view):
    width, height, mobile = WIDTHS[view]
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    browser.get((Path(rendered[0]) / "replication.html").as_uri())
    assert "CIFAR-100" in browser.title
    inner = browser.execute_script("return window.innerWidth")
    assert inner == width, f"the page is wider than the {view} screen: the browser lays it out {inner} px wide"
    images = browser.execute_script(IMAGES)
    assert len(images) >= 10
    assert [i for i in images if not i["loaded"]] == [], "an image did not load"
    assert [i for i in images if not i["alt"].strip()] == [], "an image has no alt text"
    assert [i for i in images if i["shown"] > i["parent"] + 1] == [], "an image is wider than its box"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= inner, "the page scrolls sideways"
    assert browser.execute_script(OVERFLOWING) == []
    text = browser.find_element("tag name", "body").text
    for words in ("Verdict", "Claims, tested", "Table 1", "matched compute", "Calibration anchor", "Runs not in the tables",
                  "1 missing", "1 seed (no interval)", "How to reproduce", "snakemake --cores all --resources gpu=1"):
        assert words in text, words
    cells = browser.execute_script("return Array.from(document.querySelectorAll('td')).map(td => td.textContent)")
    assert [c for c in cells if re.search(r"\bnan\b", c, re.IGNORECASE)] == [], "a NaN reached a table"


@pytest.mark.parametrize(("source", "epochs", "acc", "status"), [
    ("cifar100", 200, 0.745, "pass"), ("cifar100", 200, 0.73, "fail"), ("cifar100", 200, 0.78, "fail"),
    ("cifar100", 30, 0.60, "not comparable"), ("synthetic", 200, 0.756, "pipeline only")])
def test_the_anchor_is_a_check_on_cifar100_at_the_references_budget_only(source, epochs, acc, status):
    from msga.results.claims import anchor_check

    check = anchor_check({"model": "resnet18", "acc_mean": acc, "epochs": epochs}, synthetic=source == "synthetic")
    assert check["status"] == status and check["difference"] == pytest.approx(acc - 0.756)
