"""The report's sentences that are computed from the aggregates: each says what the numbers show."""

from __future__ import annotations

import pandas as pd
import pytest

from msga.report import closing, comparisons, sections, training
from msga.results.aggregate import anchor as anchor_table


def test_the_ablation_names_its_cost_matched_and_its_confounded_comparisons():
    abl = pd.DataFrame({"model": ["msga", "msga_local", "msga_single"], "params_ratio": [1.0, 0.66, 1.0],
                        "flops_ratio": [1.0, 0.86, 0.99], "cost_matched": [True, False, True]})
    text = comparisons.cost_matching_text(abl)
    matched, confounded = text.split("Not cost-matched")
    assert "msga_single (1.00× msga's params, 0.99× its FLOPs)" in matched and "msga_local" not in matched
    assert "msga_local (0.66× msga's params, 0.86× its FLOPs)" in confounded and "size" in confounded
    unknown = abl.assign(params_ratio=float("nan"))
    assert "not known" in comparisons.cost_matching_text(unknown)


def test_the_compute_matched_block_reports_its_own_verdicts():
    claims = pd.DataFrame({"label": ["Table 1 order (ACC)", "Table 1 order at matched compute (AUC)",
                                     "Table 1 order at matched compute (ACC)", "Ours best at matched compute (ACC)"],
                           "kind": ["Table 1 order", "Table 1 order", "Table 1 order", "Ours best"],
                           "block": ["table1", "compute_matched", "compute_matched", "compute_matched"],
                           "metric": ["acc", "auc", "acc", "acc"],
                           "verdict": ["held", "within noise", "not held", "held"]})
    text = comparisons.matched_verdicts_text(claims)
    assert "Table 1 order: AUC within noise, ACC not held; Ours best: ACC held" in text
    assert "No claim" in comparisons.matched_verdicts_text(claims.iloc[:1])


def test_inherited_learning_rates_are_named_and_the_runs_that_missed_them_flagged():
    inherited = [{"model": "msga_local", "source": "msga", "winner": 4e-3, "trained": 4e-3},
                 {"model": "msga_single", "source": "msga", "winner": 4e-3, "trained": 2e-3},
                 {"model": "convnext_flops", "source": "convnext", "winner": 1e-3, "trained": None}]
    text, off = training.inherited_text(inherited)
    assert "msga_local, msga_single at msga's; convnext_flops at convnext's" in text
    assert off == ["msga_single (winner 0.004, trained 0.002)", "convnext_flops (winner 0.001, trained not yet)"]
    assert training.inherited_text([]) == ("", [])


def test_the_anchor_section_states_where_its_recipe_departs_from_the_reference(tmp_path):
    import json

    (tmp_path / "context.json").write_text(json.dumps({"dataset": {"source": "cifar100"}}))
    runs = pd.DataFrame([{"experiment": "anchor", "model": "resnet18", "seed": 0, "acc": 0.75, "top5": 0.9, "epochs": 200,
                          "batch_size": 128, "optimizer": "sgd", "variant": "base", "params": 11.2e6,
                          "flops_per_image": 1.1e9}])
    anchor_table(runs).to_csv(tmp_path / "anchor.csv", index=False)
    html = sections.anchor(tmp_path).data
    assert "Where the recipe differs from its reference" in html and "test set" in html
    assert "<span class='chip a-pass'>pass</span>" in html
    # the tolerance is said to be a choice, not dressed as a measured spread
    assert "a margin this project chose" in html and "about a point" not in html and "several points" not in html
    anchor_table(runs.assign(epochs=30)).to_csv(tmp_path / "anchor.csv", index=False)
    html = sections.anchor(tmp_path).data
    assert "not comparable" in html and "expected" not in html


PAPER_ROWS = pd.DataFrame({"model": ["mlp_mixer", "msga"], "paper_acc": [0.812, 0.889], "paper_auc": [0.873, 0.953]})


