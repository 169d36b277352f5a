# The resolved grid, the aggregation of every run into tables and figures, then the papermill report.
from msga import outputs

AGGREGATES = outputs.aggregate_outputs()
PAPER = "workflow/resources/paper_table1.csv"
NOTEBOOK = "workflow/notebooks/replication.ipynb"


rule grid:
    output:
        outputs.GRID,
    params:
        grid=grid_json,
    localrule: True
    log:
        "logs/report/grid.log",
    run:
        write_text_atomic(output[0], params.grid)


rule aggregate:
    input:
        grid=outputs.GRID,
        metrics=run_outputs("metrics.json"),
        histories=run_outputs("history.jsonl"),
        paper=PAPER,
    output:
        AGGREGATES,
    params:
        results=RESULTS_KEY,
        paper=content_key(open(PAPER).read()),
        code=code(codedeps.AGGREGATE),
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/aggregate.log",
    shell:
        "msga aggregate --grid {input.grid:q} --runs results/runs --out reports --paper {input.paper:q} > {log:q} 2>&1"


rule report:
    input:
        AGGREGATES,
        notebook=NOTEBOOK,
    output:
        notebook="reports/replication.ipynb",
        html="reports/replication.html",
    params:
        results=RESULTS_KEY,
        paper=content_key(open(PAPER).read()),
        code=content_key(code(codedeps.AGGREGATE), code(codedeps.REPORT), open(NOTEBOOK).read()),
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/report.log",
    shell:
        "msga report --reports reports --notebook {input.notebook:q} > {log:q} 2>&1"
