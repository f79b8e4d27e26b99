"""Per-group audit of a risk model: accuracy, calibration and error rates per protected group."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from features.spec import RiskBands
from training.metrics import check_probabilities, error_rates, expected_calibration_error, safe_auc

NIJ_GROUPS = ("BLACK", "WHITE")
NIJ_THRESHOLD = 0.5
MISSING = ""


def group_labels(groups: pd.Series) -> np.ndarray:
    """Group names as text; a missing cell belongs to no group (not to a group called "nan")."""
    return groups.astype(object).where(groups.notna(), MISSING).astype(str).to_numpy()


def group_table(
    y: np.ndarray,
    p: np.ndarray,
    groups: pd.Series,
    threshold: float,
    min_group_size: int,
    bands: RiskBands,
) -> dict:
    """n, base rate, AUC, ECE, FPR and FNR per group, the largest gaps between groups, and the
    observed rate per group within each risk band (calibration within groups).

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
        rate: _too_small({g: row[size] for g, row in table.items() if row[rate] is not None}, min_group_size)
        for rate, size in GAP_DENOMINATORS.items()
    }
    by_band = _band_cells(y, p, labels, sorted(table), bands, min_group_size)
    return {
        "threshold": threshold,
        "groups": table,
        **{f"{rate}_gap": _gap(table, rate, left_out[rate]) for rate in GAP_DENOMINATORS},
        "min_group_size": min_group_size,
        "left_out": {rate: groups for rate, groups in left_out.items() if groups},
        "n_missing": int((labels == MISSING).sum()),  # rows in no group: audited nowhere
        "bands": by_band,
        "band_shares": _band_shares(by_band, table),
        **_band_rate_gap(by_band, left_out["ece"]),  # a band's rate, like ECE, is over everyone in it
    }


GAP_DENOMINATORS = {"fpr": "n_negative", "fnr": "n_positive", "ece": "n"}


def fpr_extremes(table: dict) -> tuple[str, str] | None:
    """The groups with the highest and the lowest FPR among those the FPR gap spans."""
    return rate_extremes(table, "fpr")


def rate_extremes(table: dict, rate: str) -> tuple[str, str] | None:
    """The groups with the highest and the lowest `rate` among those its gap spans."""
    rates = {g: row[rate] for g, row in table["groups"].items()}
    return _extremes(rates, table.get("left_out", {}).get(rate, []))


def _too_small(sizes: dict[str, int], min_group_size: int) -> list[str]:
    """Groups with too few people to compare: one person's rate is 0 or 1."""
    return sorted(g for g, n in sizes.items() if n < min_group_size)


def _extremes(rates: dict[str, float | None], left_out: list[str]) -> tuple[str, str] | None:
    """The groups with the highest and the lowest known rate, left-out groups aside; two groups even
    when the rates tie."""
    known = {g: rate for g, rate in rates.items() if rate is not None and g not in left_out}
    if len(known) < 2:
        return None
    high = max(known, key=known.__getitem__)
    return high, min((g for g in known if g != high), key=known.__getitem__)


def _gap(table: dict[str, dict], key: str, left_out: list[str]) -> float | None:
    rates = {g: row[key] for g, row in table.items()}
    ends = _extremes(rates, left_out)
    return float(rates[ends[0]] - rates[ends[1]]) if ends else None


def _band_cells(
    y: np.ndarray, p: np.ndarray, labels: np.ndarray, groups: list[str], bands: RiskBands, min_group_size: int
) -> dict[str, dict[str, dict]]:
    """n, mean predicted and observed rate per band and group; a cell under `min_group_size` has no
    observed rate, so a handful of people is never read as evidence. An empty cell has no mean."""
    band_of = _band_of(p, bands)
    cells: dict[str, dict[str, dict]] = {}
    for band in bands.labels:
        masks = {group: (labels == group) & (band_of == band) for group in groups}
        small = _too_small({group: int(mask.sum()) for group, mask in masks.items()}, min_group_size)
        cells[band] = {
            group: {
                "n": int(mask.sum()),
                "mean_predicted": float(p[mask].mean()) if mask.any() else None,
                "observed_rate": None if group in small else float(y[mask].mean()),
            }
            for group, mask in masks.items()
        }
    return cells


def _band_shares(cells: dict[str, dict[str, dict]], table: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The share of each group's people in each band: who is put in which band, whatever happened to
    them (a group placed higher more often gets more of what a high band brings)."""
    return {
        band: {group: cell["n"] / table[group]["n"] for group, cell in by_group.items()}
        for band, by_group in cells.items()
    }


def band_gap_rows(
    table: dict, groups: pd.Series, p: np.ndarray, bands: RiskBands
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of the two cells the band rate gap compares, higher group first, so the gap's
    bootstrap interval resamples exactly those people."""
    if table["band_rate_gap"] is None:
        return None
    labels, band_of = group_labels(groups), _band_of(p, bands)
    in_band = band_of == table["band_rate_gap_band"]
    high, low = (np.flatnonzero(in_band & (labels == group)) for group in table["band_rate_gap_groups"])
    return high, low


def _band_of(p: np.ndarray, bands: RiskBands) -> np.ndarray:
    """Each person's band by RiskBands.band, the rule a served score's band comes from."""
    return np.array([bands.band(probability) for probability in p], dtype=object)


def _band_rate_gap(cells: dict[str, dict[str, dict]], left_out: list[str]) -> dict:
    """The largest difference in observed rate between two groups given the same band, over all
    bands, and how many such differences it is the widest of: picked from several on the same
    rows, it overstates its band's difference."""
    widest: dict = {"band_rate_gap": None, "band_rate_gap_band": None, "band_rate_gap_groups": None}
    choices = 0
    for band, by_group in cells.items():
        rates = {group: cell["observed_rate"] for group, cell in by_group.items()}
        choices += math.comb(sum(r is not None and g not in left_out for g, r in rates.items()), 2)
        ends = _extremes(rates, left_out)
        if ends is None:
            continue
        gap = float(rates[ends[0]] - rates[ends[1]])
        if widest["band_rate_gap"] is None or gap > widest["band_rate_gap"]:
            widest = {"band_rate_gap": gap, "band_rate_gap_band": band, "band_rate_gap_groups": list(ends)}
    return {**widest, "band_rate_gap_choices": choices}


def nij_fair_accurate(y: np.ndarray, p: np.ndarray, race: pd.Series, min_group_size: int) -> float | None:
    """The NIJ challenge score (1 - Brier) * (1 - |FPR_BLACK - FPR_WHITE|) at threshold 0.5; None, like the
    FPR gap, unless both groups have `min_group_size` non-recidivists (two people would make it 0)."""
    labels, y = group_labels(race), np.asarray(y, dtype=int)
    rates = {}
    for group in NIJ_GROUPS:
        mask = labels == group
        if (y[mask] == 0).sum() < min_group_size:
            return None
        rates[group] = error_rates(y[mask], np.asarray(p)[mask], NIJ_THRESHOLD)[0]
    brier = brier_score_loss(y, p)
    return float((1 - brier) * (1 - abs(rates["BLACK"] - rates["WHITE"])))
