"""Bootstrap intervals: how far the headline numbers would move on another sample of the same population.

One test part gives one number per metric; a gate or a comparison between versions needs to know
whether a difference is larger than that sampling noise (README: the FPR gap moves by +-0.03 with
the split). A resample is a vector of row counts, so every metric is a weighted sum over the
original rows: O(n) per resample, with no re-sorting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.fairness import group_labels

RESAMPLES = 200
LEVEL = 0.95
SEED = 0  # the same resamples for every version, so that their intervals compare
METRICS = ("auc", "brier", "auc_minus_logistic", "fpr_gap", "band_rate_gap")


class Ranked:
    """One score's distinct values, so that a weighted AUC is a cumulative sum over them."""

    def __init__(self, score: np.ndarray):
        values, self.position = np.unique(score, return_inverse=True)
        self.distinct = len(values)

    def auc(self, y: np.ndarray, weight: np.ndarray) -> float | None:
        """AUC of the rows repeated `weight` times (ties count one half, as in roc_auc_score)."""
        k = self.distinct
        positives = np.bincount(self.position, weights=weight * y, minlength=k)
        negatives = np.bincount(self.position, weights=weight * (1 - y), minlength=k)
        pairs = positives.sum() * negatives.sum()
        if pairs == 0:
            return None
        below = np.cumsum(negatives) - negatives
        return float(np.sum(positives * (below + negatives / 2)) / pairs)


def bootstrap_intervals(
    y: np.ndarray,
    risk: np.ndarray,
    logistic: np.ndarray,
    groups: pd.Series | None,
    threshold: float,
    gap_groups: tuple[str, str] | None,
    band_cells: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Percentile intervals of AUC, Brier, AUC minus the logistic baseline's, the FPR gap and the
    band rate gap; each resample scores every metric on the same rows, so differences are paired.

    The gap's interval is of the signed difference between `gap_groups`, the groups the fairness
    table puts highest and lowest (fairness.fpr_extremes): an interval reaching below 0 means the
    order itself is uncertain. (Resampling max - min instead would never go below 0 and sits above
    a small gap; for the same reason there is no ECE interval: resampling noise reads as
    miscalibration.) The band rate gap's interval is likewise of the signed difference between the
    observed rates of `band_cells`, the rows of the two cells that fairness.band_gap_rows names."""
    y, risk = np.asarray(y, dtype=float), np.asarray(risk, dtype=float)
    model, baseline = Ranked(risk), Ranked(np.asarray(logistic, dtype=float))
    flagged, outcome = risk >= threshold, y == 1
    negatives = (
        [] if groups is None or gap_groups is None else _negatives(y, group_labels(groups), gap_groups)
    )
    rng = np.random.default_rng(SEED)
    draws: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(RESAMPLES):
        weight = resample_counts(rng, len(y))
        auc, logistic_auc = model.auc(y, weight), baseline.auc(y, weight)
        if auc is not None and logistic_auc is not None:
            draws["auc"].append(auc)
            draws["auc_minus_logistic"].append(auc - logistic_auc)
        draws["brier"].append(float(np.sum(weight * (risk - y) ** 2) / weight.sum()))
        if negatives:
            high, low = (_weighted_rate(rows, flagged, weight) for rows in negatives)
            if high is not None and low is not None:
                draws["fpr_gap"].append(high - low)
        if band_cells:
            high, low = (_weighted_rate(rows, outcome, weight) for rows in band_cells)
            if high is not None and low is not None:
                draws["band_rate_gap"].append(high - low)
    return {
        "level": LEVEL,
        "resamples": RESAMPLES,
        **{name: percentile_interval(values) for name, values in draws.items()},
        "fpr_gap_groups": list(gap_groups) if negatives else None,
    }


def resample_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How often each of n rows is drawn in one resample with replacement."""
    return np.bincount(rng.integers(0, n, n), minlength=n).astype(float)


def percentile_interval(values: list[float]) -> list[float] | None:
    """The central LEVEL interval of the resampled values; None when no resample gave one."""
    tail = (1 - LEVEL) / 2 * 100
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])] if values else None


def _negatives(y: np.ndarray, labels: np.ndarray, gap_groups: tuple[str, str]) -> list[np.ndarray]:
    """Each group's non-recidivists: the rows its false-positive rate is taken over."""
    return [np.flatnonzero((labels == group) & (y == 0)) for group in gap_groups]


def _weighted_rate(rows: np.ndarray, hit: np.ndarray, weight: np.ndarray) -> float | None:
    total = weight[rows].sum()
    return float(weight[rows][hit[rows]].sum() / total) if total else None
