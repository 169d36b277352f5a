# The resolved grid, the aggregation of every run into tables and figures, then the papermill
# report. Each stamps its output folder with the key of what it was made from (common.smk).


rule grid:
    output:
        GRID_FILE,
    params:
        grid=grid_json,
    localrule: True
    log:
        "logs/report/grid.log",
    run:
        write_text_atomic(output[0], params.grid)


rule aggregate:
    input:
        unpack(aggregate_inputs),
    output:
        AGGREGATES,
        stamp=AGGREGATE_STAMP,
    params:
        grid=GRID_FILE,
        runs=RUNS_ROOT,
        paper=PAPER,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/aggregate.log",
    shell:
        "msga aggregate --grid {params.grid:q} --runs {params.runs:q} --out reports --paper {params.paper:q}"
        " --stamp {output.stamp:q} > {log:q} 2>&1"


rule aggregated:
    input:
        AGGREGATES,
        AGGREGATE_STAMP,


rule report:
    input:
        unpack(report_inputs),
    output:
        REPORT,
        stamp=REPORT_STAMP,
    params:
        notebook=NOTEBOOK,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/report/report.log",
    shell:
        "msga report --reports reports --notebook {params.notebook:q} --stamp {output.stamp:q} > {log:q} 2>&1"
