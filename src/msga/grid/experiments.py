"""The experiments of the grid: which compare models, which sweep a setting (the keys a variant of
a run may override are named with the run, in msga.grid.runs), and the models that play a role
in them (the paper's own, the ablation's halves and controls, the calibration anchor). The one
definition every other part (paths, the DAG, aggregation, figures, claims, the report) derives
from. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field

from msga.grid.metrics import HEADLINE
from msga.grid.runs import VARIANT_KEYS  # what a run's variant may override, named in its path
from msga.models import model_entry


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
    x: str  # the run-table column of its values (runs.COORDINATES)
    label: str  # axis label, with units
    title: str  # figure title in the report and in `dvc plots`
    figure: str  # file name of the figure under reports/figures/
    metrics: tuple[str, ...]  # the metrics the figure shows
    metric: str  # the metric its claim tests and `dvc plots` shows
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
    Sweep(experiment="heads", name="Attention heads", short="heads", x="heads", label="attention heads",
          title="Figure 2: attention heads vs Recall", figure="fig2_heads_recall.png", metrics=("recall",),
          metric="recall", in_paper=True),
    Sweep(experiment="batch_size", name="Batch size", short="batch_size", x="batch_size",
          label="batch size (images per step)",
          title="Figure 3 (not in the paper): batch size, learning rate scaled with it",
          figure="fig3_batch_size.png", metrics=HEADLINE, metric="acc", in_paper=False),
    Sweep(experiment="batch_size_fixed_lr", name="Batch size at a fixed learning rate", short="batch_size",
          x="batch_size", label="batch size (images per step)",
          title="Figure 3b (not in the paper): batch size, learning rate held fixed",
          figure="fig3b_batch_size_fixed_lr.png", metrics=HEADLINE, metric="acc", in_paper=False,
          fixed={"train.lr_scaling": "none"}, hold_lr=True),
    Sweep(experiment="noise", name="Noise level", short="sigma", x="test_sigma",
          label="Gaussian pixel noise sigma, train and test (pixel units)",
          title="Figure 4 (not in the paper): noise in training and at test", figure="fig4_noise.png",
          metrics=HEADLINE, metric="acc", in_paper=False),
    Sweep(experiment="noise_test", name="Test noise after clean training", short="test_sigma", x="test_sigma",
          label="Gaussian pixel noise sigma at test only (pixel units)",
          title="Figure 4b (not in the paper): clean training, noisy test", figure="fig4b_noise_test.png",
          metrics=HEADLINE, metric="acc", in_paper=False),
)}

TUNE = "tune"  # learning rates per model on a held-out validation split (train.validation)
# The report's order of the experiments.
EXPERIMENTS = ("table1", "compute_matched", "heads", "batch_size", "batch_size_fixed_lr", "noise", "noise_test",
               "ablation", "anchor", TUNE)

# ---------------------------------------------------------------- the models' roles

OURS = "msga"  # the paper's own model: Table 1's last row, the model every sweep varies
ABLATION_HALVES = ("msga_local", "msga_global")  # each keeps one of msga's two components, at lower cost
# Controls that differ from msga in one thing at near-equal cost -> (the component that thing is, the change):
# a difference from them is one of the component, not of size
CONTROLS = {
    "msga_single": ("multi-scale convolution", "one kernel size in as many branches"),
    "msga_noattn": ("global attention", "attention blocks replaced by local-mixing blocks of equal cost"),
}
# The anchor's literature value: CIFAR-100 top-1 of the model trained from scratch by its recipe,
# at the budget the source trained.
ANCHOR_REFERENCE = {"resnet18": {"acc": 0.756, "epochs": 200, "source": "weiaicunzai/pytorch-cifar100"}}
# Within this many points of top-1 the anchor passes. A margin this project chose, not one derived
# from a measured spread: the reference reports one run and no spread, and the anchor runs one
# seed by default. The report says so beside the verdict.
ANCHOR_TOLERANCE = 0.02


def enabled(params: dict, experiment: str) -> bool:
    """Whether params run `experiment`: it has a section under `experiments:` not switched off."""
    spec = params["experiments"].get(experiment)
    return spec is not None and spec.get("enabled", True)


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
