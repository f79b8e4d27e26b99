"""Per-group audit of a risk model: accuracy, calibration and error rates per protected group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from training.metrics import check_probabilities, error_rates, expected_calibration_error, safe_auc

NIJ_GROUPS = ("BLACK", "WHITE")
NIJ_THRESHOLD = 0.5
MISSING = ""


def group_labels(groups: pd.Series) -> np.ndarray:
    """Group names as text; a missing cell belongs to no group (not to a group called "nan")."""
    return groups.astype(object).where(groups.notna(), MISSING).astype(str).to_numpy()


def group_table(
    y: np.ndarray, p: np.ndarray, groups: pd.Series, threshold: float, min_group_size: int
) -> dict:
    """n, base rate, AUC, ECE, FPR and FNR per group, and the largest gaps between groups.

    A group enters a gap only with at least `min_group_size` people in that rate's denominator
    (non-recidivists for FPR, recidivists for FNR, everyone for ECE): one person's rate is 0 or 1,
    and would make the gap. Left-out groups are still in the table and named under left_out."""
    check_probabilities(p)
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    labels = group_labels(groups)
    table: dict[str, dict] = {}
    for group in sorted(set(labels[labels != MISSING])):
        mask = labels == group
        fpr, fnr = error_rates(y[mask], p[mask], threshold)
        table[group] = {
            "n": int(mask.sum()),
            "n_negative": int((y[mask] == 0).sum()),
            "n_positive": int((y[mask] == 1).sum()),
            "base_rate": float(y[mask].mean()),
            "mean_predicted": float(p[mask].mean()),  # against base_rate: calibration in the large
            "auc": safe_auc(y[mask], p[mask]),
            "ece": expected_calibration_error(y[mask], p[mask]),
            "fpr": fpr,
            "fnr": fnr,
        }
    left_out = {
        rate: sorted(g for g, row in table.items() if row[rate] is not None and row[size] < min_group_size)
        for rate, size in GAP_DENOMINATORS.items()
    }
    return {
        "threshold": threshold,
        "groups": table,
        **{f"{rate}_gap": _gap(table, rate, left_out[rate]) for rate in GAP_DENOMINATORS},
        "min_group_size": min_group_size,
        "left_out": {rate: groups for rate, groups in left_out.items() if groups},
        "n_missing": int((labels == MISSING).sum()),  # rows in no group: audited nowhere
    }


GAP_DENOMINATORS = {"fpr": "n_negative", "fnr": "n_positive", "ece": "n"}


def fpr_extremes(table: dict) -> tuple[str, str] | None:
    """The groups with the highest and the lowest FPR among those the FPR gap spans."""
    left_out = table.get("left_out", {}).get("fpr", [])
    rates = {
        g: row["fpr"] for g, row in table["groups"].items() if row["fpr"] is not None and g not in left_out
    }
    return (max(rates, key=rates.__getitem__), min(rates, key=rates.__getitem__)) if len(rates) >= 2 else None


def _gap(table: dict[str, dict], key: str, left_out: list[str]) -> float | None:
    values = [row[key] for group, row in table.items() if row[key] is not None and group not in left_out]
    return float(max(values) - min(values)) if len(values) >= 2 else None


def nij_fair_accurate(y: np.ndarray, p: np.ndarray, race: pd.Series) -> float | None:
    """The NIJ challenge score (1 - Brier) * (1 - |FPR_BLACK - FPR_WHITE|) at threshold 0.5."""
    labels = group_labels(race)
    rates = {}
    for group in NIJ_GROUPS:
        mask = labels == group
        rates[group] = error_rates(np.asarray(y)[mask], np.asarray(p)[mask], NIJ_THRESHOLD)[0]
    if any(rate is None for rate in rates.values()):
        return None
    brier = brier_score_loss(y, p)
    return float((1 - brier) * (1 - abs(rates["BLACK"] - rates["WHITE"])))
