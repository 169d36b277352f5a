# One job per training run, in results/runs/{model}/{variant}/seed{seed}/{key}/ (msga.grid.paths). The DAG
# resolved the run's configuration once (common.smk); a rule writes it into the run's folder and the
# job trains exactly it.


rule run_config:
    output:
        f"{RUN_PATTERN}/{paths.RUN_CONFIG}",
    params:
        config=run_config_json,
    localrule: True
    log:
        f"logs/train/{ID_PATTERN}/{{key}}.config.log",
    run:
        write_text_atomic(output[0], params.config)


rule train:
    input:
        unpack(train_inputs),
    output:
        metrics=f"{RUN_PATTERN}/{paths.METRICS}",
        history=f"{RUN_PATTERN}/{paths.HISTORY}",
        predictions=f"{RUN_PATTERN}/{paths.PREDICTIONS}",
    params:
        config=run_config_file,
        data=PACKED,
        out=run_folder,
        runs_per_gpu=PARAMS["devices"]["runs_per_gpu"],
        gpu_wait=PARAMS["devices"]["gpu_wait_minutes"],
    threads: 1
    resources:
        gpu=1,
    conda:
        "../envs/msga.yaml"
    log:
        f"logs/train/{ID_PATTERN}/{{key}}.log",
    benchmark:
        f"logs/benchmarks/train/{ID_PATTERN}/{{key}}.tsv"
    shell:
        "OMP_NUM_THREADS={threads} msga train --config {params.config:q} --data {params.data:q}"
        " --out {params.out:q} --runs-per-gpu {params.runs_per_gpu} --gpu-wait {params.gpu_wait} > {log:q} 2>&1"


rule train_all:
    input:
        run_outputs(paths.METRICS),
