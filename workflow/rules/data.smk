# Data: (synthetic fixture ->) download or local tarball -> md5 -> safe extract -> packed tensors.


rule synthesize:
    output:
        tarball=SYNTHETIC,
        md5=f"{SYNTHETIC}.md5",
    params:
        out=tarball_folder,
        **PARAMS["data"]["synthetic"],
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/synthesize.log",
    shell:
        "msga synth --out {params.out} --train-per-class {params.train_per_class}"
        " --test-per-class {params.test_per_class} --seed {params.seed} > {log} 2>&1"


rule fetch:
    input:
        unpack(fetch_input),
    output:
        train=f"{RAW}/train",
        test=f"{RAW}/test",
        meta=f"{RAW}/meta",
    params:
        args=fetch_args,
        data=data_identity(PARAMS),
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/fetch.log",
    shell:
        "msga fetch --out data/raw {params.args} > {log} 2>&1"


rule pack:
    input:
        rules.fetch.output,
    output:
        PACKED,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/pack.log",
    shell:
        "msga pack --root data/raw --out {output} > {log} 2>&1"
