# Replication of "Image Classification via Joint Multi-Scale Convolution and Global Attention
# Modeling" on CIFAR-100. The table of contents; the rules live in workflow/rules/.
#
#   snakemake --cores all --resources gpu=1                         # the whole replication
#   snakemake --cores all --configfile workflow/demo.yaml           # the offline demo (CPU, minutes)
#
# params.yaml -> (common.smk) validated once, every run resolved once -> data -> one job per run
# (it trains exactly its resolved configuration) -> aggregate -> report. Whether a job must run:
# staleness.smk.

from snakemake.utils import min_version

from msga.grid.reading import read_yaml
from msga.infra import interrupt

min_version("9.0")

# Snakemake's message for a YAML syntax error names neither the line nor the problem; this one does.
read_yaml("params.yaml")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/staleness.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


onstart:
    interrupt.install()  # Ctrl-C stops the running training jobs too, their checkpoints kept
    place_training_jobs()
    warn_without_gpu()


rule all:
    input:
        REPORT,
        REPORT_STAMP,
    default_target: True
