"""The claims' verdicts on simulated run tables: error rates, clear effects, degenerate tables.

A simulated run is BASE + the configuration's true offset + a seed effect shared by every model
and sweep value run with that seed (the pairing) + independent run noise. The error rates are
measured over N_NULL tables drawn at once as arrays and fed to the same statistics `evaluate`
uses; `test_evaluate_agrees_with_the_array_statistics` checks that the run-table path reaches
the same verdicts. `measured_rates()` returns every rate the tests assert on, for the record:

    PYTHONPATH=src python -c "from tests.unit.test_claims import measured_rates as m; print(m())"
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from msga.results import claims
from msga.results import stats as run_stats
from msga.results.claims import HELD, NOT_HELD, NOT_TESTED, WITHIN_NOISE
from tests.conftest import REPO

PAPER = pd.read_csv(REPO / "workflow/resources/paper_table1.csv")
MODELS = list(PAPER["model"])  # the paper's claimed ranking, lowest first
HEADS = [1, 2, 4, 6, 8, 10, 12]
BATCH_SIZES = [32, 64, 128, 256, 512]
SIGMAS = [0.0, 0.05, 0.1, 0.2, 0.3]
ABLATION = ["msga_local", "msga_global", "msga"]  # the halves first: the claim is msga above both
CONTROLS = ["msga_single", "msga_noattn"]  # each against msga at near-equal cost
ABLATION_RUNS = [*ABLATION, *CONTROLS]  # the ablation experiment's models, in simulate_runs' offset order
MATCHED = ["mlp_mixer_flops", "convnext_flops", "cnn_lstm_flops", "crossvit_flops", "msga"]  # the rows at msga's FLOPs
# (params, FLOPs per image) as params.yaml sizes them: the halves cost less, the controls the same
COSTS = {"msga": (3.11e6, 9.94e8), "msga_local": (2.05e6, 8.5e8), "msga_global": (2.19e6, 5.8e8),
         "msga_single": (3.10e6, 9.89e8), "msga_noattn": (3.12e6, 9.87e8)}
SEEDS = (0, 1, 2)

BASE = 0.70
SEED_SD = 0.010  # seed-to-seed variation shared by everything run with the seed
RUN_SD = 0.005  # what is left to each run
N_NULL = 4_000  # tables per simulated rate: cheap as arrays, and a 5% rate is known to +-0.7 points
BOUND = 0.07  # the most a nominal 5% rate may show: 5.8 binomial sd above 5% at N_NULL draws
CLEAR_STEP = 8 * RUN_SD  # a clear effect: 5.7 sd of a paired difference, 3.6 sd of a run
TINY_STEP = 0.2 * RUN_SD

# 4 metrics x (ordering, best) x (Table 1, matched compute); 4 heads claims; 3 sweeps; the ablation and 2 controls
N_CLAIMS = 4 * 2 * 2 + 4 + 3 + 3
ADJACENT = [(i, i + 1) for i in range(len(MODELS) - 1)]
EVERY_PAIR = [(i, j) for i in range(len(MODELS)) for j in range(i + 1, len(MODELS))]
OURS_ABOVE = [(i, len(MODELS) - 1) for i in range(len(MODELS) - 1)]
ABLATION_PAIRS = [(0, 2), (1, 2)]
PEAK = HEADS.index(8)
PEAK_PAIRS = [(HEADS.index(h), PEAK) for h in HEADS if h != 8]
MANY_PAIRS = [(HEADS.index(10), PEAK), (HEADS.index(12), PEAK)]
FEW_PAIRS = [(HEADS.index(1), PEAK), (HEADS.index(2), PEAK)]


# ---------------------------------------------------------------- simulation helpers


def draw(rng, offsets, tables: int, seeds: int = len(SEEDS), seed_sd=SEED_SD, run_sd=RUN_SD) -> np.ndarray:
    """(tables, groups, seeds) metric values: each group's offset, a shared seed effect, run noise."""
    offsets = np.asarray(offsets, dtype=float)
    shared = rng.normal(0.0, seed_sd, (tables, 1, seeds))
    return BASE + offsets[None, :, None] + shared + rng.normal(0.0, run_sd, (tables, len(offsets), seeds))


def steps(step: float, groups: int) -> np.ndarray:
    return step * np.arange(groups)