def test_the_auc_against_acc_caption_says_what_our_runs_imply_for_the_papers_pairs():
    # AUC far above the paper's at a lower ACC, as macro one-vs-rest AUC on 100 classes gives
    runs = pd.DataFrame({"acc": [0.55, 0.62, 0.70], "auc": [0.96, 0.97, 0.98]})
    text = closing.auc_acc_text(runs, PAPER_ROWS)
    assert "ACC 0.550 to 0.700 with AUC 0.960 to 0.980" in text and "AUC rises with ACC (Spearman rho 1.00)" in text
    assert "For 2 of the paper's 2 rows (mlp_mixer, msga) some run of ours has a lower ACC and yet a higher AUC" in text
    low = pd.DataFrame({"acc": [0.2, 0.3, 0.4], "auc": [0.6, 0.65, 0.7]})
    text = closing.auc_acc_text(low, PAPER_ROWS)
    assert "do not contradict" in text and "none reaches the paper's lowest ACC (0.812)" in text
    assert "No run has finished" in closing.auc_acc_text(pd.DataFrame(columns=["acc", "auc"]), PAPER_ROWS)


@pytest.mark.parametrize(("gaps", "words"), [
    ([0.01, 0.02], "gives Recall below ACC for every model and batch size (ACC − Recall +0.010 to +0.020)"),
    ([-0.01, 0.0], "does not give Recall below ACC"),
    ([0.01, -0.02], "gives Recall below ACC in 1 of 2 model and batch-size pairs"),
    ([float("nan"), float("nan")], "not computed on our runs"),
])
def test_the_per_batch_note_says_what_our_numbers_show(gaps, words):
    df = pd.DataFrame({"model": ["a"], "acc_minus_recall_batch64": [gaps[0]], "acc_minus_recall_batch128": [gaps[1]]})
    assert words in closing.per_batch_text(df, [64, 128])


def test_the_late_gain_of_each_model_comes_from_its_curves():
    curves = pd.DataFrame([{"model": m, "variant": "base", "seed": s, "epoch": e, "test_acc": a * e}
                           for m, a in (("msga", 0.02), ("convnext", 0.01)) for s in (0, 1) for e in range(1, 11)])
    text = closing.late_gain_text(curves, ["convnext", "msga"])
    assert "over the last 2 of 10 epochs, mean test ACC changed by msga +0.040, convnext +0.020" in text
    assert "No Table 1 run" in closing.late_gain_text(curves.iloc[0:0], ["msga"])


def test_the_limits_say_strong_augmentation_is_off_and_only_the_learning_rate_is_tuned_on_one_seed():
    runs = pd.DataFrame({"model": ["msga", "resnet18"], "variant": ["base", "base"],
                         "augment": ["random crop (pad 4) + horizontal flip",
                                     "random crop (pad 4) + horizontal flip + random rotation (±15°)"]})
    text = closing.augmentation_text(runs)
    assert "off by default" in text and "no run here used them" in text
    mixed = runs.assign(augment=["random crop (pad 4) + horizontal flip + mixup (alpha 0.8)", "none"])
    assert "these models trained with them: msga" in closing.augmentation_text(mixed)
    tune = pd.DataFrame({"model": ["msga", "msga", "convnext", "convnext"], "lr": [1e-3, 2e-3, 1e-3, 2e-3],
                         "val_acc_mean": [0.60, 0.605, 0.50, 0.60], "n_seeds": [1] * 4})
    t1 = pd.DataFrame({"model": ["msga", "convnext"], "acc_std": [0.01, 0.01]})
    text = closing.tuning_text(tune, t1)
    assert "only the peak learning rate is tuned (0.001, 0.002 per 256 images), on 1 seed" in text
    assert "below the seed-to-seed sd of Table 1's ACC for msga: that pick is within seed noise" in text
    assert "no tune run finished" in closing.tuning_text(tune.iloc[0:0], t1)
