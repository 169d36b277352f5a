"""The experiments of the grid: which compare models, which sweep a setting (the keys a variant of
a run may override are named with the run, in msga.runs). The one definition every other part
(paths, the DAG, aggregation, figures, claims) derives from. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

from msga.metrics import HEADLINE
from msga.models import model_entry
from msga.runs import VARIANT_KEYS  # what a run's variant may override, named in its path

# The columns of the run table that say where a run sits in the sweeps: column -> dotted key.
COORDINATES = {"heads": "model.heads", "batch_size": "train.batch_size", "lr_scaling": "train.lr_scaling",
               "train_sigma": "noise.train_sigma", "test_sigma": "noise.test_sigma", "lr": "train.lr",
               "validation": "train.validation"}


@dataclass(frozen=True)
class ModelSet:
    """Models compared at their base configuration, with the same seeds."""

    experiment: str  # its section under `experiments:` in params.yaml
    title: str  # its heading in the report
    in_paper: bool


@dataclass(frozen=True)
class Sweep:
    """One model, one setting varied, the rest fixed."""

    experiment: str  # its section under `experiments:` in params.yaml
    name: str  # what it varies, in a sentence: "Batch size influences ..."
    short: str  # the variant key its values set (VARIANT_KEYS)
    x: str  # the run-table column of its values (COORDINATES)
    label: str  # axis label, with units
    title: str  # figure title in the report
    figure: str  # file name of the figure under reports/figures/
    metrics: tuple[str, ...]  # the metrics the figure shows
    in_paper: bool  # whether the paper shows this sweep as a figure (it names the others only)
    fixed: dict = field(default_factory=dict)  # further overrides of every run of the sweep (dotted key -> value)
    hold_lr: bool = False  # every run trains at the base run's effective learning rate, whatever its batch

    def overrides(self, value, base_lr: float) -> dict:
        """A run's overrides at `value`; base_lr is the base run's effective learning rate."""
        held = {"train.lr": base_lr} if self.hold_lr else {}
        return {**{key: value for key in VARIANT_KEYS[self.short]}, **self.fixed, **held}


MODEL_SETS = {s.experiment: s for s in (
    ModelSet("table1", "Table 1: the five models, sized to similar parameter counts", in_paper=True),
    ModelSet("compute_matched", "Table 1 at matched compute: each baseline sized to msga's FLOPs (not in the paper)",
             in_paper=False),
    ModelSet("ablation", "Ablation: msga against models that differ from it in one thing", in_paper=False),
    ModelSet("anchor", "Calibration anchor: a model with a well-known CIFAR-100 result, with its own recipe "
                       "(not in the paper)", in_paper=False),
)}

SWEEPS = {s.experiment: s for s in (
    Sweep("heads", "Attention heads", "heads", "heads", "attention heads", "Figure 2: attention heads vs Recall",
          "fig2_heads_recall.png", ("recall",), in_paper=True),
    Sweep("batch_size", "Batch size", "batch_size", "batch_size", "batch size (images per step)",
          "Figure 3 (not in the paper): batch size, learning rate scaled with it", "fig3_batch_size.png",
          HEADLINE, in_paper=False),
    Sweep("batch_size_fixed_lr", "Batch size at a fixed learning rate", "batch_size", "batch_size",
          "batch size (images per step)", "Figure 3b (not in the paper): batch size, learning rate held fixed",
          "fig3b_batch_size_fixed_lr.png", HEADLINE, in_paper=False, fixed={"train.lr_scaling": "none"},
          hold_lr=True),
    Sweep("noise", "Noise level", "sigma", "test_sigma", "Gaussian pixel noise sigma, train and test (pixel units)",
          "Figure 4 (not in the paper): noise in training and at test", "fig4_noise.png", HEADLINE, in_paper=False),
    Sweep("noise_test", "Test noise after clean training", "test_sigma", "test_sigma",
          "Gaussian pixel noise sigma at test only (pixel units)",
          "Figure 4b (not in the paper): clean training, noisy test", "fig4b_noise_test.png", HEADLINE, in_paper=False),
)}

TUNE = "tune"  # learning rates per model on a held-out validation split (train.validation)
# The report's order of the experiments.
EXPERIMENTS = ("table1", "compute_matched", "heads", "batch_size", "batch_size_fixed_lr", "noise", "noise_test",
               "ablation", "anchor", TUNE)


def paper_model(model: str, paper_models) -> str | None:
    """The paper's model that `model` stands for: itself, or the paper's model built by the same
    architecture (convnext_flops is the paper's CNN row at another size); None for neither."""
    paper_models = list(paper_models)
    if model in paper_models:
        return model
    builder = _builder(model)
    return next((m for m in paper_models if builder is not None and _builder(m) == builder), None)


def _builder(model: str) -> str | None:
    try:
        return model_entry(model).builder
    except KeyError:
        return None