def simulate_runs(rng, seeds=SEEDS, table1=None, heads=None, batch=None, noise=None, ablation=None,
                  compute=None, noise_test=None, seed_sd=SEED_SD, run_sd=RUN_SD) -> pd.DataFrame:
    """A run table as the pipeline writes it; arguments are each experiment's true offsets
    (ablation: in ABLATION_RUNS' order; compute: in MATCHED's)."""
    shared = dict(zip(seeds, rng.normal(0.0, seed_sd, len(seeds))))
    default = {"variant": "base", "heads": 8, "batch_size": 256, "test_sigma": 0.0}
    layouts = [
        ("table1", "model", MODELS, table1),
        ("heads", "heads", HEADS, heads),
        ("batch_size", "batch_size", BATCH_SIZES, batch),
        ("noise", "test_sigma", SIGMAS, noise),
        ("noise_test", "test_sigma", SIGMAS, noise_test),
        ("ablation", "model", ABLATION_RUNS, ablation),
        ("compute_matched", "model", MATCHED, compute),
    ]
    rows = []
    for experiment, column, groups, offsets in layouts:
        offsets = np.zeros(len(groups)) if offsets is None else np.asarray(offsets, dtype=float)
        for group, offset in zip(groups, offsets):
            for seed in seeds:
                row = {**default, "experiment": experiment, "model": "msga", "seed": seed, column: group}
                row["params"], row["flops_per_image"] = COSTS.get(row["model"], (1e6, 1e8))
                for metric in claims.METRICS:
                    row[metric] = BASE + offset + shared[seed] + rng.normal(0.0, run_sd)
                rows.append(row)
    return pd.DataFrame(rows)


def by_label(verdicts) -> dict[str, claims.Verdict]:
    return {v.label: v for v in verdicts}


def rate(verdicts: np.ndarray, kind: str) -> float:
    return float(np.mean(verdicts == kind))


def share(result, kind: str) -> float:
    """The share of simulated tables whose verdict is kind."""
    return rate(result.verdict, kind)


@lru_cache(maxsize=1)
def measured_rates(tables: int = N_NULL) -> dict[str, float]:
    """Every simulated error rate and power the tests check, from one seeded generator."""
    rng = np.random.default_rng(20_240_601)
    out = {}
    # no true effect anywhere: a "held" is false
    for name, groups in (("heads", len(HEADS)), ("batch size", len(BATCH_SIZES)), ("noise", len(SIGMAS))):
        out[f"null: {name} influence held"] = share(run_stats.block_anova(draw(rng, np.zeros(groups), tables)), HELD)
    table1 = draw(rng, np.zeros(len(MODELS)), tables)
    out["null: ordering held"] = share(run_stats.directional_test(table1, ADJACENT, EVERY_PAIR), HELD)
    out["null: ours best held"] = share(run_stats.directional_test(table1, OURS_ABOVE), HELD)
    out["null: ablation held"] = share(run_stats.directional_test(draw(rng, np.zeros(3), tables), ABLATION_PAIRS), HELD)
    # the fewest seeds a claim is tested with: the level must hold there too
    out["null: 2 seeds, heads influence held"] = share(
        run_stats.block_anova(draw(rng, np.zeros(len(HEADS)), tables, seeds=2)), HELD)
    out["null: 2 seeds, ablation held"] = share(
        run_stats.directional_test(draw(rng, np.zeros(3), tables, seeds=2), ABLATION_PAIRS), HELD)
    heads = draw(rng, np.zeros(len(HEADS)), tables)
    for name, pairs in (("peak at 8", PEAK_PAIRS), ("lower at 10, 12", MANY_PAIRS), ("lower at 1, 2", FEW_PAIRS)):
        out[f"null: {name} held"] = share(run_stats.directional_test(heads, pairs), HELD)
    # a true claim: a "not held" is false; no effect is the boundary, the hardest case
    for name, step in (("no effect", 0.0), ("true by 0.5 run sd", 0.5 * RUN_SD)):
        values = draw(rng, steps(step, len(MODELS)), tables)
        ordering = run_stats.directional_test(values, ADJACENT, EVERY_PAIR)
        out[f"true ({name}): ordering not held"] = share(ordering, NOT_HELD)
        out[f"true ({name}): ours best not held"] = share(run_stats.directional_test(values, OURS_ABOVE), NOT_HELD)
        values = draw(rng, [0.0, 0.0, step], tables)
        out[f"true ({name}): ablation not held"] = share(run_stats.directional_test(values, ABLATION_PAIRS), NOT_HELD)
    # clear, reversed and tiny effects with 3 seeds
    for name, step in (("clear", CLEAR_STEP), ("reversed", -CLEAR_STEP), ("tiny", TINY_STEP)):
        verdicts = run_stats.directional_test(draw(rng, steps(step, len(MODELS)), tables), ADJACENT, EVERY_PAIR).verdict
        for kind in (HELD, NOT_HELD, WITHIN_NOISE):
            out[f"{name} ordering: {kind}"] = rate(verdicts, kind)
    peaked = -0.5 * CLEAR_STEP * np.abs(np.arange(len(HEADS)) - PEAK)
    out["clear peak at 8: influence held"] = share(run_stats.block_anova(draw(rng, peaked, tables)), HELD)
    # recorded, not asserted: the ANOVA assumes an equal run spread at every value, which three
    # seeds cannot check; this is how far its level moves when one value is three times noisier
    spreads = np.full(len(HEADS), RUN_SD)
    spreads[0] *= 3
    uneven = draw(rng, np.zeros(len(HEADS)), tables, run_sd=spreads[None, :, None])
    out["unequal spread (one value 3x): heads influence held"] = share(run_stats.block_anova(uneven), HELD)
    out["unequal spread (one value 3x): Friedman check p < alpha"] = float(np.mean(
        [run_stats.friedman_p(table) < claims.ALPHA for table in uneven[:200]]))
    return out


