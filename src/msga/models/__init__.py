"""The model registry: every model has the same face, (B, 3, 32, 32) -> (B, num_classes) logits.

    build_model("msga", num_classes=100, heads=8)

The catalog below is torch-free, so validation, the DAG and the report know the models without
importing torch; `build_model` imports a model's module only when it is built. Tests are
parametrized over `list_models()`, so cataloguing a model is what gets it tested.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

SHARED_FILES = ("__init__.py",)  # code every model's build goes through


@dataclass(frozen=True)
class ModelEntry:
    name: str
    paper_row: str  # the row of Table 1 (or the ablation) this model stands for
    module: str  # the file under msga/models/ whose function `builder` builds it
    uses: tuple[str, ...] = ()  # other files under msga/models/ that module imports
    builder: str = ""  # the function to call; empty means `name`. Several entries may share one
    # builder (e.g. an architecture at another size), each with its own sizes in params.yaml

    def __post_init__(self):
        if not self.builder:
            object.__setattr__(self, "builder", self.name)

    @property
    def files(self) -> tuple[str, ...]:
        """The files under msga/models/ whose code this model runs: a change to them retrains it."""
        return (*SHARED_FILES, f"{self.module}.py", *self.uses)


# The order is the order of Table 1, then Table 1's baselines at msga's compute, the ablations
# and the calibration anchor.
_CATALOG = (
    ModelEntry("mlp_mixer", "MLP [8]", "mlp_mixer"),
    ModelEntry("convnext", "CNN [9]", "convnext"),
    ModelEntry("cnn_lstm", "LSTM [10]", "cnn_lstm"),
    ModelEntry("crossvit", "Transformer [11]", "crossvit"),
    ModelEntry("msga", "Ours", "msga", uses=("layers.py",)),
    # Table 1's baselines are matched to msga in parameters; these are the same architectures
    # sized to msga's forward FLOPs (within 15%), so a comparison can be read at either budget
    ModelEntry("mlp_mixer_flops", "MLP [8], compute-matched", "mlp_mixer", builder="mlp_mixer"),
    ModelEntry("convnext_flops", "CNN [9], compute-matched", "convnext", builder="convnext"),
    ModelEntry("cnn_lstm_flops", "LSTM [10], compute-matched", "cnn_lstm", builder="cnn_lstm"),
    ModelEntry("crossvit_flops", "Transformer [11], compute-matched", "crossvit", builder="crossvit"),
    ModelEntry("msga_local", "Ablation: multi-scale convolution only", "msga", uses=("layers.py",)),
    ModelEntry("msga_global", "Ablation: single 3x3 scale + attention", "msga", uses=("layers.py",)),
    # Controls that differ from msga in one thing at near-equal params and FLOPs
    ModelEntry("msga_single", "Ablation: one kernel (5x5) in 3 branches", "msga", uses=("layers.py",)),
    ModelEntry("msga_noattn", "Ablation: attention -> local 3x3 mixing", "msga", uses=("layers.py",)),
    # A model with a well-known CIFAR-100 result, trained by its own recipe: the pipeline's check
    ModelEntry("resnet18", "Calibration anchor: ResNet-18 (not in the paper)", "resnet"),
)
_REGISTRY = {entry.name: entry for entry in _CATALOG}


def list_models() -> list[str]:
    return list(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(name: str, num_classes: int = 100, **sizes):
    """Build a registered model; `sizes` are its size arguments (params.yaml models.<name>)."""
    entry = model_entry(name)
    builder = getattr(importlib.import_module(f"msga.models.{entry.module}"), entry.builder)
    return builder(num_classes=num_classes, **sizes)
