"""Bootstrap intervals of the headline numbers, against a plain bootstrap that re-scores every resample."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.spec import RiskBands
from training.fairness import band_gap_rows, fpr_extremes, group_table
from training.intervals import LEVEL, RESAMPLES, SEED, bootstrap_intervals

BANDS = RiskBands(cut_points=[0.35, 0.55, 0.75], labels=["low", "moderate", "high", "very_high"])


def _cohort(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Series]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    risk = np.round(np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1), 2)  # ties, 0 and 1
    logistic = np.clip(risk + rng.normal(0, 0.05, n), 0, 1)
    race = pd.Series(
        rng.choice(["BLACK", "WHITE", "OTHER", None], n, p=[0.45, 0.45, 0.05, 0.05]), dtype="str"
    )
    return y, risk, logistic, race


def test_intervals_equal_a_plain_bootstrap_of_the_same_resamples():
    """Each gap's interval is of the signed difference between the groups highest and lowest here."""
    y, risk, logistic, race = _cohort(600)
    table = group_table(y, risk, race, 0.5, 30, BANDS)
    cells = band_gap_rows(table, race, risk, BANDS)
    intervals = bootstrap_intervals(y, risk, logistic, race, 0.5, fpr_extremes(table), cells)
    assert table["left_out"]["fpr"] == ["OTHER"]  # 30 people, about 15 of them non-recidivists
    fprs = {g: row["fpr"] for g, row in table["groups"].items() if g != "OTHER"}
    high, low = max(fprs, key=fprs.get), min(fprs, key=fprs.get)
    rng = np.random.default_rng(SEED)
    plain: dict[str, list[float]] = {
        "auc": [],
        "brier": [],
        "auc_minus_logistic": [],
        "fpr_gap": [],
        "band_rate_gap": [],
    }
    band, (band_high, band_low) = table["band_rate_gap_band"], table["band_rate_gap_groups"]
    for _ in range(RESAMPLES):
        rows = rng.integers(0, len(y), len(y))
        auc = roc_auc_score(y[rows], risk[rows])
        plain["auc"].append(auc)
        plain["auc_minus_logistic"].append(auc - roc_auc_score(y[rows], logistic[rows]))
        plain["brier"].append(np.mean((risk[rows] - y[rows]) ** 2))
        resampled = group_table(y[rows], risk[rows], race.iloc[rows], 0.5, 1, BANDS)
        rates = resampled["groups"]
        plain["fpr_gap"].append(rates[high]["fpr"] - rates[low]["fpr"])
        observed = {group: cell["observed_rate"] for group, cell in resampled["bands"][band].items()}
        plain["band_rate_gap"].append(observed[band_high] - observed[band_low])
    assert intervals["fpr_gap_groups"] == [high, low]
    tail = (1 - LEVEL) / 2 * 100
    for name, values in plain.items():
        assert intervals[name] == pytest.approx(np.percentile(values, [tail, 100 - tail]), abs=1e-12), name
    assert intervals["level"] == LEVEL and intervals["resamples"] == RESAMPLES


def test_intervals_hold_the_estimate_and_narrow_with_more_people():
    small, large = _cohort(500), _cohort(8000)
    widths = []
    for y, risk, logistic, race in (small, large):
        intervals = bootstrap_intervals(
            y, risk, logistic, race, 0.5, fpr_extremes(group_table(y, risk, race, 0.5, 30, BANDS))
        )
        low, high = intervals["auc"]
        assert low < roc_auc_score(y, risk) < high
        gap_low, gap_high = intervals["fpr_gap"]
        assert gap_low <= group_table(y, risk, race, 0.5, 30, BANDS)["fpr_gap"] <= gap_high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2.5  # 16 times the rows: about a quarter of the width


def test_a_paired_difference_is_narrower_than_either_auc():
    y, risk, logistic, race = _cohort(2000)
    intervals = bootstrap_intervals(
        y, risk, logistic, race, 0.5, fpr_extremes(group_table(y, risk, race, 0.5, 30, BANDS))
    )
    difference = intervals["auc_minus_logistic"][1] - intervals["auc_minus_logistic"][0]
    assert difference < (intervals["auc"][1] - intervals["auc"][0]) / 2


def test_without_groups_or_with_one_group_there_is_no_gap_interval():
    y, risk, logistic, _ = _cohort(300)
    without_groups = bootstrap_intervals(y, risk, logistic, None, 0.5, None)
    assert without_groups["fpr_gap"] is None and without_groups["band_rate_gap"] is None
    one_group = pd.Series(["WHITE"] * len(y), dtype="str")
    assert (
        bootstrap_intervals(
            y, risk, logistic, one_group, 0.5, fpr_extremes(group_table(y, risk, one_group, 0.5, 30, BANDS))
        )["fpr_gap"]
        is None
    )
    assert (
        bootstrap_intervals(
            y, risk, logistic, one_group, 0.5, fpr_extremes(group_table(y, risk, one_group, 0.5, 30, BANDS))
        )["auc"]
        is not None
    )


def test_with_one_group_there_are_no_band_cells_and_no_band_gap_interval():
    """As evaluate asks: the band rate gap is unknown with one group, so there are no rows to resample."""
    y, risk, logistic, _ = _cohort(300)
    one_group = pd.Series(["WHITE"] * len(y), dtype="str")
    table = group_table(y, risk, one_group, 0.5, 30, BANDS)
    assert table["band_rate_gap"] is None
    cells = band_gap_rows(table, one_group, risk, BANDS)
    assert cells is None
    gap = fpr_extremes(table)
    assert bootstrap_intervals(y, risk, logistic, one_group, 0.5, gap, cells)["band_rate_gap"] is None