# ---------------------------------------------------------------- error rates


@pytest.mark.parametrize("claim", ["heads influence", "batch size influence", "noise influence", "ordering",
                                   "ours best", "ablation", "peak at 8", "lower at 10, 12", "lower at 1, 2",
                                   "2 seeds, heads influence", "2 seeds, ablation"])
def test_no_true_effect_is_rarely_held(claim):
    assert measured_rates()[f"null: {claim} held"] <= BOUND


# The least favourable null of a claim made of several differences: one of them exactly 0, every
# other far on the claimed side (APART: 20 run sd, which three paired seeds resolve nearly always).
# The intersection-union test is held only if every interval clears 0, so its false "held" rate
# there is that of the one tied difference's one-sided test, alpha / 2 = 2.5%, times the near-1
# power of the rest: the most it can approach anywhere in the null. (With every group equal, as
# above, all differences must clear 0 by chance at once, which is far rarer: a bug that checked
# only one difference, or only some, would pass there and be caught here, where it says "held"
# about as often as the separated pairs pass: 100% of draws.) N_LEAST draws per configuration: at
# a true rate of 2-2.5% a rate's sd is 0.6-0.7 points, so BOUND is over 6 sd above it and the
# floor of 0.5%, which shows the configuration does reach the boundary, over 2 sd below it.
N_LEAST = 500
APART = 20 * RUN_SD
LEAST_FAVOURABLE = {  # claim -> (groups, claimed pairs, opposing pairs or None)
    "ordering": (len(MODELS), ADJACENT, EVERY_PAIR),
    "ours best": (len(MODELS), OURS_ABOVE, None),
    "ablation": (3, ABLATION_PAIRS, None),
    "peak at 8": (len(HEADS), PEAK_PAIRS, None),
}


def least_favourable_offsets(groups: int, pairs, tied: int) -> np.ndarray:
    """Offsets that tie claimed pair `tied` and put every other claimed pair APART on the claimed
    side. The claims are chains (each group above the one before) or stars (one group above all)."""
    if all(high == low + 1 for low, high in pairs):  # a chain: steps of APART, the tied one flat
        steps = np.full(groups - 1, APART)
        steps[tied] = 0.0
        return np.concatenate([[0.0], np.cumsum(steps)])
    (top,) = {high for _, high in pairs}  # a star: the top above every other, the tied one level with it
    offsets = np.zeros(groups)
    offsets[top] = offsets[pairs[tied][0]] = APART
    return offsets


@pytest.mark.parametrize("claim", list(LEAST_FAVOURABLE))
def test_one_tied_difference_among_clear_ones_is_rarely_held(claim):
    groups, pairs, opposing = LEAST_FAVOURABLE[claim]
    rng = np.random.default_rng(20_240_602)
    for tied in range(len(pairs)):
        offsets = least_favourable_offsets(groups, pairs, tied)
        result = run_stats.directional_test(draw(rng, offsets, N_LEAST), pairs, opposing)
        tied_share = float(np.mean(result.claimed.ci_low[:, tied] > 0))
        assert 0.005 <= share(result, HELD) <= BOUND, (claim, tied, offsets)
        assert share(result, HELD) <= tied_share  # held needs the tied pair to pass, and more
        others = np.delete(result.claimed.ci_low, tied, axis=1) > 0
        assert others.all(axis=1).mean() >= 0.8, (claim, tied)  # the rest are clear: the null is least favourable


