"""The report: reports/ (what the aggregation wrote) -> one self-contained HTML page.

The notebook (workflow/notebooks/replication.ipynb) calls msga.report.sections, the page's table of
contents, section by section; `msga report` runs it through msga.report.notebook. The sections
live in modules in the order of the page: opening (title, verdict, claims), comparisons (Table 1,
compute-matched, ablation, anchor), sensitivity (the sweeps' figures), training (learning rates,
per class, curves), closing (runs left out, consistency, what was run, limits, how to reproduce).
Functions that compute return numbers; the sections turn them into HTML; the page's HTML blocks
are msga.report.page's and its fixed prose msga.report.prose's.
"""
