"""The report's sentences that are computed from the aggregates: each says what the numbers show."""

from __future__ import annotations

import pandas as pd

from msga import report


def test_the_ablation_names_its_cost_matched_and_its_confounded_comparisons():
    abl = pd.DataFrame({"model": ["msga", "msga_local", "msga_single"], "params_ratio": [1.0, 0.66, 1.0],
                        "flops_ratio": [1.0, 0.86, 0.99], "cost_matched": [True, False, True]})
    text = report.cost_matching_text(abl)
    matched, confounded = text.split("Not cost-matched")
    assert "msga_single (1.00× msga's params, 0.99× its FLOPs)" in matched and "msga_local" not in matched
    assert "msga_local (0.66× msga's params, 0.86× its FLOPs)" in confounded and "size" in confounded
    unknown = abl.assign(params_ratio=float("nan"))
    assert "not known" in report.cost_matching_text(unknown)


def test_the_compute_matched_block_reports_its_own_verdicts():
    claims = pd.DataFrame({"label": ["Table 1 order (ACC)", "Table 1 order at matched compute (AUC)",
                                     "Table 1 order at matched compute (ACC)", "Ours best at matched compute (ACC)"],
                           "verdict": ["held", "within noise", "not held", "held"]})
    text = report.matched_verdicts_text(claims)
    assert "Table 1 order: AUC within noise, ACC not held; Ours best: ACC held" in text
    assert "No claim" in report.matched_verdicts_text(claims.iloc[:1])


def test_inherited_learning_rates_are_named_and_the_runs_that_missed_them_flagged():
    inherited = [{"model": "msga_local", "source": "msga", "winner": 4e-3, "trained": 4e-3},
                 {"model": "msga_single", "source": "msga", "winner": 4e-3, "trained": 2e-3},
                 {"model": "convnext_flops", "source": "convnext", "winner": 1e-3, "trained": None}]
    text, off = report.inherited_text(inherited)
    assert "msga_local, msga_single at msga's; convnext_flops at convnext's" in text
    assert off == ["msga_single (winner 0.004, trained 0.002)", "convnext_flops (winner 0.001, trained not yet)"]
    assert report.inherited_text([]) == ("", [])


def test_the_anchor_section_states_where_its_recipe_departs_from_the_reference(tmp_path):
    import json

    (tmp_path / "context.json").write_text(json.dumps({"dataset": {"source": "cifar100"}}))
    pd.DataFrame([{"model": "resnet18", "acc_mean": 0.75, "acc_ci95": float("nan"), "epochs": 200, "n_seeds": 1,
                   "params": 11.2e6, "flops_per_image": 1.1e9}]).to_csv(tmp_path / "anchor.csv", index=False)
    html = report.anchor(tmp_path).data
    assert "Where the recipe differs from its reference" in html and "test set" in html
    assert "<span class='chip a-pass'>pass</span>" in html