def test_the_sweep_anova_keeps_its_nominal_level():
    # not only bounded: an exact test lands near alpha (sd 0.34 points at N_NULL draws)
    for name in ("heads", "batch size", "noise"):
        assert 0.03 <= measured_rates()[f"null: {name} influence held"] <= BOUND


@pytest.mark.parametrize("claim", ["ordering", "ours best", "ablation"])
@pytest.mark.parametrize("truth", ["no effect", "true by 0.5 run sd"])
def test_a_true_claim_is_rarely_not_held(claim, truth):
    assert measured_rates()[f"true ({truth}): {claim} not held"] <= BOUND


def test_clear_reversed_and_tiny_effects_are_told_apart():
    rates = measured_rates()
    assert rates[f"clear ordering: {HELD}"] >= 0.90
    assert rates[f"reversed ordering: {NOT_HELD}"] >= 0.99
    assert rates[f"tiny ordering: {WITHIN_NOISE}"] >= 0.95
    assert rates["clear peak at 8: influence held"] >= 0.99


# ---------------------------------------------------------------- verdicts on one run table


def test_a_clear_ordering_is_held_and_a_reversed_one_not_held():
    rng = np.random.default_rng(1)
    clear = simulate_runs(rng, table1=steps(CLEAR_STEP * 1.5, len(MODELS)))
    verdicts = by_label(claims.evaluate(clear, PAPER))
    for metric in ("AUC", "ACC", "Precision", "Recall"):
        assert verdicts[f"Table 1 order ({metric})"].verdict == HELD
        assert verdicts[f"Ours best ({metric})"].verdict == HELD
    reversed_ = simulate_runs(rng, table1=steps(-CLEAR_STEP * 1.5, len(MODELS)))
    for metric in ("AUC", "ACC", "Precision", "Recall"):
        verdict = by_label(claims.evaluate(reversed_, PAPER))[f"Table 1 order ({metric})"]
        assert verdict.verdict == NOT_HELD
        assert verdict.estimate < 0 and verdict.p_value < claims.ALPHA and "reversed" in verdict.evidence


def test_the_ordering_comes_from_the_paper_table():
    runs = simulate_runs(np.random.default_rng(2), table1=steps(CLEAR_STEP * 1.5, len(MODELS)))
    upside_down = PAPER.iloc[::-1].reset_index(drop=True)
    verdicts = by_label(claims.evaluate(runs, upside_down))
    assert verdicts["Table 1 order (ACC)"].verdict == NOT_HELD
    assert verdicts["Ours best (ACC)"].verdict == NOT_HELD  # mlp_mixer is "ours" now, and the worst
    assert "Ours < Transformer" in verdicts["Table 1 order (ACC)"].claim


def test_a_tiny_effect_with_three_seeds_is_within_noise():
    runs = simulate_runs(np.random.default_rng(3), table1=steps(TINY_STEP, len(MODELS)),
                         ablation=[0.0, 0.0, TINY_STEP, 0.0, 0.0])
    verdicts = by_label(claims.evaluate(runs, PAPER))
    for label in ("Table 1 order (ACC)", "Ours best (ACC)", "ablation: full beats both halves"):
        assert verdicts[label].verdict == WITHIN_NOISE
        assert verdicts[label].min_detectable > TINY_STEP  # says why: the seeds cannot see it


def test_figure2_shape_is_held_when_clear():
    peaked = -CLEAR_STEP * np.abs(np.arange(len(HEADS)) - PEAK)
    verdicts = by_label(claims.evaluate(simulate_runs(np.random.default_rng(4), heads=peaked), PAPER))
    for label in ("heads influence Recall", "Recall peak at 8 heads", "Recall lower at 10, 12 heads",
                  "Recall lower at 1, 2 heads"):
        assert verdicts[label].verdict == HELD, verdicts[label].evidence


