# Data, one rule a step: obtain the archive (download, a local tarball, or the synthesized
# fixture) -> verify its md5 -> extract -> pack. Each dataset has its own files, named by its id
# (msga.grid.resolve.dataset: the archive's md5, or the fixture's recipe and generator code, and the code
# from verification to packing), so the demo and the real data never share a file, and switching
# between them, or editing that code, rebuilds and retrains exactly what differs. The archive is
# named by its content alone: no code change fetches it again.

DATA_ID = DATASET["id"]
ARCHIVE = f"{paths.ARCHIVES}/{DATASET['archive']}.tar.gz"
ARCHIVE_MD5 = f"{ARCHIVE}.md5"
WORK = f"{paths.WORK}/{DATA_ID}"
VERIFIED = f"{WORK}/verified.json"
RAW = [f"{WORK}/{FOLDER}/{member}" for member in MEMBERS]
PACKED = f"{paths.PACKED}/{DATA_ID}.pt"


if DATASET["source"] == "synthetic":

    rule synthesize:
        output:
            archive=ARCHIVE,
            md5=ARCHIVE_MD5,
        params:
            sizes=PARAMS["data"]["synthetic"],
        conda:
            "../envs/msga.yaml"
        log:
            "logs/data/synthesize.log",
        shell:
            "msga synth --out {output.archive:q} --train-per-class {params.sizes[train_per_class]}"
            " --test-per-class {params.sizes[test_per_class]} --seed {params.sizes[seed]} > {log:q} 2>&1"

else:

    rule expected_md5:
        output:
            ARCHIVE_MD5,
        params:
            md5=DATASET["md5"],
        localrule: True
        log:
            "logs/data/expected_md5.log",
        run:
            write_text_atomic(output[0], f"{params.md5}  {Path(ARCHIVE).name}\n")

    if PARAMS["data"]["tarball"]:

        rule import_tarball:
            input:
                tarball=local_tarball,
            output:
                ARCHIVE,
            params:
                md5=DATASET["md5"],
            localrule: True  # the user's file is where Snakemake runs
            conda:
                "../envs/msga.yaml"
            log:
                "logs/data/import_tarball.log",
            shell:
                "msga download --source {input.tarball:q} --md5 {params.md5:q} --out {output:q} > {log:q} 2>&1"

    else:

        rule download:
            output:
                ARCHIVE,
            params:
                url=data_url,
                md5=DATASET["md5"],
                timeout=PARAMS["data"]["timeout"],
                retries=PARAMS["data"]["retries"],
            localrule: True  # cluster compute nodes often have no internet
            conda:
                "../envs/msga.yaml"
            log:
                "logs/data/download.log",
            shell:
                "msga download --source {params.url:q} --md5 {params.md5:q} --timeout {params.timeout}"
                " --retries {params.retries} --out {output:q} > {log:q} 2>&1"


rule verify:
    input:
        archive=ARCHIVE,
        md5=ARCHIVE_MD5,
    output:
        temp(VERIFIED),
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/verify.log",
    shell:
        "msga verify --archive {input.archive:q} --md5-file {input.md5:q} --out {output:q} > {log:q} 2>&1"


rule extract:
    input:
        archive=ARCHIVE,
        verified=VERIFIED,
    output:
        temp(RAW),
    params:
        out=extraction_folder,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/extract.log",
    shell:
        "msga extract --archive {input.archive:q} --verified {input.verified:q} --out {params.out:q} > {log:q} 2>&1"


rule pack:
    input:
        raw=RAW,
        verified=VERIFIED,
    output:
        PACKED,
    params:
        root=extracted_root,
        dataset=DATA_ID,
    conda:
        "../envs/msga.yaml"
    log:
        "logs/data/pack.log",
    shell:
        "msga pack --root {params.root:q} --verified {input.verified:q} --dataset {params.dataset:q}"
        " --out {output:q} > {log:q} 2>&1"


rule data:
    input:
        PACKED,
