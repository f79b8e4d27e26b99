"""Accuracy and calibration metrics for probabilities of a binary outcome."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from models.calibrated import platt_map

ECE_BINS = 10
EPSILON = 1e-6


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over equal-width probability bins, weighted by the share of records in each bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(error)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None]:
    """Logistic recalibration of the outcome on logit(p): slope 1 and intercept 0 are perfect.

    None for both when only one outcome or one probability is present: there is nothing to regress."""
    p = np.clip(np.asarray(p, dtype=float), EPSILON, 1 - EPSILON)
    logit = np.log(p / (1 - p))
    if len(np.unique(np.asarray(y))) < 2 or np.ptp(logit) == 0:
        return None, None
    return platt_map(logit, y)  # the map a perfectly calibrated model would fit as slope 1, intercept 0


def safe_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """AUC, or None when only one class is present (a small group, say)."""
    y = np.asarray(y)
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else None


def error_rates(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """False-positive and false-negative rates of flagging p >= threshold."""
    y, flagged = np.asarray(y, dtype=int), np.asarray(p) >= threshold
    negatives, positives = y == 0, y == 1
    fpr = float(flagged[negatives].mean()) if negatives.any() else None
    fnr = float((~flagged[positives]).mean()) if positives.any() else None
    return fpr, fnr


def check_probabilities(p: np.ndarray) -> None:
    """Refuse what no metric here can score honestly: a missing probability would fall in no ECE
    bin and count as not flagged."""
    p = np.asarray(p, dtype=float)
    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} probabilities are missing or outside [0, 1], e.g. {p[bad][0]}")


def probability_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """The risk metrics reported for every evaluation."""
    check_probabilities(p)
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "auc": safe_auc(y, p),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, EPSILON, 1 - EPSILON), labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
    }