def test_evaluate_agrees_with_the_array_statistics():
    """The run-table path reaches the verdicts the simulated rates were measured on."""
    rng = np.random.default_rng(5)
    for _ in range(8):
        runs = simulate_runs(rng, table1=steps(2 * RUN_SD, len(MODELS)), heads=rng.normal(0, 2 * RUN_SD, len(HEADS)),
                             batch=rng.normal(0, 2 * RUN_SD, len(BATCH_SIZES)),
                             ablation=[0.0, 0.0, 3 * RUN_SD, 0.0, 2 * RUN_SD], compute=steps(RUN_SD, len(MATCHED)))
        verdicts = by_label(claims.evaluate(runs, PAPER))

        def grid(experiment, column, groups, metric):
            part = runs[runs.experiment == experiment]
            return part.pivot(index=column, columns="seed", values=metric).loc[groups].to_numpy()

        expected = {
            "Table 1 order (ACC)":
                run_stats.directional_test(grid("table1", "model", MODELS, "acc"), ADJACENT, EVERY_PAIR),
            "ablation: full beats both halves":
                run_stats.directional_test(grid("ablation", "model", ABLATION, "acc"), ABLATION_PAIRS),
            "Recall peak at 8 heads": run_stats.directional_test(grid("heads", "heads", HEADS, "recall"), PEAK_PAIRS),
            "heads influence Recall": run_stats.block_anova(grid("heads", "heads", HEADS, "recall")),
            "batch size influences ACC": run_stats.block_anova(grid("batch_size", "batch_size", BATCH_SIZES, "acc")),
            "Table 1 order at matched compute (ACC)":
                run_stats.directional_test(grid("compute_matched", "model", MATCHED, "acc"), ADJACENT, EVERY_PAIR),
            "ablation at equal cost: msga beats msga_noattn":
                run_stats.directional_test(grid("ablation", "model", ["msga_noattn", "msga"], "acc"), [(0, 1)]),
        }
        for label, result in expected.items():
            assert verdicts[label].verdict == str(result.verdict[()]), label


def test_cost_matched_controls_get_verdicts_of_their_own_with_their_costs():
    clear = 1.5 * CLEAR_STEP
    # msga above both halves and above msga_noattn, level with msga_single
    runs = simulate_runs(np.random.default_rng(30), ablation=[0.0, 0.0, clear, clear, 0.0])
    verdicts = by_label(claims.evaluate(runs, PAPER))
    halves = verdicts["ablation: full beats both halves"]
    single = verdicts["ablation at equal cost: msga beats msga_single"]
    noattn = verdicts["ablation at equal cost: msga beats msga_noattn"]
    assert halves.verdict == HELD and noattn.verdict == HELD and single.verdict == WITHIN_NOISE
    assert "Multi-scale convolution matters at equal cost" in single.claim
    assert "Global attention matters at equal cost" in noattn.claim
    assert "size is confounded" in halves.claim
    assert "msga_local: 0.66x msga's params, 0.86x its FLOPs (not cost-matched" in halves.evidence
    assert "msga_single: 1.00x msga's params, 0.99x its FLOPs (cost-matched)" in single.evidence
    # a control above msga: a significant reversal
    reversed_ = simulate_runs(np.random.default_rng(31), ablation=[0.0, 0.0, 0.0, 0.0, clear])
    control = by_label(claims.evaluate(reversed_, PAPER))["ablation at equal cost: msga beats msga_noattn"]
    assert control.verdict == NOT_HELD and control.estimate < 0
    # a control that never ran is not tested, and says which
    gone = runs[~((runs.experiment == "ablation") & (runs.model == "msga_single"))]
    missing = by_label(claims.evaluate(gone, PAPER))["ablation at equal cost: msga beats msga_single"]
    assert missing.verdict == NOT_TESTED and "msga_single" in missing.reason


@pytest.mark.parametrize(("params", "flops", "matched"), [
    (1.0, 0.99, True), (0.66, 0.86, False), (0.70, 0.58, False), (1.15, 0.85, True), (1.16, 1.0, False),
    (1.0, float("nan"), False)])
def test_costs_are_matched_when_both_are_within_the_tolerance(params, flops, matched):
    assert claims.cost_matched(params, flops) is matched


