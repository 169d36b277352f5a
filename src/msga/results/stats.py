"""Statistics of the run table: t-intervals and summaries over seeds, and the tests the claims are
decided by (paired t-intervals, the intersection-union test with Holm's correction, the
randomized-block ANOVA, the permutation Friedman test).

The array functions (`paired_stats`, `directional_test`, `block_anova`) work on any leading batch
shape, so their error rates can be simulated over thousands of tables at once; msga.results.claims
feeds them one run table at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, stats

from msga.grid.metrics import HEADLINE

ALPHA = 0.05  # every test's level
POWER = 0.80  # for the minimum detectable effect
MIN_SEEDS = 2  # a t-interval needs one degree of freedom; see METHODS for why not more
# Spreads below one test image of CIFAR-100's 10,000 are quantisation, not a measured spread:
# flooring the standard deviation there only widens intervals, and keeps identical runs from
# giving a zero-width interval.
RESOLUTION = 1e-4
FRIEDMAN_DRAWS = 20_000  # within-seed permutations for the Friedman p-value

HELD, NOT_HELD, WITHIN_NOISE, NOT_TESTED = "held", "not held", "within noise", "not tested"


# ---------------------------------------------------------------- summaries over seeds


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean; NaN with fewer than two seeds."""
    n = values.count()
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def summarize(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, std and 95% interval over seeds of the four metrics, per value of `by`."""
    columns = [by, "n_seeds", *(f"{m}_{s}" for m in HEADLINE for s in ("mean", "std", "ci95"))]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for key, group in runs.groupby(by, sort=False):
        row = {by: key, "n_seeds": int(group["seed"].nunique())}
        for m in HEADLINE:
            row[f"{m}_mean"] = group[m].mean()
            row[f"{m}_std"] = group[m].std(ddof=1) if len(group) > 1 else float("nan")
            row[f"{m}_ci95"] = ci95(group[m])
        out.append(row)
    return pd.DataFrame(out, columns=columns)


# ---------------------------------------------------------------- array statistics


@dataclass(frozen=True)
class PairedStats:
    """Per-difference statistics; each field has the input's shape less its last (seed) axis."""

    mean: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_above: np.ndarray  # two-sided p when the mean is above 0, else 1: evidence for "> 0"
    p_below: np.ndarray  # the same for "< 0"
    min_detectable: np.ndarray


@lru_cache(maxsize=None)
def _paired_noncentrality(df: int) -> float:
    """Noncentrality a paired t-test with df degrees of freedom detects with POWER."""
    critical = stats.t.ppf(1 - ALPHA / 2, df)
    return optimize.brentq(lambda nc: stats.nct.sf(critical, df, nc) - POWER, 0.0, 1e4)


def _noncentrality_for(n: np.ndarray) -> np.ndarray:
    out = np.full(n.shape, np.nan)
    for value in np.unique(n[n >= MIN_SEEDS]):
        out[n == value] = _paired_noncentrality(int(value) - 1)
    return out


def paired_stats(diffs: np.ndarray) -> PairedStats:
    """t statistics of per-seed differences (..., seeds); NaN marks a seed without both runs."""
    diffs = np.asarray(diffs, dtype=float)
    finite = np.isfinite(diffs)
    n = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, diffs, 0.0).sum(axis=-1) / n
        deviations = np.where(finite, diffs - mean[..., None], 0.0)
        sd = np.sqrt((deviations**2).sum(axis=-1) / (n - 1))
        testable = n >= MIN_SEEDS
        mean, sd = np.where(testable, mean, np.nan), np.where(testable, sd, np.nan)
        df = np.where(testable, n - 1, np.nan)
        standard_error = np.maximum(sd, RESOLUTION) / np.sqrt(n)
        t_stat = mean / standard_error
        half_width = stats.t.ppf(1 - ALPHA / 2, df) * standard_error
        p_above = np.minimum(1.0, 2 * stats.t.sf(t_stat, df))
        p_below = np.minimum(1.0, 2 * stats.t.cdf(t_stat, df))
    return PairedStats(
        mean=mean, sd=sd, n=n, ci_low=mean - half_width, ci_high=mean + half_width,
        p_above=p_above, p_below=p_below,
        min_detectable=_noncentrality_for(n) * standard_error,
    )


def holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values along the last axis (NaN counts as 1)."""
    p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
    m = p.shape[-1]
    if m == 0:
        return p
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    ranked = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    adjusted = np.empty_like(ranked)
    np.put_along_axis(adjusted, order, ranked, axis=-1)
    return adjusted


@dataclass(frozen=True)
class DirectionalResult:
    verdict: np.ndarray  # (...,) of HELD / NOT_HELD / WITHIN_NOISE / NOT_TESTED
    claimed: PairedStats  # (..., len(claimed_pairs)): higher - lower, the claimed direction
    opposing: PairedStats  # (..., len(opposing_pairs))
    opposing_holm: np.ndarray  # Holm-adjusted p that a pair is reversed
    iut_p: np.ndarray  # (...,) p of the intersection-union test: the largest claimed p


def _pair_differences(values: np.ndarray, pairs) -> np.ndarray:
    return np.stack([values[..., high, :] - values[..., low, :] for low, high in pairs], axis=-2)


def directional_test(values: np.ndarray, claimed_pairs, opposing_pairs=None) -> DirectionalResult:
    """values (..., groups, seeds); each pair (low, high) claims group high > group low.

    Held if every claimed difference's interval is above 0; not held if an opposing pair is
    reversed with Holm-adjusted p < ALPHA; not tested if a pair has fewer than MIN_SEEDS seeds.
    """
    opposing_pairs = list(claimed_pairs) if opposing_pairs is None else list(opposing_pairs)
    values = np.asarray(values, dtype=float)
    claimed = paired_stats(_pair_differences(values, claimed_pairs))
    opposing = paired_stats(_pair_differences(values, opposing_pairs))
    testable = (claimed.n >= MIN_SEEDS).all(axis=-1) & (opposing.n >= MIN_SEEDS).all(axis=-1)
    held = (claimed.ci_low > 0).all(axis=-1)
    opposing_holm = holm_adjust(opposing.p_below)
    reversed_ = (opposing_holm < ALPHA).any(axis=-1)
    verdict = np.where(~testable, NOT_TESTED, np.where(held, HELD, np.where(reversed_, NOT_HELD, WITHIN_NOISE)))
    iut_p = np.nan_to_num(claimed.p_above, nan=1.0).max(axis=-1)
    return DirectionalResult(verdict, claimed, opposing, opposing_holm, iut_p)


@lru_cache(maxsize=None)
def _anova_noncentrality(df_between: int, df_error: int) -> float:
    critical = stats.f.ppf(1 - ALPHA, df_between, df_error)
    return optimize.brentq(lambda nc: stats.ncf.sf(critical, df_between, df_error, nc) - POWER, 1e-9, 1e5)


@dataclass(frozen=True)
class AnovaResult:
    verdict: np.ndarray  # HELD or WITHIN_NOISE
    f: np.ndarray
    p_value: np.ndarray
    df_between: int
    df_error: int
    value_means: np.ndarray  # (..., values)
    spread: np.ndarray  # the range of the value means
    residual_sd: np.ndarray
    min_detectable: np.ndarray  # the range of means detectable with POWER


def block_anova(values: np.ndarray) -> AnovaResult:
    """Randomized-block ANOVA of values (..., sweep values, seeds) with no missing cell."""
    values = np.asarray(values, dtype=float)
    k, n = values.shape[-2:]
    if k < 2 or n < MIN_SEEDS or not np.isfinite(values).all():
        raise ValueError(f"needs >= 2 values x >= {MIN_SEEDS} seeds, all finite; got {k} x {n}")
    grand = values.mean(axis=(-2, -1))
    value_means, seed_means = values.mean(axis=-1), values.mean(axis=-2)
    ss_values = n * ((value_means - grand[..., None]) ** 2).sum(axis=-1)
    ss_seeds = k * ((seed_means - grand[..., None]) ** 2).sum(axis=-1)
    ss_total = ((values - grand[..., None, None]) ** 2).sum(axis=(-2, -1))
    df_between, df_error = k - 1, (k - 1) * (n - 1)
    ms_error = np.maximum(np.maximum(ss_total - ss_values - ss_seeds, 0.0) / df_error, RESOLUTION**2)
    f = ss_values / df_between / ms_error
    p_value = stats.f.sf(f, df_between, df_error)
    # least favourable layout: two values a range d apart, the rest midway -> nc = n d^2 / (2 s^2)
    min_detectable = np.sqrt(2 * _anova_noncentrality(df_between, df_error) * ms_error / n)
    return AnovaResult(
        verdict=np.where(p_value < ALPHA, HELD, WITHIN_NOISE), f=f, p_value=p_value,
        df_between=df_between, df_error=df_error, value_means=value_means,
        spread=value_means.max(axis=-1) - value_means.min(axis=-1),
        residual_sd=np.sqrt(ms_error), min_detectable=min_detectable,
    )


def _rank_spread(ranks: np.ndarray) -> np.ndarray:
    """Friedman's statistic up to constants: squared spread of the values' rank sums over seeds."""
    sums = ranks.sum(axis=-1)
    return ((sums - sums.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)


def friedman_p(values: np.ndarray) -> float:
    """Friedman test across sweep values (values, seeds), p from within-seed permutations.

    The chi-square approximation is far too conservative with three seeds, so the p-value is
    the share of FRIEDMAN_DRAWS random within-seed reorderings of the ranks (a fixed generator:
    the verdict is reproducible) whose rank-sum spread reaches the observed one. Tied metrics
    get mid-ranks and stay tied under the reorderings.
    """
    values = np.asarray(values, dtype=float)
    k, n = values.shape
    if k < 2 or n < 1 or not np.isfinite(values).all():
        return float("nan")
    ranks = stats.rankdata(values, axis=0)
    observed = _rank_spread(ranks)
    order = np.random.default_rng(0).random((FRIEDMAN_DRAWS, k, n)).argsort(axis=1)
    null = _rank_spread(np.take_along_axis(np.broadcast_to(ranks, order.shape), order, axis=1))
    return float((1 + (null >= observed - 1e-9).sum()) / (FRIEDMAN_DRAWS + 1))
