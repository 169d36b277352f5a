# Aggregation of every run into tables and figures, then the papermill report.

AGGREGATES = [
    "reports/table1.csv",
    "reports/ablation.csv",
    "reports/costs.csv",
    "reports/audit.csv",
    "reports/runs.csv",
    "reports/missing.csv",
    "reports/plots/heads.csv",
    "reports/plots/batch_size.csv",
    "reports/plots/noise.csv",
    "reports/plots/curves.csv",
    "reports/metrics.json",
]


rule aggregate:
    input:
        metrics=run_outputs("metrics.json"),
        histories=run_outputs("history.jsonl"),
        paper="workflow/resources/paper_table1.csv",
    output:
        AGGREGATES,
        directory("reports/figures"),
    params:
        args=PARAMS_ARGS,
        code=AGGREGATE_CODE,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/aggregate.log",
    shell:
        "msga aggregate {params.args} --runs results/runs --out reports --paper {input.paper} > {log} 2>&1"


rule report:
    input:
        AGGREGATES,
        "reports/figures",
        notebook="workflow/notebooks/replication.ipynb",
    output:
        notebook="reports/replication.ipynb",
        html="reports/replication.html",
    params:
        args=PARAMS_ARGS,
        code=REPORT_CODE,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/report.log",
    shell:
        "msga report {params.args} --reports reports --notebook {input.notebook} > {log} 2>&1"