def test_the_compute_matched_block_gets_its_own_ordering_and_best():
    clear = 1.5 * CLEAR_STEP
    # the paper's order holds at matched parameters and is reversed at matched compute
    runs = simulate_runs(np.random.default_rng(32), table1=steps(clear, len(MODELS)),
                         compute=steps(-clear, len(MATCHED)))
    verdicts = by_label(claims.evaluate(runs, PAPER))
    for metric in ("AUC", "ACC", "Precision", "Recall"):
        assert verdicts[f"Table 1 order ({metric})"].verdict == HELD
        assert verdicts[f"Ours best ({metric})"].verdict == HELD
        matched = verdicts[f"Table 1 order at matched compute ({metric})"]
        assert matched.verdict == NOT_HELD and "convnext_flops" in matched.evidence
        assert "mlp_mixer_flops, convnext_flops, cnn_lstm_flops, crossvit_flops in the paper's rows" in matched.claim
        assert verdicts[f"Ours best at matched compute ({metric})"].verdict == NOT_HELD
    # the same at matched compute as at matched parameters
    same = by_label(claims.evaluate(simulate_runs(np.random.default_rng(33), compute=steps(clear, len(MATCHED))),
                                    PAPER))
    assert same["Table 1 order at matched compute (ACC)"].verdict == HELD
    assert same["Ours best at matched compute (ACC)"].verdict == HELD
    # a row no compute-matched model stands for leaves the block untested, and names the row
    gone = runs[~((runs.experiment == "compute_matched") & (runs.model == "convnext_flops"))]
    untested = by_label(claims.evaluate(gone, PAPER))["Ours best at matched compute (ACC)"]
    assert untested.verdict == NOT_TESTED and "convnext" in untested.reason
    assert by_label(claims.evaluate(gone, PAPER))["Ours best (ACC)"].verdict == HELD  # Table 1 is unaffected


def test_two_models_standing_for_one_row_leave_the_block_untested(monkeypatch):
    runs = simulate_runs(np.random.default_rng(34))
    twin = runs[(runs.experiment == "compute_matched") & (runs.model == "convnext_flops")].assign(model="convnext_big")
    real = claims.paper_model
    monkeypatch.setattr(claims, "paper_model", lambda m, models: "convnext" if m == "convnext_big" else real(m, models))
    verdict = by_label(claims.evaluate(pd.concat([runs, twin]), PAPER))["Table 1 order at matched compute (ACC)"]
    assert verdict.verdict == NOT_TESTED and "convnext_flops and convnext_big both stand for convnext" in verdict.reason


def test_clean_training_with_a_noisy_test_is_tested_for_influence():
    falling = steps(-CLEAR_STEP, len(SIGMAS))
    verdicts = by_label(claims.evaluate(simulate_runs(np.random.default_rng(35), noise_test=falling), PAPER))
    arm = verdicts["test noise after clean training influences ACC"]
    assert arm.verdict == HELD and "at test only" in arm.claim
    assert verdicts["noise level influences ACC"].verdict == WITHIN_NOISE  # the other arm has no effect here


# ---------------------------------------------------------------- degenerate and partial tables


def test_one_seed_is_not_tested_with_the_reason():
    verdicts = claims.evaluate(simulate_runs(np.random.default_rng(6), seeds=(0,)), PAPER)
    assert len(verdicts) == N_CLAIMS
    for v in verdicts:
        assert v.verdict == NOT_TESTED and "1 seed only" in v.reason, v


@pytest.mark.parametrize("runs", [pd.DataFrame(), pd.DataFrame(columns=["experiment", "model", "seed", "acc"]), None])
def test_an_empty_table_is_not_tested(runs):
    verdicts = claims.evaluate(runs, PAPER)
    assert len(verdicts) == N_CLAIMS and {v.verdict for v in verdicts} == {NOT_TESTED}
    assert all(v.reason for v in verdicts)
    assert "not tested" in claims.summary(verdicts)


def test_a_missing_model_leaves_table1_untested_and_the_rest_tested():
    runs = simulate_runs(np.random.default_rng(7))
    runs = runs[~((runs.experiment == "table1") & (runs.model == "crossvit"))]
    verdicts = claims.evaluate(runs, PAPER)
    for v in verdicts:
        if v.label.startswith(("Table 1", "Ours best")) and "matched compute" not in v.label:
            assert v.verdict == NOT_TESTED and "crossvit" in v.reason
        else:
            assert v.verdict != NOT_TESTED, v


