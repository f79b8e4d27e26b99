"""Per-group audit of a risk model: accuracy, calibration and error rates per protected group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from training.metrics import error_rates, expected_calibration_error, safe_auc

NIJ_GROUPS = ("BLACK", "WHITE")
NIJ_THRESHOLD = 0.5
MISSING = ""


def _labels(groups: pd.Series) -> np.ndarray:
    """Group names as text; a missing cell belongs to no group (not to a group called "nan")."""
    return groups.astype(object).where(groups.notna(), MISSING).astype(str).to_numpy()


def group_table(y: np.ndarray, p: np.ndarray, groups: pd.Series, threshold: float) -> dict:
    """n, base rate, AUC, ECE, FPR and FNR per group, and the largest gaps between groups."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    labels = _labels(groups)
    table: dict[str, dict] = {}
    for group in sorted(set(labels[labels != MISSING])):
        mask = labels == group
        fpr, fnr = error_rates(y[mask], p[mask], threshold)
        table[group] = {
            "n": int(mask.sum()),
            "base_rate": float(y[mask].mean()),
            "mean_predicted": float(p[mask].mean()),  # against base_rate: calibration in the large
            "auc": safe_auc(y[mask], p[mask]),
            "ece": expected_calibration_error(y[mask], p[mask]),
            "fpr": fpr,
            "fnr": fnr,
        }
    return {
        "threshold": threshold,
        "groups": table,
        "fpr_gap": _gap(table, "fpr"),
        "fnr_gap": _gap(table, "fnr"),
        "ece_gap": _gap(table, "ece"),
    }


def _gap(table: dict[str, dict], key: str) -> float | None:
    values = [row[key] for row in table.values() if row[key] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None


def nij_fair_accurate(y: np.ndarray, p: np.ndarray, race: pd.Series) -> float | None:
    """The NIJ challenge score (1 - Brier) * (1 - |FPR_BLACK - FPR_WHITE|) at threshold 0.5."""
    labels = _labels(race)
    rates = {}
    for group in NIJ_GROUPS:
        mask = labels == group
        rates[group] = error_rates(np.asarray(y)[mask], np.asarray(p)[mask], NIJ_THRESHOLD)[0]
    if any(rate is None for rate in rates.values()):
        return None
    brier = brier_score_loss(y, p)
    return float((1 - brier) * (1 - abs(rates["BLACK"] - rates["WHITE"])))
