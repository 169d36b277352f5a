"""The models, by name: which row of the paper each stands for and what builds it. Data, kept
apart from the registry's code (msga.models): a training run hashes its own entry, not this
file, so adding a model or editing another's entry retrains no run of the others. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    paper_row: str  # the row of Table 1 (or the ablation) this model stands for
    module: str  # the file under msga/models/ whose function `builder` builds it
    builder: str = ""  # the function to call; empty means `name`. Several entries may share one
    # builder (e.g. an architecture at another size), each with its own sizes in params.yaml

    def __post_init__(self):
        if not self.builder:
            object.__setattr__(self, "builder", self.name)


# The order is the order of Table 1, then Table 1's baselines at msga's compute, the ablations
# and the calibration anchor. The code a model's module imports (msga.models.layers for msga) is
# found by msga.grid.codedeps from its imports.
CATALOG = (
    ModelEntry("mlp_mixer", "MLP [8]", "mlp_mixer"),
    ModelEntry("convnext", "CNN [9]", "convnext"),
    ModelEntry("cnn_lstm", "LSTM [10]", "cnn_lstm"),
    ModelEntry("crossvit", "Transformer [11]", "crossvit"),
    ModelEntry("msga", "Ours", "msga"),
    # Table 1's baselines are matched to msga in parameters; these are the same architectures
    # sized to msga's forward FLOPs (within 15%), so a comparison can be read at either budget
    ModelEntry("mlp_mixer_flops", "MLP [8], compute-matched", "mlp_mixer", builder="mlp_mixer"),
    ModelEntry("convnext_flops", "CNN [9], compute-matched", "convnext", builder="convnext"),
    ModelEntry("cnn_lstm_flops", "LSTM [10], compute-matched", "cnn_lstm", builder="cnn_lstm"),
    ModelEntry("crossvit_flops", "Transformer [11], compute-matched", "crossvit", builder="crossvit"),
    ModelEntry("msga_local", "Ablation: multi-scale convolution only", "msga"),
    ModelEntry("msga_global", "Ablation: single 3x3 scale + attention", "msga"),
    # Controls that differ from msga in one thing at near-equal params and FLOPs
    ModelEntry("msga_single", "Ablation: one kernel (5x5) in 3 branches", "msga"),
    ModelEntry("msga_noattn", "Ablation: attention -> local 3x3 mixing", "msga"),
    # A model with a well-known CIFAR-100 result, trained by its own recipe: the pipeline's check
    ModelEntry("resnet18", "Calibration anchor: ResNet-18 (not in the paper)", "resnet"),
)