def test_a_missing_experiment_or_column_is_not_tested():
    runs = simulate_runs(np.random.default_rng(8))
    verdicts = by_label(claims.evaluate(runs[runs.experiment != "heads"], PAPER))
    assert verdicts["heads influence Recall"].verdict == NOT_TESTED
    assert "no 'heads' runs" in verdicts["Recall peak at 8 heads"].reason
    assert verdicts["batch size influences ACC"].verdict != NOT_TESTED
    no_sigma = by_label(claims.evaluate(runs.drop(columns="test_sigma"), PAPER))
    assert "test_sigma" in no_sigma["noise level influences ACC"].reason
    assert no_sigma["ablation: full beats both halves"].verdict != NOT_TESTED


def test_head_counts_missing_from_the_sweep_are_named():
    runs = simulate_runs(np.random.default_rng(9))
    without = by_label(claims.evaluate(runs[~runs.heads.isin([8]) | (runs.experiment != "heads")], PAPER))
    assert without["heads influence Recall"].verdict != NOT_TESTED  # still six values
    for label in ("Recall peak at 8 heads", "Recall lower at 10, 12 heads", "Recall lower at 1, 2 heads"):
        assert without[label].verdict == NOT_TESTED and "8" in without[label].reason
    no_one = by_label(claims.evaluate(runs[(runs.heads != 1) | (runs.experiment != "heads")], PAPER))
    few = no_one["Recall lower at 1, 2 heads"]
    assert few.verdict == NOT_TESTED and "heads = 1 " in few.reason
    assert no_one["Recall peak at 8 heads"].verdict != NOT_TESTED  # 8 against the counts that ran


def test_a_partly_missing_grid_is_tested_on_the_seeds_it_has():
    runs = simulate_runs(np.random.default_rng(10))
    gone = (runs.seed == 2) & (((runs.experiment == "table1") & (runs.model == "crossvit"))
                               | ((runs.experiment == "heads") & (runs.heads == 12)))
    verdicts = by_label(claims.evaluate(runs[~gone], PAPER))
    order = verdicts["Table 1 order (ACC)"]
    assert order.verdict != NOT_TESTED and order.n_seeds == 2 and "crossvit seed 2" in order.evidence
    sweep = verdicts["heads influence Recall"]
    assert sweep.verdict != NOT_TESTED and sweep.n_seeds == 2 and "seeds left out" in sweep.evidence


def test_nan_metrics_are_left_out_and_counted():
    runs = simulate_runs(np.random.default_rng(11))
    runs.loc[(runs.experiment == "ablation") & (runs.model == "msga_local") & (runs.seed == 0), "acc"] = np.nan
    verdict = by_label(claims.evaluate(runs, PAPER))["ablation: full beats both halves"]
    assert verdict.verdict != NOT_TESTED and verdict.n_seeds == 2 and "NaN" in verdict.evidence
    runs.loc[(runs.experiment == "ablation") & (runs.model == "msga_local"), "acc"] = np.nan
    verdict = by_label(claims.evaluate(runs, PAPER))["ablation: full beats both halves"]
    assert verdict.verdict == NOT_TESTED and "msga_local" in verdict.reason


def test_identical_runs_give_no_warning_and_no_verdict_from_zero_variance():
    runs = simulate_runs(np.random.default_rng(12), run_sd=0.0)  # every model equal within a seed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdicts = claims.evaluate(runs, PAPER)
    for v in verdicts:
        assert v.verdict == WITHIN_NOISE, v
        assert np.isfinite(v.min_detectable) and v.min_detectable > 0
    # a constant difference with zero spread is consistent evidence, not a division by zero
    shifted = simulate_runs(np.random.default_rng(12), run_sd=0.0, ablation=[0.0, 0.0, 0.01, 0.0, 0.0])
    assert by_label(claims.evaluate(shifted, PAPER))["ablation: full beats both halves"].verdict == HELD


def test_no_paper_table_leaves_table1_untested():
    runs = simulate_runs(np.random.default_rng(13))
    for paper in (None, PAPER.iloc[0:0]):
        verdicts = by_label(claims.evaluate(runs, paper))
        assert verdicts["Table 1 order (ACC)"].verdict == NOT_TESTED
        assert "paper" in verdicts["Ours best (AUC)"].reason


# ---------------------------------------------------------------- the statistics themselves


def test_paired_interval_matches_scipy():
    diffs = np.array([0.012, 0.004, 0.009, 0.015])
    result = run_stats.paired_stats(diffs)
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert result.ci_low == pytest.approx(low) and result.ci_high == pytest.approx(high)
    assert result.p_above == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)


def test_block_anova_with_two_values_is_the_paired_t_test():
    values = np.random.default_rng(14).normal(0.7, 0.01, (2, 5))
    assert run_stats.block_anova(values).p_value == pytest.approx(stats.ttest_rel(values[0], values[1]).pvalue)


