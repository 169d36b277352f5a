"""The experiments of the grid and what each sweep varies: the one definition every other part
(paths, the DAG, aggregation, figures, claims) derives from. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

from msga.metrics import HEADLINE

MODEL_SETS = ("table1", "ablation")  # experiments that compare models, each at its base configuration


@dataclass(frozen=True)
class Sweep:
    experiment: str  # its section under `experiments:` in params.yaml
    name: str  # what it varies, in a sentence: "Batch size influences ..."
    column: str  # its short name: the variant key in run paths (heads=4) and the column in tables
    key: str  # the dotted key of a run's configuration that it sets
    label: str  # axis label, with units
    title: str  # figure title in the report
    figure: str  # file name of the figure under reports/figures/
    metrics: tuple[str, ...]  # the metrics the figure shows
    in_paper: bool  # whether the paper shows this sweep as a figure (it names the others only)


SWEEPS = {sweep.experiment: sweep for sweep in (
    Sweep("heads", "Attention heads", "heads", "model.heads", "attention heads", "Figure 2: attention heads vs Recall",
          "fig2_heads_recall.png", ("recall",), in_paper=True),
    Sweep("batch_size", "Batch size", "batch_size", "train.batch_size", "batch size (images per step)",
          "Figure 3 (not in the paper): batch size", "fig3_batch_size.png", HEADLINE, in_paper=False),
    Sweep("noise", "Noise level", "sigma", "noise.sigma", "Gaussian pixel noise sigma (pixel units in [0, 1])",
          "Figure 4 (not in the paper): noise level", "fig4_noise.png", HEADLINE, in_paper=False),
)}
EXPERIMENTS = (*MODEL_SETS[:1], *SWEEPS, *MODEL_SETS[1:])  # table1, the sweeps, ablation: the report's order
VARIANT_KEYS = {sweep.column: sweep.key for sweep in SWEEPS.values()}  # what a run path may override
