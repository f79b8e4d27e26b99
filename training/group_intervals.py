"""Bootstrap intervals per protected group: how far each group's rates, and the gaps between groups,
would move on another sample of people from the same groups.

Each group is resampled within itself, its size kept as in the evaluated rows (stratified by group),
so a small group's interval is as wide as its own people make it and never borrows from a large
group's. A resample is a vector of row counts, as in training.intervals: O(n) per resample."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.fairness import group_labels, rate_extremes
from training.intervals import LEVEL, Ranked, percentile_interval, resample_counts

RESAMPLES = 1000
SEED = 0  # the same resamples for every version, so that their intervals compare
RATES = ("base_rate", "auc", "fpr", "fnr")
GAPS = ("fpr", "fnr")


def group_intervals(y: np.ndarray, p: np.ndarray, groups: pd.Series, threshold: float, table: dict) -> dict:
    """Percentile intervals of each group's base rate, AUC, FPR and FNR, and of the FPR and FNR gaps.

    A gap's interval is of the signed difference between the two groups `table` (fairness.group_table)
    puts highest and lowest, as for training.intervals' fpr_gap: one reaching below 0 means even
    their order is uncertain. No ECE interval: resampling noise reads as miscalibration."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    labels = group_labels(groups)
    rows = {group: np.flatnonzero(labels == group) for group in table["groups"]}
    ends = {rate: rate_extremes(table, rate) for rate in GAPS}
    ranked = {group: Ranked(p[index]) for group, index in rows.items()}
    rng = np.random.default_rng(SEED)
    draws: dict[str, dict[str, list[float]]] = {group: {rate: [] for rate in RATES} for group in rows}
    gap_draws: dict[str, list[float]] = {rate: [] for rate in GAPS}
    for _ in range(RESAMPLES):
        resampled = {
            group: _rates(y[index], p[index], resample_counts(rng, len(index)), threshold, ranked[group])
            for group, index in rows.items()
        }
        for group, rates in resampled.items():
            for rate, value in rates.items():
                if value is not None:
                    draws[group][rate].append(value)
        for rate, pair in ends.items():
            if pair is not None:
                high, low = (resampled[group][rate] for group in pair)
                if high is not None and low is not None:
                    gap_draws[rate].append(high - low)
    return {
        "level": LEVEL,
        "resamples": RESAMPLES,
        "seed": SEED,
        "stratified_by": "group",
        "groups": {
            group: {rate: percentile_interval(values) for rate, values in rates.items()}
            for group, rates in draws.items()
        },
        **{f"{rate}_gap": percentile_interval(gap_draws[rate]) for rate in GAPS},
        **{f"{rate}_gap_groups": list(ends[rate]) if ends[rate] else None for rate in GAPS},
    }


def _rates(y: np.ndarray, p: np.ndarray, weight: np.ndarray, threshold: float, ranked: Ranked) -> dict:
    """One group's rates over its rows repeated `weight` times; None where a denominator is empty."""
    flagged = p >= threshold
    negatives, positives = weight * (1 - y), weight * y
    return {
        "base_rate": float(positives.sum() / weight.sum()),
        "auc": ranked.auc(y, weight),
        "fpr": float(negatives[flagged].sum() / negatives.sum()) if negatives.sum() else None,
        "fnr": float(positives[~flagged].sum() / positives.sum()) if positives.sum() else None,
    }
