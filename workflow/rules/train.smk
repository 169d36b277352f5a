# One job per training run: results/runs/{model}/{variant}/seed{seed}/.


# The packed data is ancient(): its content is identified by the data params inside run_config
# (the archive md5, or the fixture's seed and sizes), so a DVC checkout that rewrites its mtime
# does not retrain anything, while a change of data does.
rule train:
    input:
        data=ancient(PACKED),
    output:
        metrics="results/runs/{model}/{variant}/seed{seed}/metrics.json",
        history="results/runs/{model}/{variant}/seed{seed}/history.jsonl",
        predictions="results/runs/{model}/{variant}/seed{seed}/predictions.npz",
    params:
        args=train_args,
        run_config=run_config_json,
        code=TRAIN_CODE,
    wildcard_constraints:
        model=MODEL_PATTERN,
        variant=VARIANT_PATTERN,
        seed=r"\d+",
    threads: 1
    resources:
        gpu=1,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/train/{model}/{variant}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{model}/{variant}/seed{seed}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} msga train {params.args} --data {input.data}"
        " --out $(dirname {output.metrics}) > {log} 2>&1"


rule train_all:
    input:
        run_outputs("metrics.json"),