def test_holm_adjustment():
    assert run_stats.holm_adjust(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


def test_minimum_detectable_effects_have_the_stated_power():
    rng = np.random.default_rng(15)
    sd, n = 0.01, 3
    unit = np.array([-1.0, 0.0, 1.0])  # sample sd exactly 1
    mde = float(run_stats.paired_stats(unit * sd).min_detectable)
    power = np.mean(run_stats.paired_stats(rng.normal(mde, sd, (4000, n))).ci_low > 0)
    assert power == pytest.approx(claims.POWER, abs=0.03)
    k, sigma = 7, 0.005
    df_error = (k - 1) * (n - 1)
    spread = np.sqrt(2 * run_stats._anova_noncentrality(k - 1, df_error) * sigma**2 / n)
    layout = np.zeros(k)
    layout[0], layout[-1] = -spread / 2, spread / 2  # the least favourable layout: two apart, rest midway
    values = layout[None, :, None] + rng.normal(0, 0.01, (4000, 1, n)) + rng.normal(0, sigma, (4000, k, n))
    assert np.mean(run_stats.block_anova(values).verdict == HELD) == pytest.approx(claims.POWER, abs=0.03)


# ---------------------------------------------------------------- output


def test_output_shapes_and_stable_order(capsys):
    runs = simulate_runs(np.random.default_rng(16), table1=steps(CLEAR_STEP * 1.5, len(MODELS)))
    first, second = claims.evaluate(runs, PAPER), claims.evaluate(runs, PAPER)
    assert capsys.readouterr().out == ""
    frame = claims.to_frame(first)
    assert list(frame.columns)[:3] == ["label", "claim", "verdict"]
    assert {"method", "alpha", "estimate", "ci_low", "ci_high", "p_value", "n_seeds", "min_detectable",
            "evidence"} <= set(frame.columns)
    pd.testing.assert_frame_equal(frame, claims.to_frame(second))  # deterministic, Friedman included
    assert [v.label for v in first][:2] == ["Table 1 order (AUC)", "Table 1 order (ACC)"]
    assert set(frame["verdict"]) <= {HELD, NOT_HELD, WITHIN_NOISE, NOT_TESTED}
    assert (frame["alpha"] == claims.ALPHA).all()
    tested = frame[frame.verdict != NOT_TESTED]
    assert (tested["n_seeds"] >= claims.MIN_SEEDS).all() and np.isfinite(tested["min_detectable"]).all()
    assert claims.to_frame([]).columns.tolist() == frame.columns.tolist()


def test_summary_is_one_paragraph_from_the_verdicts():
    runs = simulate_runs(np.random.default_rng(17), table1=steps(CLEAR_STEP * 1.5, len(MODELS)))
    runs = runs[runs.experiment != "noise"]
    verdicts = claims.evaluate(runs, PAPER)
    text = claims.summary(verdicts)
    assert "\n" not in text
    held = sum(v.verdict == HELD for v in verdicts)
    assert f"{held} held" in text and "Table 1 order (AUC, ACC, Precision, Recall)" in text
    assert "noise level influences ACC: no 'noise' runs in the table" in text
    assert claims.summary([]) == "No claims were evaluated."


def test_methods_state_the_tests_and_alpha():
    for phrase in ("alpha = 0.05", "paired", "intersection-union", "Holm", "randomized-block ANOVA",
                   "Friedman", "80% power", f"at least {claims.MIN_SEEDS} seeds"):
        assert phrase in claims.METHODS


def test_a_reversal_the_pair_correction_does_not_confirm_is_named_in_the_evidence():
    # two seeds, no noise: each difference is exact and its sd floored at RESOLUTION, so the
    # Transformer's 0.002 below the LSTM has p ~ 0.02 on its own, ~ 0.2 after Holm over 10 pairs
    runs = simulate_runs(np.random.default_rng(6), seeds=(0, 1), table1=np.array([0.0, 0.05, 0.10, 0.098, 0.15]),
                         seed_sd=0.0, run_sd=0.0)
    verdict = by_label(claims.evaluate(runs, PAPER))["Table 1 order (ACC)"]
    assert verdict.verdict == WITHIN_NOISE
    assert "crossvit - cnn_lstm is below 0 on its own, but its Holm p over the 10 pairs is" in verdict.evidence
